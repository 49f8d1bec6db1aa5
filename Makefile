# htcondor-jobmon: two commands to start with, `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest test-condor bench wrapper clean

# Runtime install: the package and its dependencies.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

# Test install: adds the test extras and the system browser for the web tests.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/jobmon demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check jobmon relay jobmon_wrapper submit_templates condor_hooks tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy jobmon relay jobmon_wrapper submit_templates condor_hooks

pytest: $(VENV)/.installed-test
	tools/ensure-browser.sh
	$(BIN)/python -m pytest -m 'not condor' $(PYTEST_ARGS)

# The whole suite: lint, types, tests. Tests that need a live HTCondor pool
# are skipped here (they say so); `make test-condor` runs them.
test: lint typecheck pytest

# Runs only the live-pool tests (tests/condor_live, marked `condor`) against a
# personal pool: run it as a normal user (HTCondor will not run root's jobs)
# with CONDOR_CONFIG set; see INSTALL.md section 8. It collects nothing else and
# writes no cache into the clone; the module stops itself within 5 minutes.
# Without a pool it says why and exits non-zero (no test ran).
test-condor: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m condor -rs -p no:cacheprovider tests/condor_live $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info tests/artifacts
