# make run   - set everything up (.venv) and open the live app
# make test  - set everything up (.venv) and run the test suite
# make bench - engine and UI throughput on this machine
# make lint  - ruff and mypy with the settings in pyproject.toml

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.fftui-installed

.PHONY: run test lint bench headless clean

$(STAMP): pyproject.toml fftui/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,tensorboard,plots,sweep]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/fftui

headless: $(STAMP)
	$(VENV)/bin/fftui run --headless

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check engine fftui tests bench
	$(VENV)/bin/mypy engine fftui

bench: $(STAMP)
	$(PY) bench/bench_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
