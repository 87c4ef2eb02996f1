"""Engine, ORM base and the unit of work: one transaction per request, command or job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from medalliance.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit mode off at the driver level; we issue BEGIN ourselves so that
        # SQLite takes the write lock up front (IMMEDIATE) instead of failing mid-way.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Asked for autocommit (a migration's PRAGMA foreign_keys, which a transaction
        # ignores): no BEGIN.
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# psycopg's count of runs after which it prepares a statement: never reached.
NEVER_BY_COUNT = 2**62

# A pooled connection idle longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle in the pool.

    SQLAlchemy's pre-ping costs every checkout a round trip (~4% of a FHIR request's CPU
    on both sides). A connection dies unnoticed while it idles (server restart, idle
    timeout, network); one handed back and forth under load has just been used. Should
    a busy connection die anyway, its request fails, SQLAlchemy sees the disconnect and
    invalidates the whole pool, so the next checkouts get fresh connections.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("pooled connection failed its ping") from exc


# serialization_failure, deadlock_detected: PostgreSQL rolled back the transaction (or
# the savepoint) it chose, so nothing of its work was kept and sending it again is safe.
_ROLLED_BACK = frozenset({"40001", "40P01"})


def rolled_back_by_contention(exc: BaseException) -> str | None:
    """The SQLSTATE of a deadlock or serialization failure (psycopg's error, or
    SQLAlchemy's wrapping it), None for any other error."""
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return sqlstate if sqlstate in _ROLLED_BACK else None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    # No JIT: it pays off on long analytical queries, but PostgreSQL also compiles short
    # searches whose cost it over-estimates (a LIMIT 20 over a merge join: +20 ms each).
    # Nothing is prepared unless asked (``kit.hot`` asks): psycopg prepared any statement
    # run five times, and PostgreSQL then may reuse one generic plan for every value. That
    # suits lookups by key, not searches and lists, whose matches range from one row to a
    # third of a table: the generic plan of ``Encounter?status=cancelled`` (5 % of the
    # encounters) took 43 ms where the plan for the value takes 8. (None would turn
    # preparing off even where asked.)
    engine = create_engine(
        url,
        pool_size=20,
        max_overflow=20,
        connect_args={"options": "-c jit=off", "prepare_threshold": NEVER_BY_COUNT},
    )
    _ping_when_idle(engine)
    return engine


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """Commit on success, roll back on any error. Services only flush."""
    session = (factory or get_sessionmaker())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
