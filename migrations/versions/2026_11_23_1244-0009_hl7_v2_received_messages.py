"""records/hl7: received HL7 v2 messages (idempotency by sending facility + control ID)

Revision ID: 0009
Revises: 0003
Create Date: 2026-11-23 12:44:07.450338
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medalliance.db

revision: str = "0009"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hl7_received_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sending_facility", sa.String(length=180), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("sending_application", sa.String(length=180), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("received_at", medalliance.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("ack", sa.Text(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "ack_code IN ('AA', 'AE', 'AR')", name=op.f("ck_hl7_received_message_ack_code_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_received_message")),
        sa.UniqueConstraint(
            "sending_facility",
            "control_id",
            name=op.f("uq_hl7_received_message_sending_facility_control_id"),
        ),
    )
    with op.batch_alter_table("hl7_received_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hl7_received_message_institution_id"), ["institution_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hl7_received_message_patient_id"), ["patient_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("hl7_received_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hl7_received_message_patient_id"))
        batch_op.drop_index(batch_op.f("ix_hl7_received_message_institution_id"))

    op.drop_table("hl7_received_message")
