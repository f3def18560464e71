# css-upgrade-scout: every target sets up what it needs from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WHEELS := .wheels

.PHONY: run test soak bench package wheels clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

## run: the main job end to end on local stand-ins (CSS emulator, moto), no cloud account
run: $(STAMP)
	$(VENV)/bin/css-upgrade-scout demo

## test: the whole test suite (the soak runs with `make soak`)
test: $(STAMP) wheels
	$(PY) -m pytest -n 2 -q -m "not slow"

## soak: 10,000 messages with injected faults, printing the accounting
soak: $(STAMP)
	$(PY) -m pytest -q -s -m slow

## bench: the benchmark script; records a run in docs/benchmarks.md
bench: $(STAMP) package
	$(PY) -m handler.local.bench --record docs/benchmarks.md

## wheels: download the Lambda runtime wheels once, so that tests can build the artifact offline
wheels: $(STAMP)
	$(PY) -m handler.local.package wheels --dest $(WHEELS)

## package: the self-contained deployment zip for the template's runtime (build/css-upgrade-scout.zip)
package: wheels
	$(PY) -m handler.local.package build --wheels $(WHEELS) --out build/css-upgrade-scout.zip

clean:
	rm -rf $(VENV) $(WHEELS) build .pytest_cache .hypothesis
