"""The referral workflow as data: which event moves which state, done by which side, and
the guards. ``apply`` is the only place a referral's status changes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Final

from medalliance.auth.principal import Actor
from medalliance.errors import InvalidTransition, ValidationFailed
from medalliance.kit.workflow import Transition, mermaid, next_state
from medalliance.referrals.enums import Direction, ReferralEvent, ReferralStatus, Side
from medalliance.referrals.models import Referral, ReferralHistory

S = ReferralStatus
E = ReferralEvent
SENDER: Final = frozenset({Side.SENDER})
RECEIVER: Final = frozenset({Side.RECEIVER})

TRANSITIONS: Final[dict[ReferralEvent, Transition[ReferralStatus, Side]]] = {
    E.SUBMIT: Transition(frozenset({S.DRAFT}), S.REQUESTED, SENDER),
    E.RECEIVE: Transition(frozenset({S.REQUESTED}), S.RECEIVED, RECEIVER),
    E.ACCEPT: Transition(frozenset({S.REQUESTED, S.RECEIVED}), S.ACCEPTED, RECEIVER),
    E.AUTO_ACCEPT: Transition(frozenset({S.REQUESTED}), S.ACCEPTED, frozenset({Side.SYSTEM})),
    # From ACCEPTED only on the green channel (accepted by default, rejected with a reason).
    E.REJECT: Transition(frozenset({S.REQUESTED, S.RECEIVED, S.ACCEPTED}), S.REJECTED, RECEIVER),
    E.SCHEDULE: Transition(frozenset({S.ACCEPTED}), S.SCHEDULED, RECEIVER),
    E.ARRIVE: Transition(frozenset({S.ACCEPTED, S.SCHEDULED}), S.IN_PROGRESS, RECEIVER),
    E.COMPLETE: Transition(frozenset({S.IN_PROGRESS}), S.COMPLETED, RECEIVER),
    # The sender may withdraw until the patient has arrived.
    E.CANCEL: Transition(
        frozenset({S.DRAFT, S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.SCHEDULED}), S.CANCELLED, SENDER
    ),
    E.FAIL: Transition(frozenset({S.ACCEPTED, S.SCHEDULED}), S.FAILED, RECEIVER),
}
REASON_REQUIRED: Final = frozenset({E.REJECT, E.CANCEL})
MIN_REASON = 2


def choose_side(event: ReferralEvent, sides: Collection[Side]) -> Side:
    """The actor's side for this event; a self-addressed referral puts the institution on
    both sides, and the event decides which one acts."""
    transition = TRANSITIONS.get(event)
    for side in sorted(sides):
        if transition is not None and side in transition.by:
            return side
    return sorted(sides)[0]


def check(
    referral: Referral,
    event: ReferralEvent,
    side: Side,
    *,
    reason: str = "",
    has_outcome: bool = False,
) -> ReferralStatus:
    """The next status, or 409 (state) / 403 (side) / 422 (a guard names the field)."""
    target = next_state(TRANSITIONS, ReferralStatus(referral.status), event, side)
    if event == E.REJECT and referral.status == S.ACCEPTED and not referral.green_channel:
        raise InvalidTransition("an accepted referral can no longer be rejected")
    if event in REASON_REQUIRED and len(reason.strip()) < MIN_REASON:
        raise ValidationFailed(f"a reason is required to {event.value}", field="reason")
    if event == E.COMPLETE and referral.direction == Direction.UP and not has_outcome:
        raise ValidationFailed(
            "completing an up referral needs the consult note or discharge summary",
            field="outcome",
        )
    return target


def apply(
    referral: Referral,
    event: ReferralEvent,
    side: Side,
    actor: Actor | None,
    now: datetime,
    *,
    reason: str = "",
    has_outcome: bool = False,
) -> ReferralHistory:
    """Check, move the referral and return its history row (the caller adds it)."""
    before = referral.status
    target = check(referral, event, side, reason=reason, has_outcome=has_outcome)
    referral.status = target.value
    referral.updated_at = now
    if event in REASON_REQUIRED:
        referral.status_reason = reason.strip()
    return ReferralHistory(
        referral_id=referral.id,
        event=event.value,
        from_status=before,
        to_status=target.value,
        side=side.value,
        user_id=actor.user_id if actor else None,
        username=actor.username if actor else "system",
        institution_id=actor.institution_id if actor else None,
        reason=reason.strip(),
        at=now,
    )


def diagram() -> str:
    return mermaid(TRANSITIONS)
