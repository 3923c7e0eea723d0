# The two commands: `make run` serves the storefront, `make test` runs the suite.
# Both set up what they need (virtualenv, packages, MySQL, DynamoDB Local) idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# A developer's server listens on this machine only (its flag page needs no password there);
# HOST=0.0.0.0 serves the network (then set SHOP_FLAGS_PAGE_PASSWORD to reach the flag page).
HOST ?= 127.0.0.1
WORKERS ?= 2
STAMP := $(VENV)/.installed

# CPython 3.11 keeps one AST recursion counter per interpreter: a traceback formatted on one thread
# (its carets come from ast.parse) while another parses (werkzeug compiles each route with ast.parse
# in create_app) raises "SystemError: AST constructor recursion depth mismatch" on either. Without
# column ranges a traceback parses nothing; 3.12 fixed the counter. Every command here runs so.
export PYTHONNODEBUGRANGES := 1

# MYSQL_*, DYNAMODB_* and the rest default in the app (shop/config.py) and scripts/services.sh.
# Outside SHOP_ENV=development the app refuses a missing or published key: use this machine's
# generated one (kept outside git by scripts/secret-key.sh) unless SECRET_KEY is given.
ifeq ($(origin SECRET_KEY), undefined)
export SECRET_KEY := $(shell bash scripts/secret-key.sh)
endif

.PHONY: run serve flask test services browser install db bench reliability journey fuzz clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

db: install services
	$(BIN)/flask --app shop init-db
	$(BIN)/flask --app shop ddb-create-tables
	$(BIN)/flask --app shop seed --if-empty
	@# DynamoDB Local keeps nothing across restarts: while the server's phase (stored, or SHOP_FLAGS)
	@# writes both stores, copy MySQL's data over (idempotent). Never in phase 5.
	$(BIN)/flask --app shop backfill --if-dual-writing

# A developer's machine: the flag page opens without a password (SHOP_ENV=production locks it).
run: export SHOP_ENV ?= development
# The settings it serves with are saved in .run/settings.env (ignored by git) for scripts/flask.sh.
run: db
	$(BIN)/python -m shop.runenv save .run/settings.env http://$(HOST):$(PORT)
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) --workers $(WORKERS) --threads 4 --access-logfile - 'shop:create_app()'

# The app's commands with the settings `make run` saved: make flask ARGS="phase status". The
# caller's own variables win; the key this Makefile generates does not override the saved one.
flask: install
	@env $(if $(filter file,$(origin SECRET_KEY)),-u SECRET_KEY) bash scripts/flask.sh $(ARGS)

# Production on one machine: nginx on PORT in front of gunicorn on a unix socket, so a request
# reaches a worker thread only once it has fully arrived (scripts/serve.sh, docs/operations.md).
serve: db
	bash scripts/serve.sh

# After the whole suite (server default flags), the API and HTML suites run again under
# each of the other four migration phases.
PRESETS := READ_MYSQL,WRITE_MYSQL,WRITE_DDB READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB \
           READ_DDB,WRITE_MYSQL,WRITE_DDB READ_DDB,WRITE_DDB
PRESET_TESTS := tests/test_api_accounts.py tests/test_api_catalog.py tests/test_api_shopping.py tests/test_web.py

test: install services browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@for flags in $(PRESETS); do \
	  echo "== API and HTML suites with SHOP_FLAGS=$$flags"; \
	  SHOP_FLAGS=$$flags $(BIN)/python -m pytest -q $(PRESET_TESTS) || exit 1; \
	done

# Every benchmark, against a DynamoDB Local of its own (scripts/bench.sh); one: make bench BENCH="gradual.py --busy"
bench: install services
	bash scripts/bench-tools.sh
	bash scripts/bench.sh $(BENCH)

reliability: install services
	$(BIN)/python -m reliability.run

# One live dataset under traffic through phases 1 -> 5 -> 1 on a 2-worker server (docs/reliability.md).
journey: install services
	$(BIN)/python -m reliability.journey

# 10,000 generated requests over the JSON API; reports the responses >= 500 (target 0).
fuzz: install services
	$(BIN)/python -m reliability.fuzz

clean-venv:
	rm -rf $(VENV)
