"""Imports every ORM model so that metadata (Alembic, tests) sees the whole schema."""

from medalliance.access.models import BreakGlassGrant, CareRelationship, Consent
from medalliance.audit.models import AuditEvent, AuditSeal
from medalliance.auth.models import ApiClient, Membership, User
from medalliance.care_levels.models import CareLevelCatalogue  # noqa: F401
from medalliance.db import Base
from medalliance.events.models import Delivery, OutboxEvent, Subscription
from medalliance.indicators.models import (  # noqa: F401  (appraisal indicators)
    EncounterFact,
    IndicatorDefinition,
    MeasureAggregate,
    Population,
    ReferralFact,
    SettlementFact,
    SettlementImport,
    SourceWatermark,
)
from medalliance.patients.models import (
    LocalRecord,
    MatchReview,
    Person,
    PersonMerge,
    PersonMergeMove,
)
from medalliance.records.hl7.models import ReceivedMessage  # noqa: F401  (HL7 v2 inbound)
from medalliance.records.models import (  # noqa: F401  (shared record: FHIR store)
    DateIndex,
    FhirResource,
    FhirResourceVersion,
    QuantityIndex,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
)
from medalliance.referrals.models import (  # noqa: F401  (two-way referral)
    Referral,
    ReferralEscalation,
    ReferralFollowUp,
    ReferralHistory,
)
from medalliance.registry.models import (
    Consortium,
    Department,
    Institution,
    Practitioner,
    PractitionerRole,
)
from medalliance.scheduling.models import Appointment, Slot  # noqa: F401

__all__ = [
    "ApiClient",
    "AuditEvent",
    "AuditSeal",
    "Base",
    "BreakGlassGrant",
    "CareRelationship",
    "Consent",
    "Consortium",
    "Delivery",
    "Department",
    "Institution",
    "LocalRecord",
    "MatchReview",
    "Membership",
    "OutboxEvent",
    "Person",
    "PersonMerge",
    "PersonMergeMove",
    "Practitioner",
    "PractitionerRole",
    "Subscription",
    "User",
]
