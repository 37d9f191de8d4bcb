# The two commands of the README. Both create .venv and install everything the project needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-all bench

$(BIN)/playerguard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/playerguard

demo: setup
	$(BIN)/playerguard demo

test: setup
	$(BIN)/pytest -n 2 --dist loadfile

test-all: setup
	$(BIN)/pytest -n 2 --dist loadfile -m ''
