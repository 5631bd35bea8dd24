# The two commands a newcomer runs: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,serve,report,sign,bom,jwt,redis,onnx,h5,7z,ray,ann
# Extra packages to install into the venv, e.g. CI's `PIP_EXTRA=torch==2.13.0`.
PIP_EXTRA ?=

.PHONY: demo test lint typecheck unit install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]' $(PIP_EXTRA)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/bastion demo --out out/demo

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
