"""Registry payloads: what the API, the forms and the service accept and return.

Shape rules (enums, ranges, code formats) live here so that the API answers 422 naming
the field; rules that need the database (duplicates, scope, parents) live in the service.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from medalliance.registry.enums import (
    ConsortiumKind,
    ConsortiumType,
    EmergencyCentre,
    InstitutionKind,
    InstitutionLevel,
    ProfessionalTitle,
    RegionalCentre,
    Sex,
)

# GB/T 2260 province-level prefixes: a division code outside them is a typo, not a place.
PROVINCE_PREFIXES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63"}
    | {"64", "65", "71", "81", "82"}
)


def _province_known(code: str) -> str:
    if code[:2] not in PROVINCE_PREFIXES:
        raise ValueError(f"division code must start with a GB/T 2260 province code, not {code[:2]}")
    return code


Text = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str, Field(max_length=200)]
Address = Annotated[str, Field(max_length=300)]
Key = Annotated[str, Field(min_length=1, max_length=64)]
InstitutionCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-]{0,31}$")]
# GB/T 2260: 6 digits (county) or the 12-digit statistical code (township/village).
DivisionCode = Annotated[str, Field(pattern=r"^(\d{6}|\d{12})$"), AfterValidator(_province_known)]
# The national catalogue of clinical departments (诊疗科目): "03" or "03.04".
DepartmentCode = Annotated[str, Field(pattern=r"^\d{2}(\.\d{2})?$")]
LicenceNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-]{3,31}$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Beds = Annotated[int, Field(ge=0, le=100_000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Patch(_Input):
    """Partial update: only the fields sent change; null only where the column allows it."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_null_for_required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name in cls.model_fields and name not in cls.nullable:
                    raise ValueError(f"{name} may not be null")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, mode="json")


class ConsortiumCreate(_Input):
    name: Text
    name_en: OptionalText = ""
    type: ConsortiumType
    kind: ConsortiumKind
    lead_institution_id: Key


class ConsortiumUpdate(_Patch):
    name: Text | None = None
    name_en: OptionalText | None = None
    type: ConsortiumType | None = None
    kind: ConsortiumKind | None = None
    lead_institution_id: Key | None = None


class InstitutionCreate(_Input):
    code: InstitutionCode
    name: Text
    name_en: OptionalText = ""
    level: InstitutionLevel
    kind: InstitutionKind
    consortium_id: Key
    parent_id: Key | None = None
    division_code: DivisionCode
    address: Address = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    beds: Beds = 0
    legal_person: bool = True
    emergency_centres: list[EmergencyCentre] = Field(default_factory=list)
    regional_centres: list[RegionalCentre] = Field(default_factory=list)

    @model_validator(mode="after")
    def _both_coordinates_or_none(self) -> InstitutionCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude are given together or not at all")
        return self


class InstitutionUpdate(_Patch):
    nullable = frozenset({"parent_id", "latitude", "longitude"})

    code: InstitutionCode | None = None
    name: Text | None = None
    name_en: OptionalText | None = None
    level: InstitutionLevel | None = None
    kind: InstitutionKind | None = None
    consortium_id: Key | None = None
    parent_id: Key | None = None
    division_code: DivisionCode | None = None
    address: Address | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    beds: Beds | None = None
    legal_person: bool | None = None
    emergency_centres: list[EmergencyCentre] | None = None
    regional_centres: list[RegionalCentre] | None = None


class DepartmentCreate(_Input):
    institution_id: Key
    code: DepartmentCode
    name: Text
    name_en: OptionalText = ""
    beds: Beds = 0
    brand: bool = False


class DepartmentUpdate(_Patch):
    code: DepartmentCode | None = None
    name: Text | None = None
    name_en: OptionalText | None = None
    beds: Beds | None = None
    brand: bool | None = None


class PractitionerCreate(_Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    sex: Sex
    title: ProfessionalTitle
    licence_number: LicenceNumber
    specialties: list[DepartmentCode] = Field(default_factory=list)
    # The first practice site; an institution admin registers staff of their own member.
    institution_id: Key
    department_id: Key | None = None


class PractitionerUpdate(_Patch):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    sex: Sex | None = None
    title: ProfessionalTitle | None = None
    licence_number: LicenceNumber | None = None
    specialties: list[DepartmentCode] | None = None


class RoleCreate(_Input):
    practitioner_id: Key
    institution_id: Key
    department_id: Key | None = None
    primary_site: bool = False


class RoleUpdate(_Patch):
    nullable = frozenset({"department_id"})

    department_id: Key | None = None
    primary_site: bool | None = None


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ConsortiumRead(_Read):
    id: str
    name: str
    name_en: str
    type: str
    kind: str
    lead_institution_id: str | None
    active: bool


class InstitutionRead(_Read):
    id: str
    code: str
    name: str
    name_en: str
    level: str
    kind: str
    consortium_id: str | None
    parent_id: str | None
    division_code: str
    address: str
    latitude: float | None
    longitude: float | None
    beds: int
    legal_person: bool
    emergency_centres: list[str]
    regional_centres: list[str]
    active: bool


class DepartmentRead(_Read):
    id: str
    institution_id: str
    code: str
    name: str
    name_en: str
    beds: int
    brand: bool
    active: bool


class RoleRead(_Read):
    id: str
    practitioner_id: str
    institution_id: str
    department_id: str | None
    primary_site: bool
    active: bool


class PractitionerRead(_Read):
    id: str
    name: str
    sex: str
    title: str
    licence_number: str
    specialties: list[str]
    active: bool
    roles: list[RoleRead] = Field(default_factory=list)


T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class InstitutionSummary(InstitutionRead):
    """A list row: the institution and its active member counts."""

    departments: int
    practitioners: int
    children: int
