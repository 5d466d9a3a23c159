# The two commands a newcomer needs: `make run` and `make test` (SPEC K).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
CHROMIUM ?= /usr/bin/chromium
PDFTOPPM ?= /usr/bin/pdftoppm
AXE_VERSION := 4.11.0
AXE := .cache/axe/package/axe.min.js
SECRET := instance/secret_key

export FLASK_APP := app

.PHONY: run test test-ready test-unit test-e2e bench lint clean static

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEVSTAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

$(SECRET):
	mkdir -p instance
	$(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > $@

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# poppler-utils: pdftoppm, pdfinfo and pdftotext read the certificates' PDF in the tests.
$(PDFTOPPM):
	apt-get update -qq && apt-get install -y -qq poppler-utils

# nginx: the several-server test (tests/test_cluster.py, deploy/cluster.py) puts it in front.
NGINX ?= /usr/sbin/nginx
$(NGINX):
	apt-get update -qq && apt-get install -y -qq nginx

# pg_dump / pg_restore: `flask backup` and `restore` on PostgreSQL (tests/test_backup.py).
PG_DUMP ?= /usr/bin/pg_dump
$(PG_DUMP):
	apt-get update -qq && apt-get install -y -qq postgresql-client

# wrk: the load generator of bench/throughput.py (C, so it is not the bottleneck).
WRK ?= /usr/bin/wrk
$(WRK):
	apt-get update -qq && apt-get install -y -qq wrk

$(AXE):
	mkdir -p .cache/axe
	cd .cache/axe && npm pack -s axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js

# DEV_MAILBOX=true on the loopback BASE_URL marks a development machine: the only
# place where SMS_BACKEND=console (codes printed by the worker) may start.
DEV_ENV := DEV_MAILBOX=true SMS_BACKEND=console

## static: content-hashed copies of static/ with .gz/.br beside them, in instance/static
## (the app also does this at start, compressing only what changed)
static: $(STAMP)
	$(BIN)/python -m core.assets

## run: install, create the SQLite database with demo data, serve web + worker + a local SMTP sink
run: $(STAMP) $(DEVSTAMP) $(SECRET) static
	SECRET_KEY=$$(cat $(SECRET)) $(DEV_ENV) $(BIN)/flask init-db
	SECRET_KEY=$$(cat $(SECRET)) $(DEV_ENV) $(BIN)/flask demo-data
	@echo "Portal en http://127.0.0.1:5000  ·  correos y SMS en http://127.0.0.1:5000/dev/buzon"
	export SECRET_KEY=$$(cat $(SECRET)) $(DEV_ENV) MAIL_SERVER=127.0.0.1 MAIL_PORT=8025; \
	  trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python -m aiosmtpd -n -l 127.0.0.1:8025 -c aiosmtpd.handlers.Sink & \
	$(BIN)/flask worker & \
	$(BIN)/gunicorn -b 127.0.0.1:5000 -w 1 --threads 8 'app:create_app()'

## test: install what the tests need (browser included) and run them all
test: test-ready
	$(BIN)/python -m pytest -q -p no:cacheprovider

## test-ready: only the installs (CI runs the PostgreSQL suite beside `make test`)
test-ready: $(DEVSTAMP) $(CHROMIUM) $(PDFTOPPM) $(NGINX) $(PG_DUMP) $(AXE) static

## bench: every benchmark, one table (bench/run.py; BENCH="--quick" for a short smoke run)
bench: $(DEVSTAMP) $(CHROMIUM) $(WRK) static
	$(BIN)/python bench/run.py $(BENCH)

lint: $(DEVSTAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .cache instance
