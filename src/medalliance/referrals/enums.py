"""Referral vocabularies. Status values are the FHIR Task status codes where one exists."""

from __future__ import annotations

from enum import StrEnum


class ReferralStatus(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in-progress"  # the patient arrived
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the patient did not come


class ReferralEvent(StrEnum):
    SUBMIT = "submit"
    RECEIVE = "receive"
    ACCEPT = "accept"
    AUTO_ACCEPT = "auto_accept"  # green channel: accepted by default
    REJECT = "reject"
    SCHEDULE = "schedule"
    ARRIVE = "arrive"
    COMPLETE = "complete"
    CANCEL = "cancel"
    FAIL = "fail"


class Side(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"
    SYSTEM = "system"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class Box(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class FollowUpStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


OPEN_STATUSES = frozenset(
    {
        ReferralStatus.REQUESTED,
        ReferralStatus.RECEIVED,
        ReferralStatus.ACCEPTED,
        ReferralStatus.SCHEDULED,
        ReferralStatus.IN_PROGRESS,
    }
)
AWAITING_DECISION = frozenset({ReferralStatus.REQUESTED, ReferralStatus.RECEIVED})
FINAL_STATUSES = frozenset(
    {
        ReferralStatus.COMPLETED,
        ReferralStatus.REJECTED,
        ReferralStatus.CANCELLED,
        ReferralStatus.FAILED,
    }
)
