"""The referral change feed for derived data (indicators): referrals changed since a
watermark, with their history and booking; aggregates only, audited once per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.errors import DomainError
from medalliance.kit.clock import utcnow
from medalliance.referrals import repository
from medalliance.referrals.models import Referral, ReferralHistory
from medalliance.scheduling import service as scheduling

# Rows committed late may carry an earlier updated_at than rows already read: reading only
# rows older than this lag lets such transactions land before the watermark passes them.
FEED_LAG = timedelta(seconds=5)


@dataclass(frozen=True)
class ReferralChange:
    referral: Referral
    history: list[ReferralHistory]
    appointment_start: datetime | None
    reserved_slot: bool
    follow_up_done_at: datetime | None
    position: str


def changed_since(
    db: Session, after: str | None, limit: int, *, now: datetime | None = None
) -> list[ReferralChange]:
    """Referrals changed after the opaque position ``after`` ("<updated_at iso>|<id>"),
    oldest first, with their history and booking: aggregates only, audited once per call."""
    until = (now or utcnow()) - FEED_LAG
    rows = repository.changed_since(db, _feed_position(after), until, limit)
    by_referral: dict[str, list[ReferralHistory]] = {}
    for entry in repository.histories(db, [r.id for r in rows]):
        by_referral.setdefault(entry.referral_id, []).append(entry)
    if rows:
        audit.record(
            db,
            None,
            "referrals.feed",
            username="system:indicators",
            resource_type="ServiceRequest",
            detail={"rows": len(rows), "after": after},
        )
    return [_change(db, r, by_referral.get(r.id, [])) for r in rows]


def _change(db: Session, referral: Referral, history: list[ReferralHistory]) -> ReferralChange:
    appointment = (
        scheduling.get_appointment(db, referral.appointment_id) if referral.appointment_id else None
    )
    slot = scheduling.get_slot(db, appointment.slot_id) if appointment else None
    follow_up = repository.follow_up(db, referral.id)
    return ReferralChange(
        referral=referral,
        history=history,
        appointment_start=appointment.start_at if appointment else None,
        reserved_slot=bool(slot and slot.reserved),
        follow_up_done_at=follow_up.done_at if follow_up else None,
        position=f"{referral.updated_at.isoformat()}|{referral.id}",
    )


def _feed_position(after: str | None) -> tuple[datetime, str] | None:
    if not after:
        return None
    stamp, _, referral_id = after.rpartition("|")
    try:
        return datetime.fromisoformat(stamp), referral_id
    except ValueError as exc:
        raise DomainError(f"feed position {after!r} is not '<iso time>|<id>'") from exc
