PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: .venv install install-test demo test bench clean

# `.venv` is an alias; the real target is the interpreter, so the venv is created only once.
.venv: $(PY)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

install: $(PY)
	$(PIP) install -e '.[dask]'

install-test: $(PY)
	$(PIP) install -e '.[test]'

# The demo needs TensorFlow, Keras, TensorBoard, scikit-learn and matplotlib (the `demo` extra).
demo: $(PY)
	$(PIP) install -e '.[demo,dask]'
	$(PY) demo/run.py $(DEMO_ARGS)

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(PY)
	$(PIP) install -e '.[test,bench]'
	$(PY) benchmarks/compare.py
	@set -e; found=0; \
	for f in benchmarks/bench_*.py; do \
		[ -e "$$f" ] || continue; \
		found=1; \
		echo "== $$f"; \
		$(PY) "$$f"; \
	done; \
	[ $$found -eq 1 ] || { echo "no benchmarks/bench_*.py found" >&2; exit 1; }

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
