PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test quick test-compat demo bench lint typecheck pytest pytest-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check phase_settings tests examples benchmarks
	$(VENV)/bin/ruff format --check phase_settings tests examples benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict phase_settings

# The suite in parallel (pytest-xdist). Most tests wait on sockets, subprocesses or timers, so
# more workers than cores pays; the tests that bound wall time share one xdist group (see
# tests/conftest.py), run one after another by one worker, so that no two of them compete.
# PYTEST_WORKERS=0 runs in this process (what `-s` needs to show the battery's figures).
PYTEST_WORKERS ?= 4
PYTEST_ARGS ?=
PYTEST := $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

pytest: $(STAMP)
	$(PYTEST)

# The edit loop: lint, mypy and the tests not marked slow (under a minute on 2 cores).
pytest-quick: $(STAMP)
	$(PYTEST) -m 'not slow'

test: lint typecheck pytest test-compat

quick: lint typecheck pytest-quick

# The source, fidelity and command-line tests again with the lowest supported pydantic-settings
# and with its latest release, each in a venv of its own (pip's cache keeps rebuilds cheap).
COMPAT_TESTS := tests/settings/test_source.py tests/settings/test_fidelity.py \
	tests/settings/test_fidelity_property.py tests/cli/test_cli.py
COMPAT_LOWEST := .venv-compat-lowest
COMPAT_LATEST := .venv-compat-latest

$(COMPAT_LOWEST)/.installed: pyproject.toml Makefile
	test -x $(COMPAT_LOWEST)/bin/python || $(PYTHON) -m venv $(COMPAT_LOWEST)
	$(COMPAT_LOWEST)/bin/python -m pip install --quiet -e . 'pydantic-settings==2.16.0' \
		pytest hypothesis
	touch $@

$(COMPAT_LATEST)/.installed: pyproject.toml Makefile
	test -x $(COMPAT_LATEST)/bin/python || $(PYTHON) -m venv $(COMPAT_LATEST)
	$(COMPAT_LATEST)/bin/python -m pip install --quiet -e . pytest hypothesis
	touch $@

# The latest venv asks PyPI for a newer pydantic-settings only when pyproject.toml changed or
# its last refresh is a day old; on CI (CI set: a fresh machine) every run tests the latest.
COMPAT_REFRESHED := $(COMPAT_LATEST)/.refreshed

test-compat: $(COMPAT_LOWEST)/.installed $(COMPAT_LATEST)/.installed
	@if [ -n "$$CI" ] || [ ! -e $(COMPAT_REFRESHED) ] \
		|| [ $(COMPAT_REFRESHED) -ot $(COMPAT_LATEST)/.installed ] \
		|| [ -n "$$(find $(COMPAT_REFRESHED) -mmin +1440)" ]; then \
		echo "$(COMPAT_LATEST): pip install --upgrade pydantic-settings"; \
		$(COMPAT_LATEST)/bin/python -m pip install --quiet --upgrade pydantic-settings \
		&& touch $(COMPAT_REFRESHED); \
	fi
	@# the two venvs side by side, each pytest in one process (no xdist start-up to pay twice)
	@pids=; for venv in $(COMPAT_LOWEST) $(COMPAT_LATEST); do \
		( $$venv/bin/python -c 'import pydantic_settings as p; print("pydantic-settings", p.__version__)' \
		&& $$venv/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS) ) \
			> $$venv/.test-output 2>&1 & pids="$$pids $$!"; \
	done; \
	status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	for venv in $(COMPAT_LOWEST) $(COMPAT_LATEST); do \
		echo "== $$venv"; cat $$venv/.test-output; \
	done; exit $$status

demo: $(STAMP)
	$(PY) examples/demo/run_demo.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(COMPAT_LOWEST) $(COMPAT_LATEST) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# --- the examples and the distribution ------------------------------------------------------------
# Each example in one command from a fresh clone: creates .venv if needed, starts its own fake
# Phase (in a temporary folder of its own), checks the settings, serves until Ctrl-C.
# PORT=N picks the web port, PHASE_ENV=production the production values.
.PHONY: example-django example-flask dist

example-django: $(STAMP)
	@PYTHON="$(abspath $(PY))" bash examples/django/run.sh

example-flask: $(STAMP)
	@PYTHON="$(abspath $(PY))" bash examples/flask/run.sh

# sdist and wheel in $(DIST) (default dist/), built offline with the hatchling of .venv:
# `pip install dist/phase_settings-*-py3-none-any.whl` anywhere
DIST ?= dist
dist: $(STAMP)
	rm -rf "$(DIST)"
	$(PY) -m build --no-isolation --outdir "$(DIST)" .
