"""Who may change which registry rows, and the audit trail of every change.

An institution admin edits only their own institution; an admin at the lead institution
of a consortium edits every member of it. Nobody else writes registry data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import Forbidden
from medalliance.registry import repository


def managed_institutions(db: Session, actor: Actor) -> set[str]:
    """Institutions the actor may edit: their own plus the members of consortia they lead."""
    if actor.role != Role.ADMIN or actor.institution_id is None:
        return set()
    led = repository.consortia_led_by(db, actor.institution_id)
    return {actor.institution_id} | repository.member_ids(db, led)


def leads(db: Session, actor: Actor, consortium_id: str) -> bool:
    """Is the actor an admin at the consortium's lead institution?"""
    if actor.role != Role.ADMIN or actor.institution_id is None:
        return False
    found = repository.consortium(db, consortium_id)
    return found is not None and found.lead_institution_id == actor.institution_id


def require_manages(db: Session, actor: Actor, institution_id: str) -> None:
    if institution_id not in managed_institutions(db, actor):
        raise Forbidden(
            "only the institution's own admin or an admin of the consortium's lead "
            f"institution may change institution {institution_id}"
        )


def require_leads(db: Session, actor: Actor, consortium_id: str) -> None:
    if not leads(db, actor, consortium_id):
        raise Forbidden(
            f"only an admin of the lead institution may change consortium {consortium_id}"
        )


def snapshot(row: Any, fields: list[str]) -> dict[str, Any]:
    """Column values as JSON-ready data (lists copied: JSON columns are mutated in place)."""
    return {name: _plain(getattr(row, name)) for name in fields}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def apply_changes(row: Any, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the fields that really change; returns their before and after values."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in changes.items():
        old = _plain(getattr(row, name))
        if old != value:
            before[name], after[name] = old, value
            setattr(row, name, list(value) if isinstance(value, list) else value)
    return before, after


def change(
    db: Session,
    actor: Actor,
    row: Any,
    changes: dict[str, Any],
    *,
    action: str,
    resource_type: str,
    **extra: Any,
) -> None:
    """Apply what really changes, flush (constraints speak now), audit it with before and
    after values; a change that changes nothing leaves no audit row."""
    before, after = apply_changes(row, changes)
    db.flush()
    if after:
        record(db, actor, action, resource_type, row.id, before=before, after=after, **extra)


def activation(entity: str, active: bool) -> str:
    return f"{entity}.{'activate' if active else 'deactivate'}"


def record(
    db: Session,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    """One audit row per change, with the before and after values of what changed."""
    detail: dict[str, Any] = {"before": before or {}, "after": after or {}, **extra}
    audit.record(
        db,
        actor,
        f"registry.{action}",
        resource_type=resource_type,
        resource_id=resource_id,
        detail=detail,
    )
