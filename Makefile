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
