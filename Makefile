# The README's two commands: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
PYTHON36 ?= $(shell command -v python3.6 >/dev/null 2>&1 && pyenv which python3.6 2>/dev/null || command -v python3.6)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: demo test lint unit ui bench clean-demo

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint --configfile config/demo.yaml

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint unit

ui: $(STAMP)
	$(BIN)/detbench ui

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-demo:
	rm -rf data/demo weights/untrained results/demo reports/demo logs/demo
