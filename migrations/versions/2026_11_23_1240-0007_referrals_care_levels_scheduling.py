"""referrals, care-level catalogue, scheduling (slots and appointments)

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-23 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medalliance.db

revision: str = "0007"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "care_level_catalogue",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_care_level_catalogue")),
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=100), nullable=False),
        sa.Column("episode_id", sa.String(length=32), nullable=False),
        sa.Column("previous_referral_id", sa.String(length=32), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("green_channel", sa.Boolean(), nullable=False),
        sa.Column("from_institution_id", sa.String(length=64), nullable=False),
        sa.Column("from_department_id", sa.String(length=64), nullable=True),
        sa.Column("from_practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("to_institution_id", sa.String(length=64), nullable=False),
        sa.Column("to_department_id", sa.String(length=64), nullable=True),
        sa.Column("to_practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("requester_user_id", sa.String(length=64), nullable=True),
        sa.Column("requester_name", sa.String(length=100), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason_text", sa.Text(), nullable=False),
        sa.Column("diagnoses", sa.JSON(), nullable=False),
        sa.Column("history_summary", sa.Text(), nullable=False),
        sa.Column("current_treatment", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("rehab_plan", sa.Text(), nullable=False),
        sa.Column("medication_plan", sa.Text(), nullable=False),
        sa.Column("follow_up_plan", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.JSON(), nullable=False),
        sa.Column("outcome_reference", sa.String(length=128), nullable=True),
        sa.Column("outcome_summary", sa.Text(), nullable=False),
        sa.Column("outcome_document", sa.JSON(), nullable=True),
        sa.Column("outcome_seen_at", medalliance.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("appointment_id", sa.String(length=32), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("deadline_at", medalliance.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "escalation_deadline_at", medalliance.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("requested_at", medalliance.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", medalliance.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", medalliance.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("direction IN ('up', 'down')", name=op.f("ck_referral_direction_valid")),
        sa.CheckConstraint(
            "status IN ('draft', 'requested', 'received', 'accepted', 'rejected', 'scheduled', 'in-progress', 'completed', 'cancelled', 'failed')",
            name=op.f("ck_referral_status_valid"),
        ),
        sa.CheckConstraint(
            "urgency IN ('routine', 'urgent', 'emergency')", name=op.f("ck_referral_urgency_valid")
        ),
        sa.ForeignKeyConstraint(
            ["from_department_id"],
            ["department.id"],
            name=op.f("fk_referral_from_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["from_institution_id"],
            ["institution.id"],
            name=op.f("fk_referral_from_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["from_practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_referral_from_practitioner_id_practitioner"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["person.id"], name=op.f("fk_referral_patient_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["previous_referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_previous_referral_id_referral"),
        ),
        sa.ForeignKeyConstraint(
            ["to_department_id"],
            ["department.id"],
            name=op.f("fk_referral_to_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["to_institution_id"],
            ["institution.id"],
            name=op.f("fk_referral_to_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["to_practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_referral_to_practitioner_id_practitioner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_episode_id"), ["episode_id"], unique=False)
        batch_op.create_index(
            "ix_referral_from_status_updated",
            ["from_institution_id", "status", "updated_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_referral_from_updated", ["from_institution_id", "updated_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_referral_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_referral_requester_user_id"), ["requester_user_id"], unique=False
        )
        batch_op.create_index(
            "ix_referral_status_deadline", ["status", "deadline_at"], unique=False
        )
        batch_op.create_index(
            "ix_referral_to_status_deadline",
            ["to_institution_id", "status", "deadline_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_referral_to_updated", ["to_institution_id", "updated_at"], unique=False
        )
        batch_op.create_index("ix_referral_updated", ["updated_at"], unique=False)

    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("start_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expert", sa.Boolean(), nullable=False),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("consortium_open_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("public_open_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('free', 'busy', 'busy-unavailable')", name=op.f("ck_slot_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_slot_department_id_department")
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institution.id"], name=op.f("fk_slot_institution_id_institution")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_slot_practitioner_id_practitioner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot")),
    )
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_slot_department_start", ["department_id", "start_at"], unique=False
        )
        batch_op.create_index(
            "ix_slot_institution_start", ["institution_id", "start_at"], unique=False
        )

    op.create_table(
        "appointment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("active_slot_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("referrer_institution_id", sa.String(length=64), nullable=True),
        sa.Column("referral_id", sa.String(length=32), nullable=True),
        sa.Column("start_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("booked_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('booked', 'arrived', 'fulfilled', 'cancelled', 'noshow')",
            name=op.f("ck_appointment_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_appointment_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_appointment_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["person.id"], name=op.f("fk_appointment_patient_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_institution_id"],
            ["institution.id"],
            name=op.f("fk_appointment_referrer_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name=op.f("fk_appointment_slot_id_slot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment")),
        sa.UniqueConstraint("active_slot_id", name=op.f("uq_appointment_active_slot_id")),
    )
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_appointment_institution_start", ["institution_id", "start_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointment_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_appointment_referral_id"), ["referral_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointment_slot_id"), ["slot_id"], unique=False)

    op.create_table(
        "referral_escalation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_referral_escalation_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_escalation_referral_id_referral"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_escalation")),
        sa.UniqueConstraint(
            "referral_id", "level", name=op.f("uq_referral_escalation_referral_id_level")
        ),
    )
    op.create_table(
        "referral_follow_up",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("assignee_practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("assignee_user_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'done')", name=op.f("ck_referral_follow_up_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_referral_follow_up_assignee_practitioner_id_practitioner"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_referral_follow_up_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["person.id"], name=op.f("fk_referral_follow_up_patient_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_follow_up_referral_id_referral"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_follow_up")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_referral_follow_up_referral_id")),
    )
    with op.batch_alter_table("referral_follow_up", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_follow_up_institution_due",
            ["institution_id", "status", "due_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_referral_follow_up_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "referral_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('submit', 'receive', 'accept', 'auto_accept', 'reject', 'schedule', 'arrive', 'complete', 'cancel', 'fail')",
            name=op.f("ck_referral_history_event_valid"),
        ),
        sa.CheckConstraint(
            "side IN ('sender', 'receiver', 'system')", name=op.f("ck_referral_history_side_valid")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_referral_history_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_history")),
    )
    with op.batch_alter_table("referral_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_history_referral_id"), ["referral_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("referral_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_history_referral_id"))

    op.drop_table("referral_history")
    with op.batch_alter_table("referral_follow_up", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_follow_up_patient_id"))
        batch_op.drop_index("ix_referral_follow_up_institution_due")

    op.drop_table("referral_follow_up")
    op.drop_table("referral_escalation")
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_slot_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_referral_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_patient_id"))
        batch_op.drop_index("ix_appointment_institution_start")

    op.drop_table("appointment")
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_index("ix_slot_institution_start")
        batch_op.drop_index("ix_slot_department_start")

    op.drop_table("slot")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_updated")
        batch_op.drop_index("ix_referral_to_updated")
        batch_op.drop_index("ix_referral_to_status_deadline")
        batch_op.drop_index("ix_referral_status_deadline")
        batch_op.drop_index(batch_op.f("ix_referral_requester_user_id"))
        batch_op.drop_index(batch_op.f("ix_referral_patient_id"))
        batch_op.drop_index("ix_referral_from_updated")
        batch_op.drop_index("ix_referral_from_status_updated")
        batch_op.drop_index(batch_op.f("ix_referral_episode_id"))

    op.drop_table("referral")
    op.drop_table("care_level_catalogue")
