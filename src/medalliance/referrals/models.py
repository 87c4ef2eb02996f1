"""Referral ORM: the referral (ServiceRequest + Task in one row, optimistic locking), its
history, its escalations (unique per level) and the follow-up task of the closed loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in
from medalliance.referrals.enums import (
    Direction,
    FollowUpStatus,
    ReferralEvent,
    ReferralStatus,
    Side,
    Urgency,
)


class Referral(Base):
    __tablename__ = "referral"
    __table_args__ = (
        check_in("status", ReferralStatus),
        check_in("direction", Direction),
        check_in("urgency", Urgency),
        # The queues: one institution's side, open ones by deadline, all by last change.
        Index("ix_referral_to_status_deadline", "to_institution_id", "status", "deadline_at"),
        Index("ix_referral_to_updated", "to_institution_id", "updated_at"),
        Index("ix_referral_from_status_updated", "from_institution_id", "status", "updated_at"),
        Index("ix_referral_from_updated", "from_institution_id", "updated_at"),
        # The escalation scan: awaiting a decision past the deadline.
        Index("ix_referral_status_deadline", "status", "deadline_at"),
        Index("ix_referral_updated", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    # The name as written on the referral form (a snapshot, like the paper form it replaces).
    patient_name: Mapped[str] = mapped_column(String(100), default="")
    episode_id: Mapped[str] = mapped_column(String(32), index=True)
    previous_referral_id: Mapped[str | None] = mapped_column(ForeignKey("referral.id"))
    direction: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    from_institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    from_department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    from_practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    to_institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    to_department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    to_practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    requester_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    requester_name: Mapped[str] = mapped_column(String(100))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason_text: Mapped[str] = mapped_column(Text, default="")
    diagnoses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    history_summary: Mapped[str] = mapped_column(Text, default="")
    current_treatment: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)
    rehab_plan: Mapped[str] = mapped_column(Text, default="")
    medication_plan: Mapped[str] = mapped_column(Text, default="")
    follow_up_plan: Mapped[str] = mapped_column(Text, default="")
    recommendation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome_reference: Mapped[str | None] = mapped_column(String(128))
    outcome_summary: Mapped[str] = mapped_column(Text, default="")
    # TODO(records): only used while records.service is missing; then the document lives in
    # the shared record and only outcome_reference is kept.
    outcome_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome_seen_at: Mapped[datetime | None] = mapped_column()
    appointment_id: Mapped[str | None] = mapped_column(String(32))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    deadline_at: Mapped[datetime | None] = mapped_column()
    # A second deadline span later the escalation goes up to the consortium's lead.
    escalation_deadline_at: Mapped[datetime | None] = mapped_column()
    requested_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    # Optimistic locking: every UPDATE says WHERE version = <read version>; the loser of a
    # race matches no row and gets 409 instead of silently overwriting the winner.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ReferralHistory(Base):
    """Who did what, when and why: one row per transition, never updated."""

    __tablename__ = "referral_history"
    __table_args__ = (check_in("event", ReferralEvent), check_in("side", Side))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referral.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    institution_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column()


class ReferralEscalation(Base):
    """One row per referral and level: the unique key makes escalation idempotent across
    worker crashes, restarts and concurrent workers."""

    __tablename__ = "referral_escalation"
    __table_args__ = (UniqueConstraint("referral_id", "level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referral.id"))
    level: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    created_at: Mapped[datetime] = mapped_column()


class ReferralFollowUp(Base):
    """The closed loop after a down referral: the grassroots sees the patient within N days."""

    __tablename__ = "referral_follow_up"
    __table_args__ = (
        check_in("status", FollowUpStatus),
        Index("ix_referral_follow_up_institution_due", "institution_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referral.id"), unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    assignee_practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    assignee_user_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=FollowUpStatus.OPEN.value)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
    # Who saw the patient, when, and what they found: the closed loop's last step.
    done_at: Mapped[datetime | None] = mapped_column()
    done_by: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(Text, default="")
