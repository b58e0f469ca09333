# The two set-up commands: `make up` (the shop with its monitoring) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PG_URL ?= postgres://postgres@127.0.0.1:5432/pasargad
export PYTHONDONTWRITEBYTECODE := 1
# Where `make up` serves the shop and `make simulate` sends traffic (a wildcard bind is reached
# on loopback).
BIND ?= 127.0.0.1:8000
SHOP_ADDRESS = $(patsubst 0.0.0.0:%,127.0.0.1:%,$(patsubst :%,127.0.0.1:%,$(BIND)))

.PHONY: up install test test-sqlite test-postgres lint simulate superuser bench mutation grafana

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

up: install
	$(PY) scripts/up.py --bind $(BIND)

# Traffic against the running `make up` (at BIND, as up.py serves it): a healthy shop, or
# PROFILE=payment-declines (comma-separated to combine; docs/simulate.md). Its staff user
# moves paid orders on and restocks.
PROFILE ?= healthy
DURATION ?= 1800
simulate: install
	$(PY) manage.py simulate_traffic --base-url http://$(SHOP_ADDRESS) --rate 5 --duration $(DURATION) \
		--staff-user simulator --profile $(PROFILE)

# A staff user for the admin and the monitoring endpoints (asks for a password).
superuser: install
	$(PY) manage.py createsuperuser

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint test-sqlite test-postgres

# The suite waits on servers and processes more than it computes: several workers overlap the
# waits (tests/conftest.py keeps a module, or modules sharing a Redis database, on one worker).
# The `alone` tests measure the machine's CPUs or latencies: they run after, one at a time.
TEST_WORKERS ?= 4
# --no-loadscope-reorder: xdist would otherwise hand out the groups with the most tests first,
# undoing tests/conftest.py's order (the long, few-test modules first).
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-sqlite: install
	$(VENV)/bin/pytest -q $(PYTEST_PARALLEL) -m "not postgres and not alone"
	$(VENV)/bin/pytest -q -m "not postgres and alone"

# The database-facing tests again on PostgreSQL, plus the PostgreSQL-only ones.
test-postgres: install
	DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest -q $(PYTEST_PARALLEL) -m "(postgres or db) and not alone"
	DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest -q -m "(postgres or db) and alone"

bench: install
	$(PY) bench/run_all.py

# Mutation testing of the alerting rules, health checks and scraper (docs/mutation-testing.md).
mutation: install
	$(PY) scripts/mutation.py

# Regenerate deploy/grafana/dashboards/*.json from monitoring/grafana/catalogue.py (docs/grafana.md).
grafana: install
	$(PY) -m monitoring.grafana
