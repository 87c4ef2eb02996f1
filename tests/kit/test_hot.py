"""Hot statements: what they write and read is what the session would have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from medalliance.audit.models import AuditEvent
from medalliance.kit.hot import HotStatement, native, session_connection

_event: Any = AuditEvent.__table__
_INSERT = HotStatement(
    insert(_event)
    .values(
        occurred_at=bindparam("occurred_at"),
        username=bindparam("username"),
        action="hot.test",
        outcome="success",
        detail=bindparam("detail"),
    )
    .inline()
)
_SELECT = select(_event.c.id, _event.c.occurred_at, _event.c.detail).where(
    _event.c.username == bindparam("username")
)
_HOT_SELECT = HotStatement(_SELECT)


def test_rows_read_back_as_the_session_reads_them(db: Session) -> None:
    beijing = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 26, 22, 30, tzinfo=beijing)
    detail = {"version": 3, "note": "复诊"}
    _INSERT.run(db, {"occurred_at": at, "username": "hot-1", "detail": detail})

    hot = _HOT_SELECT.rows(db, {"username": "hot-1"})
    plain = db.execute(_SELECT, {"username": "hot-1"}).all()

    assert [tuple(r) for r in hot] == [tuple(r) for r in plain]
    (row,) = hot
    assert row.occurred_at == at
    assert row.occurred_at.tzinfo == UTC  # the column type's own result processing
    assert row.detail == detail


def test_it_runs_in_the_sessions_transaction(db: Session) -> None:
    db.add(AuditEvent(username="hot-2", action="hot.test", outcome="success", detail={}))
    assert _HOT_SELECT.first(db, {"username": "hot-2"}) is not None  # pending rows flushed
    db.rollback()
    assert _HOT_SELECT.first(db, {"username": "hot-2"}) is None
    assert _HOT_SELECT.rows(db, {"username": "nobody"}) == []


def test_the_kept_connection_follows_the_sessions_transactions(db: Session) -> None:
    first = session_connection(db)
    assert session_connection(db) is first  # kept within one transaction
    at = datetime(2026, 11, 26, tzinfo=UTC)
    _INSERT.run(db, {"occurred_at": at, "username": "hot-3", "detail": {}})
    db.commit()
    second = session_connection(db)  # a new transaction: asked again
    assert second is not first
    assert second.transaction is db.get_transaction()
    _INSERT.run(db, {"occurred_at": at, "username": "hot-4", "detail": {}})
    db.rollback()  # only the second transaction's row goes
    assert _HOT_SELECT.first(db, {"username": "hot-3"}) is not None
    assert _HOT_SELECT.first(db, {"username": "hot-4"}) is None


def test_a_savepoints_rollback_undoes_the_hot_statements_run_in_it(db: Session) -> None:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    _INSERT.run(db, {"occurred_at": at, "username": "hot-5", "detail": {}})  # keeps the connection
    savepoint = db.begin_nested()  # as a batch entry's
    _INSERT.run(db, {"occurred_at": at, "username": "hot-6", "detail": {}})
    savepoint.rollback()
    assert _HOT_SELECT.first(db, {"username": "hot-5"}) is not None
    assert _HOT_SELECT.first(db, {"username": "hot-6"}) is None


def test_native_placeholders_number_each_name_once_and_keep_percent_signs() -> None:
    sql = "SELECT %(a)s, %(b)s WHERE x = %(a)s AND y LIKE 'p%%' AND z = %(c)s"
    assert native(sql) == ("SELECT $1, $2 WHERE x = $1 AND y LIKE 'p%' AND z = $3", ("a", "b", "c"))


def test_a_statement_with_a_repeated_name_and_a_percent_sign_runs(db: Session) -> None:
    audit = AuditEvent.__table__
    stmt = select(
        (bindparam("n") + bindparam("n")).label("twice"),
        select(audit.c.id).where(audit.c.action.like("no such%")).exists().label("any"),
    )
    row = HotStatement(stmt).first(db, {"n": 21})
    assert row is not None
    assert (row.twice, row.any) == (42, False)
