"""Pooled PostgreSQL connections: pinged only after idling, a dead one is replaced, no JIT,
only hot statements prepared."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, bindparam, create_engine, func, select, text
from sqlalchemy.orm import Session

from conftest import PG_URL
from medalliance import db as db_module
from medalliance.db import make_engine
from medalliance.kit.hot import HotStatement

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


def test_only_hot_statements_are_prepared(pg_url: str) -> None:
    # A prepared search may run on PostgreSQL's generic plan, made for no value in
    # particular: Encounter?status=cancelled took 43 ms on it instead of 8. Lookups by key
    # (hot statements) are prepared at once; everything else is planned for its values.
    hot = HotStatement(select(func.now().label("now")).where(bindparam("n", type_=Integer) > 0))
    engine = make_engine(pg_url)
    with Session(engine) as db:
        for _ in range(10):
            db.execute(text("SELECT count(*) FROM pg_class WHERE relkind = :k"), {"k": "r"})
        hot.run(db, {"n": 1})
        prepared = db.execute(text("SELECT statement FROM pg_prepared_statements")).scalars()
        statements = " ".join(prepared)
    engine.dispose()
    assert "now()" in statements
    assert "pg_class" not in statements
