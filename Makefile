# The two commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
comma := ,
PORT ?= 8000
SHOP_PORT ?= $(shell echo $$(( $(PORT) + 1 )))

.PHONY: install run test lint bench fuzz migrate worker beat lock screenshots messages clean cluster cluster-stop loadtest

$(STAMP): pyproject.toml requirements.lock package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@# axe-core for the accessibility test (pinned in package-lock.json); without npm that test is skipped.
	if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund; else echo "npm not found: skipping axe-core"; fi
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

## Serve the portal on http://127.0.0.1:8000 with demo data (SQLite, eager Celery, console email),
## and a demo shop embedding the storefront widgets on the next port (SHOP_PORT).
run: migrate
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT) --shop-url http://$(HOST):$(SHOP_PORT)
	$(BIN)/python manage.py demo_shop --host $(HOST) --port $(SHOP_PORT) --loyalty-url http://$(HOST):$(PORT) & \
	  shop=$$!; trap 'kill $$shop 2>/dev/null' EXIT; $(BIN)/python manage.py runserver $(HOST):$(PORT)

## The whole test suite on whatever DATABASE_URL / CELERY_BROKER_URL say (SQLite by default),
## in PYTEST_WORKERS processes (pytest-xdist; 0 for one process).
PYTEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

## Benchmarks on PostgreSQL (see bench/README.md); not part of `make test`.
bench: install
	$(BIN)/python -m bench

## Schemathesis, every check, 100 examples per operation, against a throwaway server (a minute or so).
fuzz: install
	$(BIN)/python -m fuzz.run

## A worker for every queue; a pool of its own per kind of work with QUEUES=ledger (or messages,
## webhooks, analytics, default; comma-separated), CONCURRENCY=N processes (docs/deploy.md).
QUEUES ?= default,ledger,messages,webhooks,analytics
CONCURRENCY ?= 2
worker: install
	$(BIN)/celery -A loyalty_site worker -Q $(QUEUES) --concurrency $(CONCURRENCY) \
	  --hostname "$(subst $(comma),+,$(QUEUES))@%h" --loglevel=INFO

beat: install
	$(BIN)/celery -A loyalty_site beat --loglevel=INFO

## The production layout on loopback (docs/deploy.md): HAProxy, two gunicorn servers, two Celery
## workers on RabbitMQ, one beat, PostgreSQL with a streaming replica; prints where each runs.
cluster: install
	$(BIN)/python -m cluster start

cluster-stop:
	$(BIN)/python -m cluster stop

## A partner's mix with locust against `make cluster`, then against one gunicorn (bench/README.md).
loadtest: install
	$(BIN)/python -m bench.loadtest

## Re-pin the resolved dependency set after changing pyproject.toml.
lock:
	rm -rf /tmp/loyalty-lock-venv && $(PYTHON) -m venv /tmp/loyalty-lock-venv
	/tmp/loyalty-lock-venv/bin/pip install --quiet ".[dev]"
	/tmp/loyalty-lock-venv/bin/pip freeze --exclude-editable | grep -v '^loyalty-loop' > requirements.lock

## Refresh the German catalogue (locale/de/LC_MESSAGES/django.po) from the code and templates, and
## compile it (django.mo). Needs GNU gettext (xgettext, msgfmt); both files are committed, so a fresh
## clone runs and tests without it. Translate the new entries of the .po, then run it again.
MESSAGES_IGNORE := --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench --ignore=fuzz \
	--ignore=staticfiles --ignore=media --ignore=private-media
messages: install
	$(BIN)/python manage.py makemessages -l de --no-obsolete --add-location=file $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l de --ignore=.venv --ignore=node_modules

screenshots: install
	$(BIN)/python -m pytest tests/test_screenshots.py tests/test_screenshots_embed.py --screenshots

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
