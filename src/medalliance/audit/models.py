"""Audit ORM. Both tables are insert-only (database triggers refuse UPDATE and DELETE).

Requests insert ``AuditEvent`` rows without taking any shared lock; a single sealer
then chains them in ``AuditSeal`` (seq, event, prev_hash, hash), so the chain never
serialises request traffic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for an audit log.
AuditId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    institution_id: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    basis: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditSeal(Base):
    __tablename__ = "audit_seal"

    seq: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_event.id"), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditSealGap(Base):
    """A run of event ids the sealer passed without finding their events: transactions that
    had not committed yet (sealed when they do) or were rolled back (forgotten after a
    day). Asking only these keeps each sealing run independent of the log's size; a run,
    not each id, so a transaction of 100,000 events is one row."""

    __tablename__ = "audit_seal_gap"

    first_id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(AuditId)
    noted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
