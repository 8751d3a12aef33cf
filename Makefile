# Two commands from a fresh machine: `make test` and `make demo`. Both create .venv when it
# is missing and install the project with its test extras (torch 2.14.1 + torchvision 0.29.1
# come from this machine's disk).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infer-kit-installed
DEMO   ?= demo-work

.PHONY: test demo lint clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/infer-kit export --arch resnet50 --num-classes 1000 -o $(DEMO)/resnet50.onnx

clean:
	rm -rf $(DEMO) build dist *.egg-info
