# Two commands from a fresh clone: `make demo` and `make test`. Each sets up its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test browser bench lint lock clean

# The project's environments install the exact versions of requirements.lock (the whole test set,
# resolved by pip-compile through this machine's pip configuration, where torch's CPU wheel lies),
# given to pip as constraints: demo gets only what it needs, at the versions the tests passed with, and
# no release elsewhere can change what a fresh clone installs. `make lock` re-resolves it on purpose.
LOCK := requirements.lock

# pip byte-compiles what it installs file by file on one core; compileall does the same on every
# core (a fresh venv for the tests: ~75 s -> ~63 s on 2 cores). The bytecode is written at install
# because some machines switch writing it at import off (PYTHONDONTWRITEBYTECODE=1). As with pip, a
# file that does not compile is passed over (torch ships a Python 3.12-only test helper).
PIP := $(PY) -m pip install --quiet --no-compile -c $(LOCK)
COMPILE := $(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true

# A new lock or new requirements make a new venv: nothing from the old set lingers.
$(VENV)/.base: pyproject.toml $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[plot]'
	$(COMPILE)
	touch $@

# torch is pinned (==2.13.0, the CPU build on the project's machines) in the `test` extra. While pip
# installs it (one core), numba compiles the engine's loops into its cache on the other
# (tconv.engine.warm), so the test processes load them rather than each compiling them.
$(VENV)/.test: $(VENV)/.base
	$(PY) -m tconv.engine.warm & warm=$$!; \
	$(PIP) -e '.[test]'; installed=$$?; \
	wait $$warm || echo "tconv.engine.warm failed: the tests compile the engine's loops as they go"; \
	exit $$installed
	$(COMPILE)
	touch $@

# The page's screenshots are taken in headless Chromium: demo installs it as test does (browser, below);
# without it the demo writes everything else and says the screenshots were skipped.
demo: $(VENV)/.base browser
	$(VENV)/bin/tconv demo --out tconv-demo
demo: BROWSER_NEED = the page's screenshots are taken in it
demo: BROWSER_SKIPPED = the page's screenshots will be skipped

# The HTML page is tested in headless Chromium (Debian's package). When it is missing, make test
# installs it as root, or with sudo when sudo needs no password; otherwise it says how and the
# browser tests skip. As root (CI) a missing browser fails them instead: TCONV_REQUIRE_BROWSER=1.
CHROMIUM := $(shell command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null)
IS_ROOT  := $(shell [ "$$(id -u)" = 0 ] && echo 1)
INSTALL_CHROMIUM := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
# what browser says, for test (and, set below, for demo)
BROWSER_NEED    ?= the HTML page is tested in it
BROWSER_SKIPPED ?= the browser tests will be skipped

# The tests run in one process per core (pytest-xdist, at most 4): ~75 s instead of ~110 s on 2 cores;
# the dask tests share one process (xdist_group), so only one LocalCluster starts.
PYTEST_WORKERS ?= -n auto --maxprocesses=4 --dist loadgroup

# Chromium installs while pip does (make runs the two prerequisites of test side by side).
MAKEFLAGS += -j2

test: $(VENV)/.test browser
	$(PY) -m ruff check src tests
	$(PY) -m mypy
	$(if $(IS_ROOT),TCONV_REQUIRE_BROWSER=1 )$(PY) -m pytest$(if $(PYTEST_WORKERS), $(PYTEST_WORKERS))

browser:
ifeq ($(CHROMIUM),)
ifeq ($(IS_ROOT),1)
	$(INSTALL_CHROMIUM)
else
	@if sudo -n true 2>/dev/null; then \
		echo "make $(MAKECMDGOALS): installing Chromium with sudo ($(BROWSER_NEED))"; \
		sudo sh -c '$(INSTALL_CHROMIUM)'; \
	else \
		echo "make $(MAKECMDGOALS): Chromium is missing and apt-get needs root: $(BROWSER_SKIPPED)."; \
		echo "make $(MAKECMDGOALS): install it (sudo apt-get install chromium) and run make $(MAKECMDGOALS) again."; \
	fi
endif
endif

# Speed, side by side with PyTorch, ONNX Runtime and OpenVINO; writes benchmarks/results.md and .json
bench: $(VENV)/.test
	$(VENV)/bin/tconv bench --profile --output benchmarks/results

# The newest releases the requirements allow, on purpose: re-resolve requirements.lock (pip-compile
# in a venv of its own, through this machine's pip configuration), then build a new venv from it and
# run the tests on it. Commit the lock when they pass.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet 'pip-tools>=7.4'
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --all-extras --strip-extras --no-emit-index-url \
		--no-emit-find-links --unsafe-package tconv --output-file $(LOCK) pyproject.toml
	$(MAKE) test

lint: $(VENV)/.test
	$(PY) -m ruff check src tests
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
