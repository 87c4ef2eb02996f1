"""MPI vocabularies: identifier kinds and systems, match grades, review and link states."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# The OID of the resident ID card number in the national shared-document standard (WS/T 500).
RESIDENT_ID_SYSTEM: Final = "urn:oid:2.16.156.10011.1.3"
# No national URI exists for a member's medical record number or the insurance card number;
# these are the platform's own, documented in docs/patients.md and the CapabilityStatement.
MRN_SYSTEM_PREFIX: Final = "https://medalliance.example/fhir/sid/mrn/"
INSURANCE_CARD_SYSTEM: Final = "https://medalliance.example/fhir/sid/insurance-card"
MATCH_GRADE_URL: Final = "http://hl7.org/fhir/StructureDefinition/match-grade"


def mrn_system(institution_id: str) -> str:
    return f"{MRN_SYSTEM_PREFIX}{institution_id}"


class MatchGrade(StrEnum):
    """FHIR match-grade codes for a candidate of $match."""

    CERTAIN = "certain"
    PROBABLE = "probable"
    POSSIBLE = "possible"
    CERTAINLY_NOT = "certainly-not"


class AdministrativeSex(StrEnum):
    """A person's sex as FHIR's administrative-gender: not known yet (an unconscious
    patient) and other (ambiguous, HL7 A/O) are recorded as such, not guessed."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


KNOWN_SEXES: Final = frozenset({AdministrativeSex.MALE, AdministrativeSex.FEMALE})


class LinkOutcome(StrEnum):
    """What registration did with a local record."""

    EXACT_ID = "exact_id"  # the resident ID number named a known person
    KNOWN_RECORD = "known_record"  # the same member re-sent a record it already had
    AUTO_LINKED = "auto_linked"  # score above the upper threshold
    REVIEW = "review"  # between thresholds: new person + a review task
    NEW_PERSON = "new_person"  # below the lower threshold


class ReviewStatus(StrEnum):
    OPEN = "open"
    LINKED = "linked"
    SEPARATE = "separate"


class ReviewDecision(StrEnum):
    LINK = "link"
    SEPARATE = "separate"
