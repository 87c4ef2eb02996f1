"""The workspace menu of each role. Labels are msgids translated in the templates."""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.auth.enums import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str


HOME = NavItem("Home", "/")
PATIENTS = NavItem("Patients", "/patients")
REVIEWS = NavItem("Review queue", "/patients/reviews")
REGISTRY = NavItem("Registry", "/registry")
REFERRAL_QUEUE = NavItem("Referral queue", "/referrals")
MY_REFERRALS = NavItem("My referrals", "/referrals/mine")
RESERVED_SLOTS = NavItem("Reserved slots", "/scheduling")
DASHBOARD = NavItem("Dashboard", "/indicators")

_BY_ROLE: dict[Role, tuple[NavItem, ...]] = {
    Role.ADMIN: (
        HOME,
        PATIENTS,
        REVIEWS,
        REGISTRY,
        NavItem("Care-level catalogue", "/care-levels"),
        DASHBOARD,
        NavItem("Indicator definitions", "/indicators/definitions"),
        NavItem("Audit log", "/audit"),
    ),
    Role.COORDINATOR: (HOME, REFERRAL_QUEUE, RESERVED_SLOTS, PATIENTS, REVIEWS, REGISTRY),
    Role.DOCTOR: (HOME, PATIENTS, MY_REFERRALS, REGISTRY),
    Role.SPECIALIST: (HOME, PATIENTS, MY_REFERRALS, REGISTRY),
    Role.READER: (HOME, PATIENTS),
    Role.FAMILY_DOCTOR: (HOME, PATIENTS, MY_REFERRALS),
    Role.RESIDENT: (HOME, NavItem("Consent and access log", "/me/consent")),
    Role.COMMISSION: (HOME, DASHBOARD, REGISTRY),
    Role.SYSTEM: (),
}


def nav_for(role: Role) -> tuple[NavItem, ...]:
    return _BY_ROLE.get(role, (HOME,))
