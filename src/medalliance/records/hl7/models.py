"""Received HL7 v2 messages: the idempotency key (sending facility + message control ID)
and the ACK that was sent, written in the same transaction as the resources."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.columns import check_in
from medalliance.records.hl7.enums import AckCode


class ReceivedMessage(Base):
    """One accepted message. Refused messages (AE/AR) leave no row: resent, they are
    processed again, since their sender may have fixed what was wrong."""

    __tablename__ = "hl7_received_message"
    __table_args__ = (
        UniqueConstraint("sending_facility", "control_id"),
        check_in("ack_code", AckCode),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sending_facility: Mapped[str] = mapped_column(String(180))
    control_id: Mapped[str] = mapped_column(String(199))
    sending_application: Mapped[str] = mapped_column(String(180), default="")
    message_type: Mapped[str] = mapped_column(String(16))
    institution_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # SHA-256 of the message without MSH-7, to tell a resend from a reused control ID.
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column()
    ack_code: Mapped[str] = mapped_column(String(2))
    ack: Mapped[str] = mapped_column(Text)
    resources: Mapped[list[str]] = mapped_column(JSON, default=list)
    raw: Mapped[str] = mapped_column(Text)
