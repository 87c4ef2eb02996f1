"""Registry vocabularies; values are stored, Chinese labels live in the UI catalogue."""

from __future__ import annotations

from enum import StrEnum


class ConsortiumType(StrEnum):
    TIGHT = "tight"
    LOOSE = "loose"


class ConsortiumKind(StrEnum):
    CITY_MEDICAL_GROUP = "city_medical_group"
    COUNTY_MEDICAL_COMMUNITY = "county_medical_community"
    SPECIALIST_ALLIANCE = "specialist_alliance"
    TELEMEDICINE_NETWORK = "telemedicine_network"


class InstitutionLevel(StrEnum):
    TERTIARY = "tertiary"
    SECONDARY = "secondary"
    PRIMARY = "primary"
    VILLAGE = "village"


class InstitutionKind(StrEnum):
    GENERAL = "general"
    TCM = "tcm"
    MATERNAL_CHILD = "maternal_child"
    SPECIALIST = "specialist"


class EmergencyCentre(StrEnum):
    CHEST_PAIN = "chest_pain"
    STROKE = "stroke"
    TRAUMA = "trauma"


class RegionalCentre(StrEnum):
    IMAGING = "imaging"
    ECG = "ecg"
    LAB = "lab"
    PATHOLOGY = "pathology"
    STERILE_SUPPLY = "sterile_supply"


class ProfessionalTitle(StrEnum):
    CHIEF = "chief"
    ASSOCIATE_CHIEF = "associate_chief"
    ATTENDING = "attending"
    RESIDENT = "resident"
    VILLAGE_DOCTOR = "village_doctor"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
