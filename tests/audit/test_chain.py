"""The audit log: append-only, sealed into a hash chain, and tampering is found."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from medalliance.audit import service
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow

ACTOR = Actor(
    user_id="u1", username="doctor", role=Role.DOCTOR, institution_id="township-01", ip="10.0.0.7"
)


def _write_and_seal(db: Session, n: int = 5) -> list[AuditEvent]:
    events = [
        service.record(
            db,
            ACTOR,
            "read",
            resource_type="Observation",
            resource_id=f"o{i}",
            patient_id="p00000001",
        )
        for i in range(n)
    ]
    while service.seal_pending(db):
        pass
    return events


def _disable_append_only(db: Session) -> None:
    """Only someone with direct database access can get this far; the chain still tells."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        db.execute(text("ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only"))
    else:
        for trigger in ("audit_event_no_update", "audit_event_no_delete", "audit_seal_no_delete"):
            db.execute(text(f"DROP TRIGGER {trigger}"))


class TestChain:
    def test_untouched_log_verifies(self, db: Session) -> None:
        _write_and_seal(db)
        report = service.verify(db)
        assert report.ok
        assert report.unsealed == 0
        assert report.checked >= 5

    def test_each_row_records_who_what_when_where_and_outcome(self, db: Session) -> None:
        event = _write_and_seal(db, 1)[0]
        assert (event.username, event.role, event.institution_id, event.ip, event.outcome) == (
            "doctor",
            "doctor",
            "township-01",
            "10.0.0.7",
            "success",
        )
        assert event.occurred_at.tzinfo is not None

    def test_altered_row_is_reported_with_its_id(self, db: Session) -> None:
        events = _write_and_seal(db)
        _disable_append_only(db)
        victim = events[2]
        db.execute(
            text("UPDATE audit_event SET username = 'someone_else' WHERE id = :id"),
            {"id": victim.id},
        )
        db.expire_all()
        report = service.verify(db)
        assert not report.ok
        assert report.broken_event_id == victim.id
        assert "altered" in (report.reason or "")

    def test_deleted_row_is_reported(self, db: Session) -> None:
        events = _write_and_seal(db)
        _disable_append_only(db)
        victim = events[1]
        db.execute(text("DELETE FROM audit_seal WHERE event_id = :id"), {"id": victim.id})
        db.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": victim.id})
        db.expire_all()
        report = service.verify(db)
        assert not report.ok
        assert "missing" in (report.reason or "")

    def test_rows_written_after_sealing_are_pending_not_broken(self, db: Session) -> None:
        _write_and_seal(db)
        service.record(db, ACTOR, "read")
        report = service.verify(db)
        assert report.ok
        assert report.unsealed == 1


def _event_with_id(db: Session, event_id: int) -> None:
    """An event under a chosen id: as a request that took its id first commits last."""
    event = service.record(db, ACTOR, "read", resource_id=f"late-{event_id}")
    event.id = event_id
    db.flush()


class TestOutOfOrderCommits:
    """Two requests at once: the one holding the lower event id may commit second. The
    sealer must seal it when it does, without reading the whole log each run."""

    @pytest.mark.parametrize("in_flight", [1, 20_000])  # one request; a bundle's thousands
    def test_an_event_committed_after_the_sealer_passed_its_id_is_sealed_then(
        self, db: Session, in_flight: int
    ) -> None:
        first = _write_and_seal(db, 1)[0]
        _event_with_id(db, first.id + in_flight + 1)  # the ids before it are "in flight"
        assert service.seal_pending(db) == 1
        assert service.verify(db).unsealed == 0
        _event_with_id(db, first.id + 1)  # one of them commits now
        assert service.verify(db).unsealed == 1
        assert service.seal_pending(db) == 1
        report = service.verify(db)
        assert report.ok
        assert report.unsealed == 0
        assert service.seal_pending(db) == 0  # sealed once, though its gap stays

    def test_a_late_event_is_sealed_after_the_worker_was_down_for_days(
        self, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = _write_and_seal(db, 1)[0]
        _event_with_id(db, first.id + 2)
        service.seal_pending(db)
        _event_with_id(db, first.id + 1)  # committed; then no sealing run for three days
        later = utcnow() + 3 * service.GAP_LIFETIME
        monkeypatch.setattr(service, "utcnow", lambda: later)
        assert service.seal_pending(db) == 1
        assert service.verify(db).unsealed == 0

    def test_an_id_never_committed_is_forgotten_after_a_day(
        self, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = _write_and_seal(db, 1)[0]
        _event_with_id(db, first.id + 2)  # first.id + 1: a transaction rolled back
        service.seal_pending(db)
        noted = text("SELECT count(*) FROM audit_seal_gap WHERE :i BETWEEN first_id AND last_id")
        assert db.scalar(noted, {"i": first.id + 1}) == 1
        later = utcnow() + service.GAP_LIFETIME + timedelta(minutes=1)
        monkeypatch.setattr(service, "utcnow", lambda: later)
        service.seal_pending(db)
        assert db.scalar(text("SELECT count(*) FROM audit_seal_gap")) == 0

    def test_an_event_the_sealer_no_longer_awaits_fails_verification(self, db: Session) -> None:
        first = _write_and_seal(db, 1)[0]
        _event_with_id(db, first.id + 2)
        service.seal_pending(db)
        db.execute(text("DELETE FROM audit_seal_gap"))  # as if its gap had expired
        _event_with_id(db, first.id + 1)  # then it commits
        report = service.verify(db)
        assert not report.ok
        assert report.reason == "1 events below the last sealed one will never be sealed"


def test_passed_ids_are_noted_as_runs() -> None:
    assert service.passed_runs(10, [11, 14, 15, 20]) == [(12, 13), (16, 19)]
    assert service.passed_runs(10, []) == []


class TestAppendOnly:
    def test_database_refuses_to_update_an_audit_row(self, db: Session) -> None:
        event = _write_and_seal(db, 1)[0]
        savepoint = db.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text("UPDATE audit_event SET action = 'x' WHERE id = :id"), {"id": event.id})
        savepoint.rollback()

    def test_database_refuses_to_delete_an_audit_row(self, db: Session) -> None:
        event = _write_and_seal(db, 1)[0]
        savepoint = db.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": event.id})
        savepoint.rollback()


class TestVerifyCommand:
    def _cli(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MEDALLIANCE_DATABASE_URL": url}
        return subprocess.run(
            [sys.executable, "-m", "medalliance.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_command_reports_the_first_broken_row_and_fails(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
        assert self._cli(url, "db", "upgrade").returncode == 0
        import sqlite3

        from medalliance.db import make_engine

        engine = make_engine(url)
        with Session(engine) as db:
            _write_and_seal(db, 3)
            db.commit()
        engine.dispose()
        ok = self._cli(url, "audit", "verify")
        assert ok.returncode == 0, ok.stderr
        assert "intact: 3 sealed rows" in ok.stdout
        raw = sqlite3.connect(tmp_path / "audit.sqlite3")
        raw.execute("DROP TRIGGER audit_event_no_update")
        raw.execute("UPDATE audit_event SET outcome = 'failure' WHERE id = 2")
        raw.commit()
        raw.close()
        broken = self._cli(url, "audit", "verify")
        assert broken.returncode == 1
        assert "BROKEN at seal 2 (event 2)" in broken.stderr
