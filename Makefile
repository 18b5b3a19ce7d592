# make train  - set up .venv (first time only) and train on the built-in synthetic corpus
# make test   - set up .venv (first time only) and run the test suite on CPU
# make lint   - ruff, and the layers contract of pyproject.toml (import-linter)
# Extra Hydra overrides: make train ARGS="model=cnn features=mfcc"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup train test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sweeps,export,baselines,pretrained,diagnose,augment,hf]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n auto $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check ser tests experiments notebooks train.py
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .cache runs
