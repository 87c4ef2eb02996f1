"""The access matrix: for every route, what each kind of caller gets.

One row per route ("METHOD /path"); one column per caller. Reviewed like code: adding a
route means adding its row here, and a change of who may call it shows up in the diff.

Outcomes:
- ALLOW  the caller reaches the function (2xx/3xx, or a 4xx about the payload: 400/409/422)
- LOGIN  not authenticated: 401 (API) or a redirect to /login (pages)
- DENY   403
- HIDDEN 404: the row exists but is not visible to this caller
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Outcome = Literal["ALLOW", "LOGIN", "DENY", "HIDDEN"]
ALLOW: Final = "ALLOW"
LOGIN: Final = "LOGIN"
DENY: Final = "DENY"
HIDDEN: Final = "HIDDEN"

# Callers: anonymous, each demo role, a doctor of another township (no relationship with
# the scenario's patient), and a member institution's system (client credentials).
CALLERS: Final = (
    "anonymous",
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "resident",
    "commission",
    "other_doctor",
    "system",
)


@dataclass(frozen=True)
class Row:
    default: Outcome
    overrides: dict[str, Outcome] = field(default_factory=dict)

    def expected(self, caller: str) -> Outcome:
        return self.overrides.get(caller, self.default)


def public() -> Row:
    return Row(ALLOW)


def signed_in() -> Row:
    return Row(ALLOW, {"anonymous": LOGIN})


def people() -> Row:
    """Pages are for people; a member system's token gets 403."""
    return Row(ALLOW, {"anonymous": LOGIN, "system": DENY})


def only(*callers: str, otherwise: Outcome = DENY) -> Row:
    return Row(otherwise, {"anonymous": LOGIN, **dict.fromkeys(callers, ALLOW)})


STAFF: Final = (
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "commission",
    "other_doctor",
)

MATRIX: Final[dict[str, Row]] = {
    # Foundation
    "GET /health": public(),
    "GET /metrics": public(),
    "GET /login": public(),
    # Without the form's CSRF token nobody gets in, not even with the right password.
    "POST /login": Row(DENY),
    "GET /lang/{locale}": public(),
    "POST /api/auth/token": public(),
    "GET /api/auth/me": signed_in(),
    "GET /": people(),
    "POST /logout": people(),
    "POST /switch-role": people(),
    "GET /audit": only("admin"),
    "GET /api/audit/verify": only("admin"),
}
