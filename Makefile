PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint typecheck pytest clean

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

pytest: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck pytest

demo: $(STAMP)
	$(PY) examples/demo/run_demo.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

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
