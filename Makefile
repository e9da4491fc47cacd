# Every target installs what it needs into .venv when it is missing, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint format demo bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest --cov=hotline --cov-report=term --cov-report=json:.coverage.json -q
	$(BIN)/python tests/coverage_gate.py .coverage.json hotline/protocol 95

lint: $(STAMP)
	$(BIN)/ruff check hotline tests bench
	$(BIN)/ruff format --check hotline tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format hotline tests bench
	$(BIN)/ruff check --fix hotline tests bench

demo: $(STAMP)
	$(BIN)/hotline demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.json
