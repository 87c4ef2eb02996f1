"""A year of demo referral history, consistent with the demo consortium and deterministic
by seed: townships refer up to the county (some on to the city), the county refers
recovering patients back down (continuing the same care episode), some referrals are
rejected, cancelled or missed, and a few recent ones are overdue and already escalated.

Rows are bulk-inserted (like the rest of the demo) so that a county-scale demo stays fast;
the workflow rules are still respected: every status has its history path.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from medalliance.access.enums import RelationshipKind
from medalliance.access.models import CareRelationship
from medalliance.care_levels.service import shipped_catalogue
from medalliance.patients.models import Person
from medalliance.referrals.enums import ReferralEvent, ReferralStatus
from medalliance.referrals.models import Referral, ReferralEscalation, ReferralHistory

S, E = ReferralStatus, ReferralEvent
TOWNSHIPS = [f"township-{n:02d}" for n in range(1, 11)]
# Final outcomes of referrals older than a week, with their weights.
FINAL = [(S.COMPLETED, 78), (S.REJECTED, 9), (S.CANCELLED, 7), (S.FAILED, 6)]
RECENT = [(S.REQUESTED, 3), (S.RECEIVED, 2), (S.ACCEPTED, 2), (S.SCHEDULED, 2), (S.IN_PROGRESS, 1)]
PATHS: dict[ReferralStatus, list[ReferralEvent]] = {
    S.REQUESTED: [],
    S.RECEIVED: [E.RECEIVE],
    S.ACCEPTED: [E.RECEIVE, E.ACCEPT],
    S.SCHEDULED: [E.RECEIVE, E.ACCEPT, E.SCHEDULE],
    S.IN_PROGRESS: [E.ACCEPT, E.SCHEDULE, E.ARRIVE],
    S.COMPLETED: [E.RECEIVE, E.ACCEPT, E.SCHEDULE, E.ARRIVE, E.COMPLETE],
    S.REJECTED: [E.RECEIVE, E.REJECT],
    S.CANCELLED: [E.CANCEL],
    S.FAILED: [E.ACCEPT, E.SCHEDULE, E.FAIL],
}
AFTER = {
    E.RECEIVE: S.RECEIVED,
    E.ACCEPT: S.ACCEPTED,
    E.SCHEDULE: S.SCHEDULED,
    E.ARRIVE: S.IN_PROGRESS,
    E.COMPLETE: S.COMPLETED,
    E.REJECT: S.REJECTED,
    E.CANCEL: S.CANCELLED,
    E.FAIL: S.FAILED,
}
DEADLINE = {"routine": timedelta(hours=24), "urgent": timedelta(hours=2)}


def load(db: Session, *, residents: int, seed: int, today: date) -> int:
    """Insert the referral history; returns how many referrals were created."""
    rng = random.Random(seed + 7)
    count = max(residents // 3, 300) if residents <= 10_000 else 20_000
    # Patients from the upper half of the register, so that the care relationships the
    # referrals create do not touch the low person ids other demos and tests rely on.
    first = residents // 2 + 1
    names = dict(
        db.execute(select(Person.id, Person.name).where(Person.id >= f"p{first:08d}")).all()
    )
    ids = sorted(names)
    end = datetime.combine(today, time(9, 0), tzinfo=UTC)
    referrals: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    escalations: list[dict[str, Any]] = []
    for row, steps, overdue in _generate(rng, ids, names, count, end):
        referrals.append(row)
        history.extend(steps)
        if overdue:
            escalations.extend(
                {
                    "referral_id": row["id"],
                    "level": level,
                    "institution_id": row["to_institution_id"],
                    "created_at": row["deadline_at"] + (level - 1) * DEADLINE[row["urgency"]],
                }
                for level in (1, 2)
            )
    for batch in _chunks(referrals):
        db.execute(insert(Referral), batch)
    for batch in _chunks(history):
        db.execute(insert(ReferralHistory), batch)
    if escalations:
        db.execute(insert(ReferralEscalation), escalations)
    relationships = [
        {
            "patient_id": r["patient_id"],
            "institution_id": r["to_institution_id"],
            "kind": RelationshipKind.REFERRAL.value,
            "source_type": "ServiceRequest",
            "source_id": r["id"],
            "created_at": r["requested_at"],
        }
        for r in referrals
        if r["status"] != S.DRAFT
    ]
    for batch in _chunks(relationships):
        db.execute(insert(CareRelationship), batch)
    db.flush()
    return len(referrals)


def _generate(
    rng: random.Random, ids: list[str], names: dict[str, str], count: int, end: datetime
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], bool]]:
    catalogue = shipped_catalogue()
    up_codes = [d for d in catalogue.diseases if d.level != "primary"]
    down_codes = [d for d in catalogue.diseases if d.level == "primary" or not d.must_refer]
    completed_up: list[dict[str, Any]] = []
    for n in range(count):
        at = end - timedelta(days=365) + timedelta(minutes=int(525_600 * n / count))
        age = end - at
        down = bool(completed_up) and rng.random() < 0.3
        previous = completed_up.pop(rng.randrange(len(completed_up))) if down else None
        row = _row(rng, ids, names, at, previous, up_codes, down_codes)
        recent = age < timedelta(days=7)
        status = _pick(rng, RECENT if recent else FINAL)
        # Demo dates are fixed, the clock is not: everything still awaiting a decision is
        # overdue by now, so it ships already escalated (the worker finds nothing to redo).
        overdue = status in (S.REQUESTED, S.RECEIVED)
        steps = _history(rng, row, status, at)
        if status == S.COMPLETED and row["direction"] == "up":
            row["outcome_reference"] = f"DocumentReference/{_id(rng)}"
            row["outcome_summary"] = "诊疗结束，病情稳定，建议回基层随访。"
            row["outcome_seen_at"] = row["completed_at"]
            completed_up.append(row)
        yield row, steps, overdue


def _row(
    rng: random.Random,
    ids: list[str],
    names: dict[str, str],
    at: datetime,
    previous: dict[str, Any] | None,
    up_codes: list[Any],
    down_codes: list[Any],
) -> dict[str, Any]:
    if previous is not None:
        patient = previous["patient_id"]
        frm, to = previous["to_institution_id"], previous["from_institution_id"]
        disease = rng.choice(down_codes)
        direction, reason = "down", rng.choice(["stable", "rehabilitation", "chronic_management"])
        to_dept, from_dept = previous["from_department_id"], previous["to_department_id"]
    else:
        patient = rng.choice(ids)
        disease = rng.choice(up_codes)
        city = disease.level == "tertiary" or rng.random() < 0.1
        frm = "county-hospital" if city else rng.choice(TOWNSHIPS)
        to = "city-hospital" if city else "county-hospital"
        direction = "up"
        reason = rng.choice(
            ["acute_critical", "needs_equipment", "diagnosis_unclear", "beyond_scope"]
        )
        to_dept = f"{to}:{_department_at(disease.departments, to)}"
        from_dept = f"{frm}:02" if frm.startswith("township") else f"{frm}:03.04"
    urgency = "urgent" if rng.random() < 0.15 else "routine"
    return {
        "id": _id(rng),
        "patient_id": patient,
        "patient_name": names[patient],
        "episode_id": previous["episode_id"] if previous else _id(rng),
        "previous_referral_id": previous["id"] if previous else None,
        "direction": direction,
        "urgency": urgency,
        "green_channel": False,
        "from_institution_id": frm,
        "from_department_id": from_dept,
        "to_institution_id": to,
        "to_department_id": to_dept,
        "requester_name": "demo",
        "reason_code": reason,
        "reason_text": "",
        "diagnoses": [{"code": disease.code, "display": disease.name_zh}],
        "history_summary": "",
        "current_treatment": "",
        "attachments": [],
        "rehab_plan": "康复训练" if direction == "down" else "",
        "medication_plan": "维持原方案" if direction == "down" else "",
        "follow_up_plan": "两周内随访" if direction == "down" else "",
        "recommendation": {"catalogue_version": 1, "level": disease.level.value},
        "outcome_reference": None,
        "outcome_summary": "",
        "outcome_seen_at": None,
        "decided_at": None,
        "status_reason": "",
        "requested_at": at,
        "deadline_at": at + DEADLINE[urgency],
        "escalation_deadline_at": at + 2 * DEADLINE[urgency],
        "created_at": at,
    }


_COUNTY = {"03.01", "03.03", "03.04", "03.07", "04.01", "04.03", "05", "07", "20", "30", "32"}


def _department_at(codes: list[str], institution: str) -> str:
    usable = [c for c in codes if institution == "city-hospital" or c in _COUNTY]
    return usable[0] if usable else "20"


def _history(
    rng: random.Random, row: dict[str, Any], status: ReferralStatus, at: datetime
) -> list[dict[str, Any]]:
    steps = [_step(row, E.SUBMIT, S.DRAFT, S.REQUESTED, "sender", at)]
    current, when = S.REQUESTED, at
    for event in PATHS[status]:
        when += timedelta(
            minutes=rng.randint(20, 600) if event != E.COMPLETE else rng.randint(1440, 10080)
        )
        nxt = AFTER[event]
        side = "sender" if event == E.CANCEL else "receiver"
        reason = {E.REJECT: "床位已满，建议转上级", E.CANCEL: "患者病情好转"}.get(event, "")
        steps.append(_step(row, event, current, nxt, side, when, reason))
        current = nxt
        if event in (E.ACCEPT, E.REJECT):
            row["decided_at"] = when
        if event in (E.REJECT, E.CANCEL):
            row["status_reason"] = reason
    row["status"] = status.value
    row["completed_at"] = when if status == S.COMPLETED else None
    row["updated_at"] = when
    row["version"] = len(steps) + 1
    return steps


def _step(
    row: dict[str, Any],
    event: ReferralEvent,
    frm: ReferralStatus,
    to: ReferralStatus,
    side: str,
    at: datetime,
    reason: str = "",
) -> dict[str, Any]:
    institution = row["from_institution_id"] if side == "sender" else row["to_institution_id"]
    return {
        "referral_id": row["id"],
        "event": event.value,
        "from_status": frm.value,
        "to_status": to.value,
        "side": side,
        "user_id": None,
        "username": "demo",
        "institution_id": institution,
        "reason": reason,
        "at": at,
    }


def _id(rng: random.Random) -> str:
    """Deterministic by seed (the platform's own ids are random)."""
    return f"demo{rng.getrandbits(64):016x}"


def _pick(rng: random.Random, weighted: list[tuple[ReferralStatus, int]]) -> ReferralStatus:
    return rng.choices([s for s, _ in weighted], weights=[w for _, w in weighted])[0]


def _chunks(rows: list[dict[str, Any]], size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
