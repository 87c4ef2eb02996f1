"""The demo consortium, modelled on the seed articles: a city regional medical centre, a
county medical community led by the county people's hospital, county TCM and maternal-
and-child hospitals, ten township health centres with five village clinics each.

Division codes are synthetic (GB/T 2260 shape, county 510799, not a real county).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from medalliance.registry.enums import (
    ConsortiumKind,
    ConsortiumType,
    EmergencyCentre,
    InstitutionKind,
    InstitutionLevel,
    RegionalCentre,
)

COUNTY_NAME = "安平县"
COUNTY_CODE = "510799"
CITY_NAME = "锦江市"

TOWNSHIPS: tuple[tuple[str, str], ...] = (
    ("城关镇", "Chengguan"),
    ("青石镇", "Qingshi"),
    ("柳河镇", "Liuhe"),
    ("白鹤镇", "Baihe"),
    ("龙泉乡", "Longquan"),
    ("桃源乡", "Taoyuan"),
    ("石桥镇", "Shiqiao"),
    ("金沙乡", "Jinsha"),
    ("云台镇", "Yuntai"),
    ("双河乡", "Shuanghe"),
)
VILLAGE_STEMS = (
    "大坪",
    "新华",
    "和平",
    "光明",
    "红星",
    "东岳",
    "杨柳",
    "梨园",
    "高桥",
    "松林",
    "竹园",
    "水口",
    "马鞍",
    "金山",
    "凤凰",
)

# National catalogue of clinical departments (诊疗科目) codes with names.
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "01": ("预防保健科", "Preventive care"),
    "02": ("全科医疗科", "General practice"),
    "03.01": ("呼吸内科", "Respiratory medicine"),
    "03.02": ("消化内科", "Gastroenterology"),
    "03.03": ("神经内科", "Neurology"),
    "03.04": ("心血管内科", "Cardiology"),
    "03.07": ("内分泌科", "Endocrinology"),
    "04.01": ("普通外科", "General surgery"),
    "04.02": ("神经外科", "Neurosurgery"),
    "04.03": ("骨科", "Orthopaedics"),
    "05": ("妇产科", "Obstetrics and gynaecology"),
    "07": ("儿科", "Paediatrics"),
    "20": ("急诊医学科", "Emergency medicine"),
    "30": ("医学检验科", "Laboratory medicine"),
    "31": ("病理科", "Pathology"),
    "32": ("医学影像科", "Medical imaging"),
    "50": ("中医科", "Traditional Chinese medicine"),
}
TERTIARY_DEPTS = (
    "03.01",
    "03.02",
    "03.03",
    "03.04",
    "03.07",
    "04.01",
    "04.02",
    "04.03",
    "05",
    "07",
    "20",
    "30",
    "31",
    "32",
)
COUNTY_DEPTS = ("03.01", "03.03", "03.04", "03.07", "04.01", "04.03", "05", "07", "20", "30", "32")
TCM_DEPTS = ("50", "03.02", "04.03", "30", "32")
MCH_DEPTS = ("05", "07", "01", "30", "32")
TOWNSHIP_DEPTS = ("02", "50", "01", "30")
VILLAGE_DEPTS = ("02",)


@dataclass
class DemoInstitution:
    key: str
    name: str
    name_en: str
    level: InstitutionLevel
    kind: InstitutionKind
    consortium_key: str
    division_code: str
    latitude: float
    longitude: float
    beds: int
    departments: tuple[str, ...]
    parent_key: str | None = None
    emergency: tuple[EmergencyCentre, ...] = ()
    centres: tuple[RegionalCentre, ...] = ()
    brand_departments: tuple[str, ...] = ()
    township: str | None = None
    villages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DemoConsortium:
    key: str
    name: str
    name_en: str
    type: ConsortiumType
    kind: ConsortiumKind
    lead_key: str


CONSORTIA = (
    DemoConsortium(
        "county",
        f"{COUNTY_NAME}紧密型县域医共体",
        "Anping County Medical Community",
        ConsortiumType.TIGHT,
        ConsortiumKind.COUNTY_MEDICAL_COMMUNITY,
        "county-hospital",
    ),
    DemoConsortium(
        "city",
        f"{CITY_NAME}城市医疗集团",
        "Jinjiang City Medical Group",
        ConsortiumType.LOOSE,
        ConsortiumKind.CITY_MEDICAL_GROUP,
        "city-hospital",
    ),
)


def institutions(rng: random.Random) -> list[DemoInstitution]:
    """Every member, leads first; coordinates jitter deterministically around the county."""
    base_lat, base_lon = 31.05, 104.62
    result = [
        DemoInstitution(
            "city-hospital",
            f"{CITY_NAME}第一人民医院",
            "Jinjiang First People's Hospital",
            InstitutionLevel.TERTIARY,
            InstitutionKind.GENERAL,
            "city",
            "510700000000",
            31.47,
            104.68,
            1800,
            TERTIARY_DEPTS,
            emergency=tuple(EmergencyCentre),
            centres=(RegionalCentre.IMAGING, RegionalCentre.PATHOLOGY),
            brand_departments=("03.04", "04.02"),
        ),
        DemoInstitution(
            "county-hospital",
            f"{COUNTY_NAME}人民医院",
            "Anping County People's Hospital",
            InstitutionLevel.SECONDARY,
            InstitutionKind.GENERAL,
            "county",
            f"{COUNTY_CODE}000000",
            base_lat,
            base_lon,
            600,
            COUNTY_DEPTS,
            emergency=tuple(EmergencyCentre),
            centres=tuple(RegionalCentre),
            brand_departments=("03.04", "03.03"),
        ),
        DemoInstitution(
            "county-tcm",
            f"{COUNTY_NAME}中医医院",
            "Anping County TCM Hospital",
            InstitutionLevel.SECONDARY,
            InstitutionKind.TCM,
            "county",
            f"{COUNTY_CODE}000000",
            base_lat + 0.01,
            base_lon - 0.01,
            300,
            TCM_DEPTS,
            brand_departments=("50",),
        ),
        DemoInstitution(
            "county-mch",
            f"{COUNTY_NAME}妇幼保健院",
            "Anping County Maternal and Child Health Hospital",
            InstitutionLevel.SECONDARY,
            InstitutionKind.MATERNAL_CHILD,
            "county",
            f"{COUNTY_CODE}000000",
            base_lat - 0.01,
            base_lon + 0.01,
            150,
            MCH_DEPTS,
        ),
    ]
    for index, (town, town_en) in enumerate(TOWNSHIPS, start=1):
        town_code = f"{COUNTY_CODE}{100 + index:03d}000"
        lat = base_lat + rng.uniform(-0.25, 0.25)
        lon = base_lon + rng.uniform(-0.25, 0.25)
        stems = rng.sample(VILLAGE_STEMS, 5)
        key = f"township-{index:02d}"
        result.append(
            DemoInstitution(
                key,
                f"{COUNTY_NAME}{town}卫生院",
                f"{town_en} Township Health Centre",
                InstitutionLevel.PRIMARY,
                InstitutionKind.GENERAL,
                "county",
                town_code,
                lat,
                lon,
                rng.randrange(20, 80),
                TOWNSHIP_DEPTS,
                parent_key="county-hospital",
                township=town,
                villages=stems,
            )
        )
        for v, stem in enumerate(stems, start=1):
            result.append(
                DemoInstitution(
                    f"{key}-village-{v}",
                    f"{town}{stem}村卫生室",
                    f"{stem} Village Clinic, {town_en}",
                    InstitutionLevel.VILLAGE,
                    InstitutionKind.GENERAL,
                    "county",
                    f"{COUNTY_CODE}{100 + index:03d}{200 + v:03d}",
                    lat + rng.uniform(-0.05, 0.05),
                    lon + rng.uniform(-0.05, 0.05),
                    0,
                    VILLAGE_DEPTS,
                    parent_key=key,
                    township=town,
                )
            )
    return result
