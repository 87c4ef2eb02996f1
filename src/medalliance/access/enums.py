"""Access vocabularies."""

from __future__ import annotations

from enum import StrEnum


class RelationshipKind(StrEnum):
    ENCOUNTER = "encounter"  # a visit recorded at the institution by its own system
    REFERRAL = "referral"  # a referral addressed to the institution by another member
    CONTRACT = "contract"  # a family-doctor contract with the institution's team


class ConsentScope(StrEnum):
    CONSORTIUM = "consortium"  # every member of the consortium may read
    INSTITUTION = "institution"  # one named member may read


class ConsentStatus(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


class ConsentDefault(StrEnum):
    OPT_IN = "opt_in"  # nothing shared until the patient consents
    OPT_OUT = "opt_out"  # shared consortium-wide until the patient withdraws
