# The two commands: `make run` (the whole stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/automation-worker run

# tests/faults is left out here (it has its own target, run once by .ci/run on PostgreSQL).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python tools/deps.py
	$(BIN)/python -m pytest -q --ignore=tests/faults $(PYTEST_ARGS)

# The fault suite: real worker, beat and Redis processes killed, stopped and cut off (issue 6).
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q tests/faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The import graph: models → tasks → worker, api on top, no circle (tools/deps.py; also in `make test`).
deps: $(STAMP)
	$(BIN)/python tools/deps.py

bench: $(STAMP)
	$(BIN)/python bench/bench_criteria.py

clean:
	rm -rf $(VENV) var .pytest_cache
