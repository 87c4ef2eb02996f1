"""Care-level catalogue and recommendation shapes."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator, model_validator

from medalliance.care_levels.enums import CareLevel, LevelFit, Pathway

ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


def normalise_icd10(code: str) -> str:
    """``i10`` → ``I10``; raises ValueError for anything that is not ICD-10 shaped."""
    value = code.strip().upper()
    if not ICD10.match(value):
        raise ValueError(f"{code!r} is not an ICD-10 code (e.g. I10, S33.5)")
    return value


class DiseaseEntry(BaseModel):
    code: str
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    level: CareLevel
    departments: list[str] = Field(min_length=1)
    must_refer: bool = False
    pathway: Pathway | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return normalise_icd10(value)


class CodedReason(BaseModel):
    code: str = Field(pattern=r"^[a-z_]{2,40}$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)


class Catalogue(BaseModel):
    version: int = 1
    diseases: list[DiseaseEntry]
    up_reasons: list[CodedReason] = Field(min_length=1)
    down_criteria: list[CodedReason] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Catalogue:
        codes = [d.code for d in self.diseases]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"duplicate disease codes: {', '.join(duplicates)}")
        return self


class CatalogueUpdate(BaseModel):
    """A whole new catalogue (API) with the reason for the change (kept in the audit log)."""

    catalogue: Catalogue
    note: str = Field(min_length=2, max_length=500)


class RecommendRequest(BaseModel):
    patient_id: str | None = None
    diagnoses: list[str] = Field(min_length=1, max_length=20)
    institution_id: str | None = None  # where the patient is now; default: the actor's


class DiagnosisRule(BaseModel):
    code: str
    matched: str | None  # the catalogue entry the code fell under, None when unknown
    name: str
    level: CareLevel
    must_refer: bool
    pathway: Pathway | None


class Candidate(BaseModel):
    institution_id: str
    institution_name: str
    level: str
    department_id: str | None
    department_name: str | None
    distance_km: float | None
    free_slots: int
    capability: int
    brand: bool


class EmergencyRoute(BaseModel):
    pathway: Pathway
    institution_id: str
    institution_name: str
    department_id: str | None
    distance_km: float


class Recommendation(BaseModel):
    catalogue_version: int
    level: CareLevel
    current_institution_id: str
    current_level: str
    fit: LevelFit
    wrong_level: bool
    must_refer: bool
    rules: list[DiagnosisRule]
    candidates: list[Candidate]
    emergency: list[EmergencyRoute]
