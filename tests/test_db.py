"""Pooled PostgreSQL connections: pinged only after idling, a dead one is replaced, no JIT."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from conftest import PG_URL
from medalliance import db as db_module
from medalliance.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        pytest.skip("needs MEDALLIANCE_TEST_DATABASE_URL")
    return PG_URL


def _terminate(pg_url: str, backend_pid: int) -> None:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid})
    admin.dispose()


class TestIdleConnections:
    def test_connection_killed_while_idle_is_replaced_on_checkout(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine = make_engine(pg_url)
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _terminate(pg_url, first)
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        engine.dispose()
        assert second != first

    def test_connection_reused_at_once_is_not_pinged(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine = make_engine(pg_url)
        pings: list[object] = []
        monkeypatch.setattr(engine.dialect, "do_ping", pings.append)
        for _ in range(3):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        engine.dispose()
        assert pings == []


def test_searches_are_never_jit_compiled(pg_url: str) -> None:
    # PostgreSQL compiles any query whose cost it over-estimates, e.g. a page of 20 rows
    # over a merge join, adding tens of milliseconds to a short search.
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
    engine.dispose()
