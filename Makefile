# The two commands a newcomer needs: `make run` and `make test`. Each makes or reuses .venv.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo $$p; break; fi; done)
BIN := $(VENV)/bin
STAMP := $(VENV)/.caredesk-installed
# pytest-xdist: one pytest worker per core (`make test PYTEST_ARGS=` runs the suite in one process).
PYTEST_ARGS ?= -n auto

.PHONY: install run lint test test-pg clean help webchat

help:
	@echo "make run    install (once) and run CareDesk on SQLite with the example directory, on 127.0.0.1:3978"
	@echo "make test   install (once), lint (ruff, mypy) and run the test suite (SQLite and, when reachable, PostgreSQL)"
	@echo "make lint   install (once) and run ruff and mypy only"
	@echo "make webchat  rebuild the portal's Web Chat bundle from npm (needs Node.js; the result is committed)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "CareDesk needs Python 3.11 or newer (python3.11, python3.12 or python3.13 on PATH)" >&2; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,botbuilder]'
	@touch $(STAMP)

# `make run` uses the example settings and directory unless CAREDESK_CONFIG says otherwise.
run: export CAREDESK_CONFIG ?= examples/caredesk.example.toml
run: install
	$(BIN)/caredesk db upgrade
	$(BIN)/caredesk directory load examples/directory.yaml
	$(BIN)/caredesk serve

# Lint first: a finding fails the build before the slower suite runs (settings in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/python -m mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The portal page's Web Chat bundle, from the npm version pinned in adapters/portal/webchat/package.json.
# Only to upgrade Web Chat: the bundle is committed, so `make run` and `make test` need no Node.js.
webchat:
	bash adapters/portal/webchat/build.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache .test-report caredesk.db caredesk.db-*
