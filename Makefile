# Hashcart: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv with python3 and install the project into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test lint typecheck contracts migrations-check pytest format bench-flash bench-admin clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the product on embedded defaults (SQLite and a filesystem broker under var/): the web
## server, a Celery worker and beat; one purchase is played on the sandbox network.
demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	HASHCART_SITE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py run_demo --host $(HOST) --port $(PORT)

## Lint, type-check, keep the layers (import contracts), check migrations, run the whole suite.
test: lint typecheck contracts migrations-check pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

## The import contracts of pyproject.toml's [tool.importlinter]: the layers of DESIGN §2.
contracts: $(STAMP)
	$(BIN)/lint-imports

migrations-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

pytest: $(STAMP)
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The flash-sale benchmark (needs DATABASE_URL on PostgreSQL and REDIS_URL).
bench-flash: $(STAMP)
	$(BIN)/python manage.py bench_flash_sale

## Time the order change list at a million orders (needs DATABASE_URL on PostgreSQL).
bench-admin: $(STAMP)
	$(BIN)/python manage.py bench_admin_changelist

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
