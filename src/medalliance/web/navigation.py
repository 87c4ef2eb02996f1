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
_BY_ROLE: dict[Role, tuple[NavItem, ...]] = {
    Role.ADMIN: (HOME, REGISTRY, NavItem("Audit log", "/audit")),
    Role.COORDINATOR: (HOME, REGISTRY),
    Role.DOCTOR: (HOME, REGISTRY),
    Role.SPECIALIST: (HOME, REGISTRY),
    Role.READER: (HOME,),
    Role.FAMILY_DOCTOR: (HOME,),
    Role.RESIDENT: (HOME,),
    Role.COMMISSION: (HOME, REGISTRY),
    Role.SYSTEM: (),
}


def nav_for(role: Role) -> tuple[NavItem, ...]:
    return _BY_ROLE.get(role, (HOME,))
