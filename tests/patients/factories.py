"""Local-record payloads for MPI tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from medalliance.patients.identity import make_resident_id

BORN = date(1971, 5, 9)
NEW_ID = make_resident_id("130123", BORN, 457)  # odd sequence: male


def record(mrn: str = "MRN-T-0001", **changes: Any) -> dict[str, Any]:
    """A person the demo does not know: 覃梓睿, male, born 1971-05-09."""
    payload: dict[str, Any] = {
        "mrn": mrn,
        "name": "覃梓睿",
        "sex": "male",
        "birth_date": BORN.isoformat(),
        "id_number": NEW_ID,
        "phone": "13700001234",
        "address": "清河县测试镇测试村3组12号",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def one_digit_off(born: date) -> date:
    """``born`` with one digit of the day mistyped (still a valid date): a near miss."""
    day = born.day
    if day % 10 == 0:
        day = 20 if day == 30 else day + 1
    else:
        day -= 1
    return born.replace(day=day)
