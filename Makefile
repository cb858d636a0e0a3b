# Toolport: `make run` starts the product, `make test` runs the whole suite. Both set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The browser tests drive this Chromium (Debian's package by default; any Chromium or Chrome binary works).
export TOOLPORT_CHROMIUM ?= /usr/bin/chromium

.PHONY: help setup browser conformance run test bench lint format typecheck manage clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: setup ## Set up and run Toolport (database, web, worker, beat) at http://localhost:8000
	$(BIN)/python manage.py runstack

test: setup browser conformance ## Set up and run the whole suite: ruff, mypy, then pytest (pass ARGS="-k name" to narrow it)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(ARGS)

setup: $(VENV)/.synced ## Create the virtual environment and install the locked dependencies

bench: setup ## Run the benchmarks and print their figures (quota; MCP throughput and idle sessions; RAG quality, latency, ingestion; dashboard)
	@missing=""; \
	command -v wrk >/dev/null 2>&1 || missing="wrk"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  echo "Installing$$missing for the MCP throughput benchmark (Debian packages)..."; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# The MCP benchmark's load generator (bench/mcp_load.mjs): Node 22 and ws, pinned in bench/package-lock.json.
	@if [ ! -f bench/node_modules/.installed ] || [ bench/package-lock.json -nt bench/node_modules/.installed ]; then \
	  npm ci --prefix bench --no-audit --no-fund --loglevel=error && touch bench/node_modules/.installed; \
	fi
	$(BIN)/python bench/quota_consume.py
	$(BIN)/python bench/mcp_throughput.py
	$(BIN)/python bench/rag_quality.py
	$(BIN)/python bench/rag_scale.py
	$(BIN)/python bench/dashboard.py

browser: ## Install Chromium for the browser tests if it is missing (Debian/Ubuntu: apt)
	@if [ ! -x "$(TOOLPORT_CHROMIUM)" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "The browser tests need Chromium: install Chromium or Chrome and set TOOLPORT_CHROMIUM to its binary." >&2; \
	    exit 1; \
	  fi; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  echo "Installing Chromium for the browser tests (Debian package 'chromium')..."; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null || { \
	    echo "Could not install Chromium: run 'sudo apt-get install chromium', or set TOOLPORT_CHROMIUM." >&2; exit 1; }; \
	fi

conformance: tests/conformance/node_modules/.installed ## Install the official MCP conformance suite (npm; Node 22 comes with it)

tests/conformance/node_modules/.installed: tests/conformance/package.json tests/conformance/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "The MCP conformance test needs npm: install Node.js (any version; the suite brings Node 22)." >&2; exit 1; \
	  fi; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  echo "Installing npm for the MCP conformance suite (Debian package 'npm')..."; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq npm >/dev/null; \
	fi
	npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error
	@touch $@

lint: setup ## Fix what ruff can fix and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup ## Type-check with mypy + django-stubs
	$(BIN)/mypy .

manage: setup ## Run a Django command: make manage ARGS="createsuperuser"
	$(BIN)/python manage.py $(ARGS)

clean: ## Remove the virtual environment (the data under var/ is kept)
	rm -rf $(VENV)

$(VENV)/.synced: pyproject.toml uv.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --quiet
	@touch $@

$(BIN)/python:
	@python=""; \
	for candidate in python3.12 python3.13 python3.14 python3; do \
	  if command -v $$candidate >/dev/null 2>&1 && \
	     $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	    python=$$candidate; break; \
	  fi; \
	done; \
	if [ -z "$$python" ]; then \
	  echo "Toolport needs Python 3.12 or newer, and none was found on PATH." >&2; \
	  echo "Install it (Debian/Ubuntu: sudo apt install python3.12 python3.12-venv;" >&2; \
	  echo "macOS: brew install python@3.12; or pyenv install 3.12) and run make again." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(VENV) with $$($$python --version)"; \
	$$python -m venv $(VENV) || { \
	  echo "Could not create a virtual environment: install the venv module (Debian/Ubuntu: sudo apt install python3.12-venv)." >&2; \
	  rm -rf $(VENV); exit 1; }
