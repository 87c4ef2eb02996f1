# The two commands a newcomer runs: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV := .venv/bin
UV_VERSION := 0.13.8

.PHONY: run test install uv lint typecheck migrations-check pytest

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet "uv==$(UV_VERSION)"

install: uv
	@$(UV) sync --frozen --all-groups --quiet
	@npm ci --no-audit --no-fund --loglevel=error

run: install
	@$(VENV)/medalliance db upgrade
	@$(VENV)/medalliance demo load --scale small --seed 1 --if-empty
	@$(VENV)/medalliance serve --host 127.0.0.1 --port 8000

lint:
	$(VENV)/ruff check src tests bench migrations
	$(VENV)/ruff format --check src tests bench migrations

typecheck:
	$(VENV)/mypy

migrations-check:
	@mkdir -p var
	@rm -f var/migrations-check.sqlite3
	MEDALLIANCE_DATABASE_URL=sqlite:///var/migrations-check.sqlite3 $(VENV)/alembic upgrade head
	MEDALLIANCE_DATABASE_URL=sqlite:///var/migrations-check.sqlite3 $(VENV)/alembic check
	@if [ -n "$$MEDALLIANCE_TEST_DATABASE_URL" ]; then \
		MEDALLIANCE_DATABASE_URL=$$MEDALLIANCE_TEST_DATABASE_URL $(VENV)/medalliance db reset --yes && \
		MEDALLIANCE_DATABASE_URL=$$MEDALLIANCE_TEST_DATABASE_URL $(VENV)/alembic upgrade head && \
		MEDALLIANCE_DATABASE_URL=$$MEDALLIANCE_TEST_DATABASE_URL $(VENV)/alembic check; fi

# One pytest worker per core (pytest-xdist); each worker has its own databases. The 25
# slowest tests are listed: CI should stay well under 20 minutes.
PYTEST_WORKERS ?= auto
pytest:
	$(VENV)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test: install lint typecheck migrations-check pytest
