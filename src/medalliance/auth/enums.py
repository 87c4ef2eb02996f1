"""Roles a user can hold at an institution."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    DOCTOR = "doctor"
    SPECIALIST = "specialist"
    READER = "reader"
    FAMILY_DOCTOR = "family_doctor"
    RESIDENT = "resident"
    COMMISSION = "commission"
    SYSTEM = "system"  # a member institution's HIS/LIS/PACS (client credentials)


STAFF_ROLES = frozenset(Role) - {Role.RESIDENT, Role.SYSTEM}
# People (not member systems): the ones who use pages.
HUMAN_ROLES = tuple(r for r in Role if r != Role.SYSTEM)
