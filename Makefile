# Two commands from a fresh clone: `make demo` and `make test`. Each sets up its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test bench lint clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[plot]'
	touch $@

# torch is pinned (==2.13.0, the CPU build on the project's machines) in the `test` extra.
$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.base
	$(VENV)/bin/tconv demo --out tconv-demo

# The HTML page is tested in headless Chromium (Debian's package).
CHROMIUM := $(shell command -v chromium 2>/dev/null)

test: $(VENV)/.test
ifeq ($(CHROMIUM),)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
endif
	$(PY) -m ruff check src tests
	$(PY) -m pytest

# Speed, side by side with PyTorch and ONNX Runtime; writes benchmarks/results.md and .json
bench: $(VENV)/.test
	$(VENV)/bin/tconv bench --output benchmarks/results

lint: $(VENV)/.test
	$(PY) -m ruff check src tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
