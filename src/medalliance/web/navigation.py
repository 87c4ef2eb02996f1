"""The workspace menu of each role. Labels are msgids translated in the templates."""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.auth.enums import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


HOME = NavItem("Home", "/")
_BY_ROLE: dict[Role, tuple[NavItem, ...]] = {
    Role.ADMIN: (HOME, NavItem("Audit log", "/audit")),
    Role.COORDINATOR: (HOME,),
    Role.DOCTOR: (HOME,),
    Role.SPECIALIST: (HOME,),
    Role.READER: (HOME,),
    Role.FAMILY_DOCTOR: (HOME,),
    Role.RESIDENT: (HOME,),
    Role.COMMISSION: (HOME,),
    Role.SYSTEM: (),
}


def nav_for(role: Role) -> tuple[NavItem, ...]:
    return _BY_ROLE.get(role, (HOME,))
