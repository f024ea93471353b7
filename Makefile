# The two commands of the README:
#   make run    create .venv, install, run the seed suite on the embedded model, print a summary
#   make test   create .venv with test extras, run the whole test suite
#
# llama-cpp-python builds from source (about 10 minutes on 2 cores). pip keeps the built wheel in its
# cache (~/.cache/pip/wheels), so a second set-up, or a fresh clone on the same machine, reuses it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test install install-test bench lint clean

run: install
	$(BIN)/sandbox run --tasks seed --servers servers/mcp.json --out runs/seed.jsonl --overwrite

test: install-test
	$(BIN)/python -m pytest

bench: install-test
	$(BIN)/python bench/bench_episode.py

lint: install-test
	$(BIN)/ruff check sandbox servers tools rewards tests bench
	$(BIN)/ruff format --check sandbox servers tools rewards tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(VENV)/mcp1/.installed $(VENV)/node/.installed
	@# Debian's chromium for the HTML viewer's browser tests; installed when missing and run as root.
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } || true
	@# bubblewrap: the python server's sandbox; it refuses to start without it.
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq bubblewrap; } || true

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

# Third-party MCP servers for the interoperability tests (tests/e2e/test_third_party_servers.py):
# an interpreter with mcp 1.x, for servers written against it, and the Node filesystem server.
$(VENV)/mcp1/.installed: | $(BIN)/python
	$(PYTHON) -m venv $(VENV)/mcp1
	$(VENV)/mcp1/bin/python -m pip install --quiet 'mcp<2'
	touch $@

$(VENV)/node/.installed: | $(BIN)/python
	@# Without npm the Node server tests skip, saying why.
	if command -v npm >/dev/null; then \
	  npm install --prefix $(VENV)/node --save-exact --no-audit --no-fund --silent \
	    @modelcontextprotocol/server-filesystem@2026.8.31 && touch $@; \
	else echo "npm not found: the Node MCP server tests will be skipped"; fi

clean:
	rm -rf $(VENV) runs .pytest_cache
