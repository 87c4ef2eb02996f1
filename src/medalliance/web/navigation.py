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


# Master patient index (patients/): search for identifying staff, review queue for stewards.
_PATIENT_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.READER)
for _role in (*_PATIENT_ROLES, Role.FAMILY_DOCTOR):
    _BY_ROLE[_role] = (*_BY_ROLE[_role], NavItem("Patients", "/patients"))
for _role in (Role.ADMIN, Role.COORDINATOR):
    _BY_ROLE[_role] = (*_BY_ROLE[_role], NavItem("Review queue", "/patients/reviews"))

# Consortium registry (registry/): admins edit; other staff and the commission read.
for _role in (Role.ADMIN, Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.COMMISSION):
    _BY_ROLE[_role] = (*_BY_ROLE[_role], NavItem("Registry", "/registry"))

# Two-way referral (referrals/, scheduling/, care_levels/).
_BY_ROLE[Role.COORDINATOR] = (
    *_BY_ROLE[Role.COORDINATOR],
    NavItem("Referral queue", "/referrals"),
    NavItem("Reserved slots", "/scheduling"),
)
for _role in (Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR):
    _BY_ROLE[_role] = (*_BY_ROLE[_role], NavItem("My referrals", "/referrals/mine"))
_BY_ROLE[Role.ADMIN] = (*_BY_ROLE[Role.ADMIN], NavItem("Care-level catalogue", "/care-levels"))

# Indicators (indicators/): the commission and admins watch the dashboard; admins also
# edit definitions and import the insurance settlement file.
for _role in (Role.COMMISSION, Role.ADMIN):
    _BY_ROLE[_role] = (*_BY_ROLE[_role], NavItem("Dashboard", "/indicators"))
_BY_ROLE[Role.ADMIN] = (
    *_BY_ROLE[Role.ADMIN],
    NavItem("Indicator definitions", "/indicators/definitions"),
)


def nav_for(role: Role) -> tuple[NavItem, ...]:
    return _BY_ROLE.get(role, (HOME,))
