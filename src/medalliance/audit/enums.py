"""Audit outcomes and the basis on which patient data was read."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


class AccessBasis(StrEnum):
    CARE_RELATIONSHIP = "care_relationship"
    CONSENT = "consent"
    BREAK_THE_GLASS = "break_the_glass"
    OWN_RECORD = "own_record"
    ADMINISTRATION = "administration"
