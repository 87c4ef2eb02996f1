"""The referral workflow over every (state, event, side): allowed moves land in the right
state with a history row; the others answer 409 (wrong state) or 403 (wrong side), and a
receiver never sees a draft (404)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from medalliance.errors import DomainError, Forbidden, InvalidTransition, NotFound
from medalliance.kit.clock import utcnow
from medalliance.referrals import repository, service, workflow
from medalliance.referrals.enums import ReferralEvent, ReferralStatus, Side
from medalliance.referrals.schemas import Outcome, TransitionRequest
from referrals.factories import actor, open_slots, referral

S, E = ReferralStatus, ReferralEvent
# Written out by hand from the issue, independently of workflow.TRANSITIONS.
ALLOWED: dict[tuple[S, E, Side], S] = {
    (S.DRAFT, E.SUBMIT, Side.SENDER): S.REQUESTED,
    (S.DRAFT, E.CANCEL, Side.SENDER): S.CANCELLED,
    (S.REQUESTED, E.RECEIVE, Side.RECEIVER): S.RECEIVED,
    (S.REQUESTED, E.ACCEPT, Side.RECEIVER): S.ACCEPTED,
    (S.REQUESTED, E.REJECT, Side.RECEIVER): S.REJECTED,
    (S.REQUESTED, E.CANCEL, Side.SENDER): S.CANCELLED,
    (S.RECEIVED, E.ACCEPT, Side.RECEIVER): S.ACCEPTED,
    (S.RECEIVED, E.REJECT, Side.RECEIVER): S.REJECTED,
    (S.RECEIVED, E.CANCEL, Side.SENDER): S.CANCELLED,
    (S.ACCEPTED, E.SCHEDULE, Side.RECEIVER): S.SCHEDULED,
    (S.ACCEPTED, E.ARRIVE, Side.RECEIVER): S.IN_PROGRESS,
    (S.ACCEPTED, E.FAIL, Side.RECEIVER): S.FAILED,
    (S.ACCEPTED, E.CANCEL, Side.SENDER): S.CANCELLED,
    (S.SCHEDULED, E.ARRIVE, Side.RECEIVER): S.IN_PROGRESS,
    (S.SCHEDULED, E.FAIL, Side.RECEIVER): S.FAILED,
    (S.SCHEDULED, E.CANCEL, Side.SENDER): S.CANCELLED,
    (S.IN_PROGRESS, E.COMPLETE, Side.RECEIVER): S.COMPLETED,
}
# The other side of a move that exists in this state is refused for the side (403);
# an accepted (non-green) referral can no longer be rejected (409 for the receiver).
POSSIBLE = {(s, e) for s, e, _ in ALLOWED} | {(S.ACCEPTED, E.REJECT)}
EVENTS = [e for e in E if e != E.AUTO_ACCEPT]
CASES = list(itertools.product(list(S), EVENTS, [Side.SENDER, Side.RECEIVER]))


def _body(db: Session, event: E) -> TransitionRequest:
    return TransitionRequest(
        reason="a reason given" if event in (E.REJECT, E.CANCEL) else "",
        slot_id=open_slots(db)[0].id if event in (E.SCHEDULE,) else None,
        outcome=Outcome(text="consult note: stable") if event == E.COMPLETE else None,
    )


@pytest.mark.parametrize(("state", "event", "side"), CASES, ids=lambda v: str(v.value))
def test_every_state_event_and_side(db: Session, state: S, event: E, side: Side) -> None:
    r = referral(db, status=state)
    who = actor(db, "doctor") if side == Side.SENDER else actor(db, "coordinator")
    expected = ALLOWED.get((state, event, side))
    body = _body(db, event)
    if expected is not None:
        service.transition(db, who, r.id, event, body, now=utcnow())
        assert r.status == expected
        last = repository.history(db, r.id)[-1]
        assert (last.event, last.to_status, last.side) == (event.value, expected.value, side.value)
        return
    if state == S.DRAFT and side == Side.RECEIVER:
        error: type[DomainError] = NotFound
    elif (state, event) in POSSIBLE and not (
        state == S.ACCEPTED and event == E.REJECT and side == Side.RECEIVER
    ):
        error = Forbidden
    else:
        error = InvalidTransition
    with pytest.raises(error):
        service.transition(db, who, r.id, event, body, now=utcnow())
    assert r.status == state


def test_the_table_is_exactly_the_issue_table() -> None:
    derived = {
        (frm, event, side): t.to
        for event, t in workflow.TRANSITIONS.items()
        for frm in t.frm
        for side in t.by
        if side != Side.SYSTEM
    }
    derived.pop((S.ACCEPTED, E.REJECT, Side.RECEIVER))  # green channel only, tested below
    assert derived == ALLOWED


def test_table_prints_as_a_mermaid_diagram() -> None:
    assert "requested --> accepted: accept" in workflow.diagram()
