"""The workspace menu of each role. Labels are msgids translated in the templates."""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.auth.enums import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


HOME = NavItem("Home", "/")
REGISTRY = NavItem("Registry", "/registry")
PATIENTS = NavItem("Patients", "/patients")
REVIEWS = NavItem("Review queue", "/patients/reviews")
_BY_ROLE: dict[Role, tuple[NavItem, ...]] = {
    Role.ADMIN: (HOME, PATIENTS, REVIEWS, REGISTRY, NavItem("Audit log", "/audit")),
    Role.COORDINATOR: (HOME, PATIENTS, REVIEWS, REGISTRY),
    Role.DOCTOR: (HOME, PATIENTS, REGISTRY),
    Role.SPECIALIST: (HOME, PATIENTS, REGISTRY),
    Role.READER: (HOME, PATIENTS),
    Role.FAMILY_DOCTOR: (HOME, PATIENTS),
    Role.RESIDENT: (HOME,),
    Role.COMMISSION: (HOME, REGISTRY),
    Role.SYSTEM: (),
}


def nav_for(role: Role) -> tuple[NavItem, ...]:
    return _BY_ROLE.get(role, (HOME,))
