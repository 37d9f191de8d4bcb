# The two commands of the README. Both create .venv and install everything the project needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup browser demo test test-all bench

$(BIN)/playerguard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/playerguard

demo: setup
	$(BIN)/playerguard demo

# Headless Chromium and its driver from Debian's packages, for tests/browser (CI starts as root on a fresh
# machine). Without apt-get, install chromium and chromedriver yourself or the browser tests are skipped.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then apt-get update && apt-get install -y chromium chromium-driver; \
	else echo "no chromium/chromedriver and no apt-get: tests/browser will be skipped"; fi

test: setup browser
	$(BIN)/pytest -n 2 --dist loadfile

test-all: setup browser
	$(BIN)/pytest -n 2 --dist loadfile -m ''
