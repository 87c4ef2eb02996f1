"""Every query of the HL7 inbound tables."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.records.hl7.models import ReceivedMessage


def received(db: Session, sending_facility: str, control_id: str) -> ReceivedMessage | None:
    return db.scalars(
        select(ReceivedMessage).where(
            ReceivedMessage.sending_facility == sending_facility,
            ReceivedMessage.control_id == control_id,
        )
    ).first()
