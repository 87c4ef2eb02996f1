"""Test databases: SQLite always, PostgreSQL when MEDALLIANCE_TEST_DATABASE_URL is set.

Each backend is migrated with Alembic and loaded with the small demo consortium once per
session; every test then runs inside a transaction that is rolled back (the app's own
commits become savepoints). Under pytest-xdist each worker has a PostgreSQL database of
its own (``<name>_gw0``, ``<name>_gw1`` …), since every session resets its schema.
"""

from __future__ import annotations

import os

os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "test")
os.environ.setdefault("MEDALLIANCE_SECRET_KEY", "test-secret-key-that-is-long-enough-0123456789")

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from medalliance.app import create_app
from medalliance.config import REPO_ROOT
from medalliance.db import make_engine, unit_of_work
from medalliance.demo.loader import Scale, load


def _ensure_database(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _named(url: str, suffix: str) -> str:
    """``url`` with its database name suffixed (``test`` -> ``test_gw0``), query kept."""
    parsed = make_url(url)
    named = parsed.set(database=f"{parsed.database}_{suffix}")
    _ensure_database(url, str(named.database))
    return named.render_as_string(hide_password=False)


def _worker_url(url: str | None) -> str | None:
    """The configured database for a plain run; a database per xdist worker otherwise."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return url if url is None or worker is None else _named(url, worker)


PG_URL = _worker_url(os.environ.get("MEDALLIANCE_TEST_DATABASE_URL"))
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def migrate(engine: Engine) -> None:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def reset_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


def side_database(suffix: str) -> Engine:
    """A migrated, empty PostgreSQL database of its own (created when missing), for tests
    that commit from several threads and so cannot share the rolled-back session."""
    assert PG_URL
    engine = make_engine(_named(PG_URL, suffix))
    reset_postgres(engine)
    migrate(engine)
    return engine


def demo_side_database(suffix: str) -> Engine:
    """A ``side_database`` holding the demo consortium."""
    engine = side_database(suffix)
    with unit_of_work(sessionmaker(engine)) as db:
        load(db, scale=Scale.SMALL, seed=1)
    return engine


def unmigrated_database(backend: str, directory: Path) -> Engine:
    """An empty database, not migrated, for a migration's own test: SQLite in
    ``directory``, or a PostgreSQL database of its own (the demo's is left as it is)."""
    if backend == "postgresql":
        assert PG_URL
        engine = make_engine(_named(PG_URL, "migration"))
        reset_postgres(engine)
        return engine
    return make_engine(f"sqlite:///{directory / 'migration.sqlite3'}")


def fresh_engine(backend: str, directory: Path) -> Engine:
    """A migrated, empty database of the given backend."""
    if backend == "postgresql":
        assert PG_URL
        engine = make_engine(PG_URL)
        reset_postgres(engine)
    else:
        engine = make_engine(f"sqlite:///{directory / 'test.sqlite3'}")
    migrate(engine)
    return engine


@pytest.fixture(scope="session")
def demo_engines() -> Iterator[dict[str, Engine]]:
    """Each backend's demo database, made when a test first asks for it."""
    engines: dict[str, Engine] = {}
    yield engines
    for made in engines.values():
        made.dispose()


@pytest.fixture(params=BACKENDS)
def engine(
    request: pytest.FixtureRequest,
    demo_engines: dict[str, Engine],
    tmp_path_factory: pytest.TempPathFactory,
) -> Engine:
    # Not a session fixture parametrised by backend: pytest-xdist runs a file's tests of
    # both backends together, and pytest would then rebuild the database at every switch.
    backend = request.param
    if backend not in demo_engines:
        made = fresh_engine(backend, tmp_path_factory.mktemp(backend))
        with Session(made) as session:
            load(session, scale=Scale.SMALL, seed=1)
            session.commit()
        demo_engines[backend] = made
    return demo_engines[backend]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def app(session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(sessionmaker=session_factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
