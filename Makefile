# One-command entry points. Everything installs into .venv; nothing global.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_NOW ?= 2026-03-04T18:00:00+05:30

.PHONY: demo test check lint typecheck format bench bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: build the bundled sample edition and dry-run it to subscribers.example.csv
demo: $(STAMP)
	$(BIN)/newsletter build --now $(DEMO_NOW) --out demo-output/build
	$(BIN)/newsletter send --dry-run --now $(DEMO_NOW) --outbox demo-output/outbox --force

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## check: lint, format check, import layers, types, tests
check: lint typecheck test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: message generation, dry run and SMTP throughput, printed as a table
bench: $(STAMP)
	$(BIN)/python bench/run.py

## bench-scale: 1,000,000 recipients' ledger on SQLite and on a durable PostgreSQL, and
## full sends by 1 sender (SQLite) and 1, 2 and 4 senders sharing PostgreSQL; one run each
bench-scale: $(STAMP)
	$(BIN)/python bench/run.py --stages ledger,scale --ledger-count 1000000 --repeat 1

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache build dist
