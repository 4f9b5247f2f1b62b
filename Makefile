# Quick start:  make demo   (install + run the main job)   |   make test   (install + full test suite)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: demo test install install-dev lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -e .

install-dev: $(PY)
	$(PIP) install --quiet -e '.[dev,tfmot]'

demo: install
	$(VENV)/bin/kerasinit compare --dataset digits --out kerasinit_compare
	$(VENV)/bin/kerasinit describe xavier_uniform --fan-in 10

NOTEBOOKS := $(wildcard notebooks/*.ipynb)

test: install-dev
	$(VENV)/bin/ruff check kerasinit tests benchmarks examples
	$(PY) -m pytest -n 2 -q --nbmake tests $(NOTEBOOKS)

lint: install-dev
	$(VENV)/bin/ruff check .

bench: install-dev
	$(PY) benchmarks/bench_init.py
	$(PY) benchmarks/bench_monitor.py
	$(PY) benchmarks/bench_compare.py
	$(PY) benchmarks/bench_pruning.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
