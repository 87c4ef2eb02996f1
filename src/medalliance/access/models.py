"""Access ORM. Consent and break-the-glass rows are never updated: the newest row wins,
so the history of a patient's choices is kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.access.enums import ConsentScope, ConsentStatus, RelationshipKind
from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in


class CareRelationship(Base):
    __tablename__ = "care_relationship"
    __table_args__ = (
        UniqueConstraint("patient_id", "institution_id", "kind", "source_id"),
        Index("ix_care_relationship_institution_patient", "institution_id", "patient_id"),
        check_in("kind", RelationshipKind),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    kind: Mapped[str] = mapped_column(String(16))
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()


class Consent(Base):
    __tablename__ = "consent"
    __table_args__ = (check_in("status", ConsentStatus), check_in("scope", ConsentScope))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    institution_id: Mapped[str | None] = mapped_column(ForeignKey("institution.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))
    source_document: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="")


class BreakGlassGrant(Base):
    __tablename__ = "break_glass_grant"
    __table_args__ = (Index("ix_break_glass_user_patient", "user_id", "patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    institution_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
