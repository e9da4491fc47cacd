# Every target installs what it needs into .venv when it is missing, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint format demo bench fuzz chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest --cov=hotline --cov-report=term --cov-report=json:.coverage.json -q
	$(BIN)/python tests/coverage_gate.py .coverage.json hotline/protocol 95

lint: $(STAMP)
	$(BIN)/ruff check hotline tests bench docs
	$(BIN)/ruff format --check hotline tests bench docs
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format hotline tests bench
	$(BIN)/ruff check --fix hotline tests bench

demo: $(STAMP)
	$(BIN)/hotline demo

bench: $(STAMP)
	$(BIN)/python -m bench

# Over 100,000 generated inputs against every decoder and both state machines; then atheris, where it installs.
fuzz: $(STAMP)
	HOTLINE_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest tests/fuzz -q -p no:cacheprovider
	if $(BIN)/python -m pip install --quiet atheris; then \
		$(BIN)/python tests/fuzz/atheris_decoders.py -runs=200000; \
	else echo "atheris does not install here: the Hypothesis run above stands alone"; fi

# The long runs: twenty crashes of each process, 2,000 notices through a bad network, every lie of a relay.
chaos: $(STAMP)
	HOTLINE_CRASH_RUNS=20 HOTLINE_CHAOS=1 $(BIN)/python -m pytest tests/integration/test_crash_campaign.py tests/chaos tests/adversary -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.json
