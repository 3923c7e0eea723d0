# The two commands: `make run` serves the storefront, `make test` runs the suite.
# Both set up what they need (virtualenv, packages, MySQL, DynamoDB Local) idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
WORKERS ?= 2
STAMP := $(VENV)/.installed

export MYSQL_HOST ?= 127.0.0.1
export MYSQL_PORT ?= 3306
export MYSQL_USER ?= shop
export MYSQL_PASSWORD ?= shop
export MYSQL_DATABASE ?= online_shopping_store

.PHONY: run test services install db clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

services:
	bash scripts/services.sh

db: install services
	$(BIN)/flask --app shop init-db
	$(BIN)/flask --app shop seed --if-empty

run: db
	$(BIN)/gunicorn --bind 0.0.0.0:$(PORT) --workers $(WORKERS) --threads 4 --access-logfile - 'shop:create_app()'

test: install services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
