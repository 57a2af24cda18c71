# genmodel — set-up and checks. `make demo` and `make test` work on a fresh machine with python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BROWSER := $(VENV)/.browser

.PHONY: install demo dashboard test lint typecheck layers unit validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## install: create .venv and install genmodel with its test tools
install: $(STAMP)

## demo: the headline capacity-planning example on the built-in database, ending with a short
## summary: the validation against published measurements, then the capacity answer
DEMO_PLAN := --model deepseek-v3 --hardware ascend-910c --devices 384 --input-tokens 4096 \
    --output-tokens 1024 --ttft-slo 2s --tpot-slo 50ms --weight-dtype int8
demo: $(STAMP)
	$(BIN)/genmodel estimate --model llama-3.1-70b --hardware h100-sxm --tp 2 --batch max \
	    --input-tokens 1000 --output-tokens 1000 --weight-dtype fp8 --act-dtype fp8 --kv-dtype fp8
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	    echo "$(BIN)/genmodel plan $(DEMO_PLAN) --format json --output PLAN.json" && \
	    $(BIN)/genmodel plan $(DEMO_PLAN) --format json --output "$$tmp/plan.json" && \
	    $(BIN)/genmodel validate --summary && \
	    echo "(every case: genmodel validate; the plan's tables: genmodel plan $(DEMO_PLAN))" && \
	    $(BIN)/python tools/demo_summary.py "$$tmp/plan.json"

## dashboard: the Streamlit dashboard on http://localhost:8501 (DASHBOARD_PORT=N for another port)
DASHBOARD_PORT ?= 8501
dashboard: $(STAMP)
	$(BIN)/genmodel dashboard --port $(DASHBOARD_PORT)

## test: lint, types, import layering, then the whole test suite
test: lint typecheck layers unit

lint: $(STAMP)
	$(BIN)/ruff check genmodel cli tests app tools
	$(BIN)/ruff format --check genmodel cli tests app tools

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# Debian's chromium and chromedriver for the headless dashboard test (tests/test_browser.py); installed
# with apt, never downloaded by a tool. Only `make test` needs them, not `make install` or `make demo`.
$(BROWSER): | $(BIN)/python
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	    command -v apt-get >/dev/null || { echo "install chromium and chromedriver in /usr/bin" >&2; exit 1; }; \
	    SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi
	touch $@

unit: $(STAMP) $(BROWSER)
	GENMODEL_REQUIRE_BROWSER=1 $(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
