# The two commands: `make run` (the whole stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint deps bench clean constraints

# Installs take the pinned resolution of constraints.txt (the Dockerfile and CI too).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# After changing pyproject.toml's dependencies: resolve again in a fresh venv and pin the result.
constraints:
	rm -rf .venv-constraints && $(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet -e '.[dev]'
	{ head -n 2 constraints.txt; .venv-constraints/bin/python -m pip freeze --exclude-editable \
	  | grep -v '^automation-worker'; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

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
