"""Care-level rules: the catalogue in force, its audited edits, the level recommendation
and the emergency pathways."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.care_levels import adapters, repository
from medalliance.care_levels.enums import (
    CARE_LEVEL_RANK,
    LEVEL_RANK,
    PATHWAY_CENTRE,
    CareLevel,
    LevelFit,
    Pathway,
)
from medalliance.care_levels.models import CareLevelCatalogue
from medalliance.care_levels.schemas import (
    Candidate,
    Catalogue,
    CodedReason,
    DiagnosisRule,
    DiseaseEntry,
    EmergencyRoute,
    Recommendation,
    RecommendRequest,
    normalise_icd10,
)
from medalliance.errors import Forbidden, NotFound, ValidationFailed
from medalliance.registry.models import Department, Institution
from medalliance.scheduling.service import free_capacity

SHIPPED_CATALOGUE = Path(__file__).parent / "data" / "catalogue.json"
EARTH_RADIUS_KM = 6371.0088
MAX_CANDIDATES = 10
# A code missing from the catalogue is assessed at county level: "diagnosis unclear" is
# itself an up-referral reason, and the county is the consortium's first specialist level.
UNKNOWN_LEVEL = CareLevel.SECONDARY


@cache
def shipped_catalogue() -> Catalogue:
    return Catalogue.model_validate(json.loads(SHIPPED_CATALOGUE.read_text(encoding="utf-8")))


def current(db: Session) -> Catalogue:
    """The catalogue in force: the newest saved version, else the one the project ships."""
    row = repository.latest(db)
    return Catalogue.model_validate(row.content) if row else shipped_catalogue()


def history(db: Session) -> list[CareLevelCatalogue]:
    return repository.versions(db)


def save(db: Session, actor: Actor, catalogue: Catalogue, *, note: str, now: datetime) -> Catalogue:
    """Store a new version (never overwrite: old recommendations stay explainable)."""
    before = current(db)
    saved = catalogue.model_copy(update={"version": before.version + 1})
    db.add(
        CareLevelCatalogue(
            version=saved.version,
            content=saved.model_dump(mode="json"),
            note=note.strip(),
            created_by=actor.username,
            created_at=now,
        )
    )
    db.flush()
    audit.record(
        db,
        actor,
        "care_levels.catalogue.update",
        resource_type="CareLevelCatalogue",
        resource_id=str(saved.version),
        detail={"note": note.strip(), **_diff(before, saved)},
    )
    return saved


def upsert_disease(
    db: Session, actor: Actor, entry: DiseaseEntry, *, note: str, now: datetime
) -> Catalogue:
    catalogue = current(db)
    diseases = [d for d in catalogue.diseases if d.code != entry.code] + [entry]
    diseases.sort(key=lambda d: (CARE_LEVEL_RANK[d.level], d.code))
    return save(db, actor, catalogue.model_copy(update={"diseases": diseases}), note=note, now=now)


def remove_disease(db: Session, actor: Actor, code: str, *, note: str, now: datetime) -> Catalogue:
    catalogue = current(db)
    kept = [d for d in catalogue.diseases if d.code != code]
    if len(kept) == len(catalogue.diseases):
        raise NotFound(f"disease {code} is not in the catalogue")
    return save(db, actor, catalogue.model_copy(update={"diseases": kept}), note=note, now=now)


def parse_catalogue(raw: Any) -> Catalogue:
    """A catalogue edited as JSON on the page; errors name the first bad field."""
    try:
        return Catalogue.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "catalogue"
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from exc


def _diff(before: Catalogue, after: Catalogue) -> dict[str, list[str]]:
    old = {d.code: d for d in before.diseases}
    new = {d.code: d for d in after.diseases}
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(c for c in new.keys() & old.keys() if new[c] != old[c]),
    }


def lookup(catalogue: Catalogue, code: str) -> DiseaseEntry | None:
    """The most specific entry covering the code (``E11.1`` before ``E11``)."""
    found = [d for d in catalogue.diseases if code == d.code or code.startswith(d.code)]
    return max(found, key=lambda d: len(d.code)) if found else None


def reasons(catalogue: Catalogue, direction: str) -> list[CodedReason]:
    return catalogue.up_reasons if direction == "up" else catalogue.down_criteria


def diagnosis_rules(catalogue: Catalogue, codes: Iterable[str]) -> list[DiagnosisRule]:
    rules = []
    for index, raw in enumerate(codes):
        try:
            code = normalise_icd10(raw)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field=f"diagnoses[{index}]") from exc
        entry = lookup(catalogue, code)
        rules.append(
            DiagnosisRule(
                code=code,
                matched=entry.code if entry else None,
                name=entry.name_zh if entry else code,
                level=entry.level if entry else UNKNOWN_LEVEL,
                must_refer=entry.must_refer if entry else False,
                pathway=entry.pathway if entry else None,
            )
        )
    return rules


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def distance_km(a: Institution, b: Institution) -> float | None:
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return None
    return round(haversine_km(a.latitude, a.longitude, b.latitude, b.longitude), 1)


def level_fit(current_level: str, required: CareLevel, must_refer: bool) -> LevelFit:
    # Village clinics do grassroots follow-up, so they count as primary for primary diseases.
    have = max(LEVEL_RANK[current_level], 1)
    need = CARE_LEVEL_RANK[required]
    if have < need:
        return LevelFit.TOO_LOW
    if have > need and not must_refer:
        return LevelFit.TOO_HIGH
    return LevelFit.OK


def recommend(
    db: Session, actor: Actor, request: RecommendRequest, *, now: datetime
) -> Recommendation:
    """Which level should treat these diagnoses, which members can, and whether the patient
    is at the wrong level now."""
    here = _current_institution(db, actor, request.institution_id)
    if request.patient_id and access.clinical_basis(db, actor, request.patient_id, now) is None:
        raise Forbidden("no care relationship, consent or emergency access for this patient")
    catalogue = current(db)
    rules = diagnosis_rules(catalogue, request.diagnoses)
    level = max((r.level for r in rules), key=lambda lv: CARE_LEVEL_RANK[lv])
    must_refer = any(
        r.must_refer and LEVEL_RANK[here.level] < CARE_LEVEL_RANK[r.level] for r in rules
    )
    fit = level_fit(here.level, level, any(r.must_refer for r in rules))
    members = adapters.active_institutions(db)
    return Recommendation(
        catalogue_version=catalogue.version,
        level=level,
        current_institution_id=here.id,
        current_level=here.level,
        fit=fit,
        wrong_level=fit != LevelFit.OK,
        must_refer=must_refer,
        rules=rules,
        candidates=_candidates(db, catalogue, rules, level, here, members, now),
        emergency=[
            route
            for pathway in dict.fromkeys(r.pathway for r in rules if r.pathway)
            if pathway and (route := _nearest_centre(db, pathway, here, members)) is not None
        ],
    )


def emergency_route(
    db: Session, actor: Actor, pathway: Pathway, institution_id: str | None
) -> EmergencyRoute:
    here = _current_institution(db, actor, institution_id)
    route = _nearest_centre(db, pathway, here, adapters.active_institutions(db))
    if route is None:
        raise NotFound(f"no designated {pathway.value} centre in the consortium")
    return route


def _current_institution(db: Session, actor: Actor, institution_id: str | None) -> Institution:
    wanted = institution_id or actor.institution_id
    found = adapters.institution(db, wanted) if wanted else None
    if found is None:
        raise ValidationFailed("unknown current institution", field="institution_id")
    return found


def _nearest_centre(
    db: Session, pathway: Pathway, here: Institution, members: list[Institution]
) -> EmergencyRoute | None:
    centre = PATHWAY_CENTRE[pathway].value
    ranked = sorted(
        (
            (dist, m)
            for m in members
            if centre in (m.emergency_centres or []) and (dist := distance_km(here, m)) is not None
        ),
        key=lambda pair: (pair[0], pair[1].id),
    )
    if not ranked:
        return None
    dist, best = ranked[0]
    emergency_department = adapters.department(db, f"{best.id}:20")
    return EmergencyRoute(
        pathway=pathway,
        institution_id=best.id,
        institution_name=best.name,
        department_id=emergency_department.id if emergency_department else None,
        distance_km=dist,
    )


def _candidates(
    db: Session,
    catalogue: Catalogue,
    rules: list[DiagnosisRule],
    level: CareLevel,
    here: Institution,
    members: list[Institution],
    now: datetime,
) -> list[Candidate]:
    needed = _needed_departments(catalogue, rules)
    able = [
        m
        for m in members
        if m.id != here.id
        and LEVEL_RANK[m.level] >= CARE_LEVEL_RANK[level]
        and m.level != "village"
    ]
    departments: dict[str, list[Department]] = {}
    for dept in adapters.active_departments(db, [m.id for m in able]):
        if not needed or dept.code in needed:
            departments.setdefault(dept.institution_id, []).append(dept)
    chosen = {
        inst: min(
            depts, key=lambda d: (not d.brand, needed.index(d.code) if d.code in needed else 99)
        )
        for inst, depts in departments.items()
    }
    free = free_capacity(db, [d.id for d in chosen.values()], now=now)
    result = []
    for m in able:
        if m.id not in chosen:
            continue
        dept = chosen[m.id]
        covered = {d.code for d in departments[m.id]}
        exact = LEVEL_RANK[m.level] == CARE_LEVEL_RANK[level]
        brand = any(d.brand for d in departments[m.id])
        result.append(
            Candidate(
                institution_id=m.id,
                institution_name=m.name,
                level=m.level,
                department_id=dept.id,
                department_name=dept.name,
                distance_km=distance_km(here, m),
                free_slots=free.get(dept.id, 0),
                # Right level first (care near home), then breadth of the departments the
                # diagnoses need, then a brand department the member is building.
                capability=10 * exact + len(covered & set(needed)) + 2 * brand,
                brand=brand,
            )
        )
    result.sort(
        key=lambda c: (
            -c.capability,
            c.distance_km if c.distance_km is not None else math.inf,
            -c.free_slots,
            c.institution_id,
        )
    )
    return result[:MAX_CANDIDATES]


def _needed_departments(catalogue: Catalogue, rules: list[DiagnosisRule]) -> list[str]:
    needed: list[str] = []
    for rule in rules:
        entry = lookup(catalogue, rule.code)
        for code in entry.departments if entry else ():
            if code not in needed:
                needed.append(code)
    return needed
