# MemAlign: `make run` starts the whole site locally; `make lint` runs the linters and type checks; `make test`
# runs the whole suite; `make bench` the benchmarks (QUICK=1: a quick set, under 5 minutes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run lint test bench venv chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python -m memalign_site.launcher

# Debian's Chromium drives the browser tests; Playwright's own browser download cannot work offline.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: install Debian's chromium package (sudo apt-get install chromium)"; exit 1; fi; }

# Fails on any finding: lint, formatting, types (mypy reads settings_test, so no SECRET_KEY is needed), templates.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=memalign_site.settings_test $(BIN)/mypy
	$(BIN)/djlint --lint templates

# Two test processes (pytest-xdist) against PostgreSQL and Redis (DATABASE_URL set, as in CI), a module to each at a
# time, each with its own data folder, queue and test database: 10.5 minutes instead of 13 on 2 cores. The longest
# modules go first (tests/conftest.py LONG_FIRST; --no-loadscope-reorder keeps that order, where xdist would order
# modules by their number of tests), so no long module is left running alone at the end. On SQLite and the
# embedded Redis one process: there, with two, a wait on the session's worker timed out (not yet diagnosed).
PYTEST_WORKERS ?= $(if $(DATABASE_URL),2,0)

test: venv chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# `make bench QUICK=1`: issue 23's figures at smaller sizes, under 5 minutes; `make bench BENCH_ARGS="judge_api"`:
# some benchmarks by name (or any other argument of `python -m bench`).
bench: venv
	$(BIN)/python -m bench $(if $(filter 1 yes true,$(QUICK)),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data
