"""Referral API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from medalliance.referrals.enums import Direction, Urgency


class ReferralCreate(BaseModel):
    """The referral form (转诊单)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    patient_id: str = Field(min_length=1, max_length=64)
    direction: Direction
    urgency: Urgency = Urgency.ROUTINE
    to_institution_id: str = Field(min_length=1, max_length=64)
    to_department_id: str | None = None
    to_practitioner_id: str | None = None
    from_department_id: str | None = None
    from_practitioner_id: str | None = None
    reason_code: str = Field(default="", max_length=40)
    reason_text: str = Field(default="", max_length=4000)
    diagnoses: list[str] = Field(default_factory=list, max_length=20)
    history_summary: str = Field(default="", max_length=20000)
    current_treatment: str = Field(default="", max_length=20000)
    attachments: list[str] = Field(default_factory=list, max_length=50)
    rehab_plan: str = Field(default="", max_length=20000)
    medication_plan: str = Field(default="", max_length=20000)
    follow_up_plan: str = Field(default="", max_length=20000)
    previous_referral_id: str | None = None
    submit: bool = True


class Outcome(BaseModel):
    """The closed loop: a consult note or discharge summary for the referrer."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="discharge-summary", pattern="^(consult-note|discharge-summary)$")
    text: str = Field(default="", max_length=50000)
    reference: str | None = None  # an existing DocumentReference/Composition


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=4000)
    slot_id: int | None = None
    outcome: Outcome | None = None


class FollowUpDone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: str = Field(min_length=1, max_length=2000, description="what the follow-up found")


class FollowUpRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    referral_id: str
    patient_id: str
    institution_id: str
    due_at: datetime
    status: str
    note: str
    done_at: datetime | None
    done_by: str | None
    result: str


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event: str
    from_status: str
    to_status: str
    side: str
    username: str
    institution_id: str | None
    reason: str
    at: datetime


class ReferralRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    patient_id: str
    patient_name: str
    episode_id: str
    previous_referral_id: str | None
    direction: str
    urgency: str
    status: str
    green_channel: bool
    from_institution_id: str
    from_department_id: str | None
    from_practitioner_id: str | None
    to_institution_id: str
    to_department_id: str | None
    to_practitioner_id: str | None
    requester_name: str
    reason_code: str
    reason_text: str
    diagnoses: list[dict[str, Any]]
    history_summary: str
    current_treatment: str
    attachments: list[str]
    rehab_plan: str
    medication_plan: str
    follow_up_plan: str
    outcome_reference: str | None
    outcome_summary: str
    appointment_id: str | None
    status_reason: str
    deadline_at: datetime | None
    requested_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ReferralDetailRead(ReferralRead):
    history: list[HistoryRead]
    escalation_level: int
    overdue: bool


class QueueItemRead(BaseModel):
    id: str
    version: int
    patient_id: str
    patient_name: str
    direction: str
    urgency: str
    status: str
    from_institution_id: str
    to_institution_id: str
    deadline_at: datetime | None
    updated_at: datetime
    overdue: bool
    escalation_level: int
    outcome_unseen: bool


class QueueRead(BaseModel):
    items: list[QueueItemRead]
    has_more: bool
