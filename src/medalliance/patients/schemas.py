"""MPI payloads of the domain API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from medalliance.access.enums import ConsentStatus
from medalliance.patients.enums import AdministrativeSex, LinkOutcome, ReviewDecision


class LocalRecordIn(BaseModel):
    """A member's record of a person: its own medical record number and what it captured."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    institution_id: str | None = Field(
        default=None, max_length=64, description="the member; defaults to the caller's"
    )
    mrn: str = Field(min_length=1, max_length=64, description="local medical record number")
    name: str = Field(min_length=1, max_length=100)
    sex: AdministrativeSex
    birth_date: date | None = Field(
        description="None only when not known yet (an unidentified patient): such a record "
        "is never linked to another without a person's review, unless by ID number"
    )
    id_number: str | None = Field(default=None, max_length=32)
    insurance_number: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=20)
    address: str = Field(default="", max_length=300)
    division_code: str = Field(default="", max_length=12, pattern=r"^[0-9]*$")
    recorded_at: AwareDatetime | None = Field(
        default=None,
        description="when the member captured these demographics; an update older than "
        "the record's last one leaves the record as it is",
    )


class RegistrationRead(BaseModel):
    person_id: str
    local_record_id: int
    outcome: LinkOutcome
    score: float | None
    review_id: int | None


class MergeIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    survivor_id: str = Field(min_length=1, max_length=64)
    merged_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=4, max_length=500)


class UnmergeIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    merged_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=4, max_length=500)


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: str
    merged_id: str
    merged_by: str
    merged_at: datetime
    reason: str
    unmerged_by: str | None
    unmerged_at: datetime | None
    unmerge_reason: str


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    decision: ReviewDecision
    reason: str = Field(min_length=4, max_length=500)


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    candidate_id: str
    score: float
    status: str
    comparison: dict[str, str]
    reason: str
    merge_id: int | None


class ConsentIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    status: ConsentStatus
    source_document: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)


class ConsentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: str
    status: str
    scope: str
    recorded_at: datetime
    recorded_by: str
    source_document: str
    note: str


class BreakGlassIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    reason: str = Field(max_length=500)


class BreakGlassRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: str
    reason: str
    granted_at: datetime
    expires_at: datetime
