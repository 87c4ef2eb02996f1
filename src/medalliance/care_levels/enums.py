"""Care-level vocabularies."""

from __future__ import annotations

from enum import StrEnum

from medalliance.registry.enums import EmergencyCentre, InstitutionLevel


class CareLevel(StrEnum):
    """The level that should treat a disease (village clinics count as grassroots)."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    TERTIARY = "tertiary"


class LevelFit(StrEnum):
    """Whether the patient is treated at the right level."""

    OK = "ok"
    TOO_LOW = "too_low"  # must be referred up
    TOO_HIGH = "too_high"  # could be referred down


class Pathway(StrEnum):
    CHEST_PAIN = "chest_pain"
    STROKE = "stroke"
    TRAUMA = "trauma"


PATHWAY_CENTRE: dict[Pathway, EmergencyCentre] = {
    Pathway.CHEST_PAIN: EmergencyCentre.CHEST_PAIN,
    Pathway.STROKE: EmergencyCentre.STROKE,
    Pathway.TRAUMA: EmergencyCentre.TRAUMA,
}

# Capability order of institution levels; a village clinic does grassroots follow-up.
LEVEL_RANK: dict[str, int] = {
    InstitutionLevel.VILLAGE.value: 0,
    InstitutionLevel.PRIMARY.value: 1,
    InstitutionLevel.SECONDARY.value: 2,
    InstitutionLevel.TERTIARY.value: 3,
}
CARE_LEVEL_RANK: dict[CareLevel, int] = {
    CareLevel.PRIMARY: 1,
    CareLevel.SECONDARY: 2,
    CareLevel.TERTIARY: 3,
}
