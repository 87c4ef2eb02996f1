"""What each role sees first: its workspaces and the facts it needs at a glance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from medalliance.auth import service as auth_service
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.registry import service as registry


@dataclass(frozen=True)
class Workspace:
    title: str  # msgid
    description: str  # msgid
    href: str | None = None  # None: the module is not built yet


WORKSPACES: dict[Role, tuple[Workspace, ...]] = {
    Role.ADMIN: (
        Workspace(
            "Consortium registry", "Members, departments, practitioners and centres.", "/registry"
        ),
        Workspace("Audit log", "Every login, write and clinical read, hash-chained.", "/audit"),
    ),
    Role.COORDINATOR: (
        Workspace(
            "Referral queue", "Incoming and outgoing referrals with their deadlines.", "/referrals"
        ),
        Workspace(
            "Reserved slots", "Appointment slots reserved for consortium referrals.", "/scheduling"
        ),
    ),
    Role.DOCTOR: (
        Workspace("Patient search", "Find a resident and open the shared record.", "/patients"),
        Workspace(
            "My referrals",
            "Referrals you sent up and patients sent back to you.",
            "/referrals/mine",
        ),
    ),
    Role.SPECIALIST: (
        Workspace("Incoming referrals", "Patients referred to your department.", "/referrals/mine"),
        Workspace("Teleconsultations", "Questions and consultations from grassroots doctors."),
    ),
    Role.READER: (
        Workspace("Reading worklist", "Studies waiting for your report, by turnaround target."),
    ),
    Role.FAMILY_DOCTOR: (
        Workspace("Contracted residents", "Your team's contracts and renewals."),
        Workspace("Chronic disease follow-ups", "Hypertension and diabetes visits due or overdue."),
    ),
    Role.RESIDENT: (
        Workspace(
            "My health record",
            "Your visits, results and medicines across the consortium.",
            "/me/record",
        ),
        Workspace("Consent and access log", "Who may see your record, and who did.", "/me/consent"),
    ),
    Role.COMMISSION: (
        Workspace(
            "Indicator dashboard",
            "Appraisal indicators of the consortium over time.",
            "/indicators",
        ),
    ),
}


@dataclass
class HomeContext:
    workspaces: tuple[Workspace, ...]
    institution: Any
    memberships: list[dict[str, Any]] = field(default_factory=list)
    members_by_level: dict[str, int] = field(default_factory=dict)


def home_context(db: Session, actor: Actor) -> HomeContext:
    memberships = auth_service.memberships_of(db, actor)
    institutions = registry.institutions_by_ids(db, [m.institution_id for m in memberships])
    return HomeContext(
        workspaces=WORKSPACES.get(actor.role, ()),
        institution=institutions.get(actor.institution_id or ""),
        memberships=[
            {
                "id": m.id,
                "role": m.role,
                "institution": institutions[m.institution_id].name,
                "current": m.role == actor.role and m.institution_id == actor.institution_id,
            }
            for m in memberships
        ],
        members_by_level={k.value: v for k, v in registry.members_by_level(db).items()},
    )
