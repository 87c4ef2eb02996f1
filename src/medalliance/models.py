"""Imports every ORM model so that metadata (Alembic, tests) sees the whole schema."""

from medalliance.access.models import BreakGlassGrant, CareRelationship, Consent
from medalliance.audit.models import AuditEvent, AuditSeal
from medalliance.auth.models import ApiClient, Membership, User
from medalliance.db import Base
from medalliance.events.models import Delivery, OutboxEvent, Subscription
from medalliance.patients.models import LocalRecord, MatchReview, Person, PersonMerge
from medalliance.records.hl7.models import ReceivedMessage
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    FhirResourceVersion,
    QuantityIndex,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
)
from medalliance.registry.models import (
    Consortium,
    Department,
    Institution,
    Practitioner,
    PractitionerRole,
)

__all__ = [
    "ApiClient",
    "AuditEvent",
    "AuditSeal",
    "Base",
    "BreakGlassGrant",
    "CareRelationship",
    "Consent",
    "Consortium",
    "DateIndex",
    "Delivery",
    "Department",
    "FhirResource",
    "FhirResourceVersion",
    "Institution",
    "LocalRecord",
    "MatchReview",
    "Membership",
    "OutboxEvent",
    "Person",
    "PersonMerge",
    "Practitioner",
    "PractitionerRole",
    "QuantityIndex",
    "ReceivedMessage",
    "ReferenceIndex",
    "StringIndex",
    "Subscription",
    "TokenIndex",
    "User",
]
