"""Statements on the path of every FHIR request, sent straight to psycopg on PostgreSQL.

``Session.execute`` costs ~50 µs of Python per statement on top of psycopg's own ~20 µs
(execution context, result metadata, row processing); a FHIR read or write runs four to
six statements, and that was a fifth of the server's CPU under load. A ``HotStatement`` is
compiled once per dialect, keeps SQLAlchemy's bind processing (casts, JSON), and on
PostgreSQL runs on the session's own connection, inside its transaction, returning named
tuples. Elsewhere (SQLite) it is an ordinary ``Session.execute``.

Bind and result values go through the column types' own processors (JSON, the UTC
timestamps), so a row reads as it would through the session. Not for IN lists (expanding
parameters) or ORM entities: a hot statement is plain Core with named ``bindparam``s.

Hot SQL is sent with PostgreSQL's own ``$n`` placeholders (``native``, ``execute_native``):
psycopg's ``%(name)s`` form is rewritten on every execution, and parsed afresh for
statements over 4 KB such as the store's write, ~4 % of a request's server time.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from psycopg import RawCursor
from sqlalchemy import Insert, Select
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.compiler import Compiled

Processor = Callable[[Any], Any]


def flush_pending(db: Session) -> None:
    """What the session's autoflush does before its own statements, for SQL sent past it
    on the same connection: pending ORM rows (e.g. a new care relationship) are then seen."""
    if db.new or db.dirty or db.deleted:
        db.flush()


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@cache
def native(sql: str) -> tuple[str, tuple[str, ...]]:
    """``%(name)s`` SQL (psycopg's, SQLAlchemy's) with ``$n`` placeholders instead, and the
    parameter names in ``n`` order; a name used twice is one parameter."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"  # an escaped percent sign
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(placeholder, sql), tuple(names)


def execute_native(
    raw: Any, sql: str, params: Mapping[str, Any], *, fetch: bool
) -> list[tuple[Any, ...]]:
    """Runs ``%(name)s`` SQL on a psycopg connection as ``$n`` SQL; the rows if ``fetch``.

    Prepared: hot statements look rows up by key, so one generic plan serves every value
    and saves parsing and planning each time (other statements are not, see ``db``)."""
    text, names = native(sql)
    with RawCursor(raw) as cursor:
        cursor.execute(text, [params[name] for name in names], prepare=True)
        return cursor.fetchall() if fetch else []


@dataclass(frozen=True)
class BoundConnection:
    """The connection of a session's transaction; ``raw`` is psycopg's on PostgreSQL."""

    transaction: SessionTransaction
    connection: Connection
    raw: Any | None


_BOUND = "medalliance.hot.connection"


def session_connection(db: Session) -> BoundConnection:
    """``db.connection()``, kept for the rest of the session's transaction: asking the
    session each time cost ~10 µs a statement (its transaction state machine). A new
    transaction (after a commit or rollback) is a new object, and asks again; so does a
    savepoint (``begin_nested``), whose SAVEPOINT the session sends only when asked for
    its connection: else its rollback would undo nothing sent past the session."""
    bound: BoundConnection | None = db.info.get(_BOUND)
    transaction = db.get_nested_transaction() or db.get_transaction()
    if bound is not None and bound.transaction is transaction:
        return bound
    connection = db.connection()  # begins the transaction (or savepoint) if none is open
    transaction = db.get_nested_transaction() or db.get_transaction()
    assert transaction is not None
    postgresql = connection.dialect.name == "postgresql"
    raw = connection.connection.dbapi_connection if postgresql else None
    bound = BoundConnection(transaction, connection, raw)
    db.info[_BOUND] = bound
    return bound


@dataclass(frozen=True)
class _Compiled:
    sql: str  # with %(name)s placeholders, as compiled
    defaults: dict[str, Any]  # values bound at build time (e.g. a LIMIT)
    processors: tuple[tuple[str, Processor], ...]
    row: Callable[..., Any]  # a named tuple of the result columns
    results: tuple[Processor | None, ...]  # per result column
    returns_rows: bool

    def read(self, values: tuple[Any, ...]) -> Any:
        if not any(self.results):
            return self.row(*values)
        pairs = zip(self.results, values, strict=True)
        return self.row(*(v if process is None else process(v) for process, v in pairs))


class HotStatement:
    """A prebuilt Core statement with named ``bindparam``s, run with a dict of values."""

    def __init__(self, statement: Select[Any] | Insert) -> None:
        self.statement = statement
        self._postgresql: _Compiled | None = None

    def rows(self, db: Session, params: Mapping[str, Any]) -> Sequence[Any]:
        bound = session_connection(db)
        if bound.raw is None:
            result = cast(CursorResult[Any], db.execute(self.statement, dict(params)))
            return result.all() if result.returns_rows else []
        flush_pending(db)
        compiled = self._postgresql or self._compile(bound.connection.dialect)
        values = {**compiled.defaults, **params}
        for name, process in compiled.processors:
            values[name] = process(values[name])
        raw = bound.raw
        found = execute_native(raw, compiled.sql, values, fetch=compiled.returns_rows)
        return [compiled.read(values) for values in found]

    def first(self, db: Session, params: Mapping[str, Any]) -> Any | None:
        found = self.rows(db, params)
        return found[0] if found else None

    def run(self, db: Session, params: Mapping[str, Any]) -> None:
        self.rows(db, params)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled: Compiled = self.statement.compile(dialect=dialect)
        processors = []
        for name, bind in compiled.binds.items():  # type: ignore[attr-defined]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
        columns = (
            list(self.statement.selected_columns) if isinstance(self.statement, Select) else []
        )
        self._postgresql = _Compiled(
            sql=compiled.string,
            defaults={k: v for k, v in compiled.params.items() if v is not None},
            processors=tuple(processors),
            row=namedtuple("Row", [c.key for c in columns]),  # type: ignore[misc]
            returns_rows=bool(columns),
            results=tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ),
        )
        return self._postgresql
