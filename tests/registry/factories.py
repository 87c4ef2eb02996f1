"""Registry test helpers: actors at demo institutions, valid payloads, bearer tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.auth.tokens import issue_token
from medalliance.kit.clock import utcnow

# The demo admin sits at county-hospital, the lead of the county medical community.
CONSORTIUM_ADMIN = Actor(
    user_id="u-admin", username="admin", role=Role.ADMIN, institution_id="county-hospital"
)
TOWNSHIP_ADMIN = Actor(
    user_id="u-t1", username="t1-admin", role=Role.ADMIN, institution_id="township-01"
)
CITY_ADMIN = Actor(
    user_id="u-city", username="city-admin", role=Role.ADMIN, institution_id="city-hospital"
)
DOCTOR = Actor(user_id="u-doc", username="doc", role=Role.DOCTOR, institution_id="township-01")


def token_for(actor: Actor) -> dict[str, str]:
    token, _ = issue_token(actor, utcnow())
    return {"Authorization": f"Bearer {token}"}


def institution_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": "MA9001",
        "name": "安平县新场镇卫生院",
        "name_en": "Xinchang Township Health Centre",
        "level": "primary",
        "kind": "general",
        "consortium_id": "county",
        "parent_id": "county-hospital",
        "division_code": "510799111000",
        "address": "新场镇正街 1 号",
        "latitude": 31.1,
        "longitude": 104.7,
        "beds": 40,
    }
    return {**payload, **overrides}


def practitioner_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "黄志强",
        "sex": "male",
        "title": "attending",
        "licence_number": "110500000099999",
        "specialties": ["02"],
        "institution_id": "township-01",
        "department_id": "township-01:02",
    }
    return {**payload, **overrides}


def audit_rows(db: Session, action: str, resource_id: str) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.resource_id == resource_id)
        .order_by(AuditEvent.id)
    )
    return list(db.scalars(stmt).all())
