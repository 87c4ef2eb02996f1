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
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Insert, Select
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import Compiled

Processor = Callable[[Any], Any]


def flush_pending(db: Session) -> None:
    """What the session's autoflush does before its own statements, for SQL sent past it
    on the same connection: pending ORM rows (e.g. a new care relationship) are then seen."""
    if db.new or db.dirty or db.deleted:
        db.flush()


@dataclass(frozen=True)
class _Compiled:
    sql: str
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
        connection = db.connection()
        if connection.dialect.name != "postgresql":
            result = cast(CursorResult[Any], db.execute(self.statement, dict(params)))
            return result.all() if result.returns_rows else []
        flush_pending(db)
        compiled = self._postgresql or self._compile(connection.dialect)
        values = {**compiled.defaults, **params}
        for name, process in compiled.processors:
            values[name] = process(values[name])
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute(compiled.sql, values)
            found = cursor.fetchall() if compiled.returns_rows else []
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
