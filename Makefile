# genmodel — set-up and checks. `make demo` and `make test` work on a fresh machine with python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck layers unit validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## install: create .venv and install genmodel with its test tools
install: $(STAMP)

## demo: the headline capacity-planning example on the built-in database
demo: $(STAMP)
	$(BIN)/genmodel estimate --model llama-3.1-70b --hardware h100-sxm --tp 2 --batch max \
	    --input-tokens 1000 --output-tokens 1000 --weight-dtype fp8 --act-dtype fp8 --kv-dtype fp8
	$(BIN)/genmodel plan --model deepseek-v3 --hardware ascend-910c --devices 384 --input-tokens 4096 \
	    --output-tokens 1024 --ttft-slo 2s --tpot-slo 50ms --weight-dtype int8
	$(BIN)/genmodel validate

## test: lint, types, import layering, then the whole test suite
test: lint typecheck layers unit

lint: $(STAMP)
	$(BIN)/ruff check genmodel cli tests
	$(BIN)/ruff format --check genmodel cli tests

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
