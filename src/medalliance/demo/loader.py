"""Loads the demo consortium into an empty database: deterministic for a given seed."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from medalliance.auth import service as auth_service
from medalliance.auth.enums import Role
from medalliance.config import get_settings
from medalliance.demo import consortium as plan
from medalliance.demo import records as demo_records
from medalliance.demo import referrals as demo_referrals
from medalliance.demo.local_records import add_local_records
from medalliance.demo.people import make_resident
from medalliance.errors import Conflict, Forbidden
from medalliance.patients.models import Person
from medalliance.registry.enums import InstitutionLevel, ProfessionalTitle
from medalliance.registry.models import (
    Consortium,
    Department,
    Institution,
    Practitioner,
    PractitionerRole,
)

DEMO_PASSWORD = "medalliance"
DEMO_TODAY = date(2026, 11, 1)
_BATCH = 20_000
# Resident n lives in township n mod 10, so p00000010 is a resident of township-01.
DEMO_RESIDENT_PERSON = "p00000010"


class Scale(StrEnum):
    SMALL = "small"
    COUNTY = "county"


RESIDENTS = {Scale.SMALL: 2_000, Scale.COUNTY: 1_000_000}
# Completed upward referrals whose stays the demo writes into the shared record: all of
# the small demo's; a sample of the county's 20,000, so that loading stays a matter of
# seconds (each stay is one FHIR transaction).
RECORDED_STAYS = 400

# Who each demo user is: (role, institution key, department code or None).
DEMO_USERS: tuple[tuple[Role, str, str | None], ...] = (
    (Role.ADMIN, "county-hospital", None),
    (Role.COORDINATOR, "county-hospital", None),
    (Role.DOCTOR, "township-01", "02"),
    (Role.SPECIALIST, "county-hospital", "03.04"),
    (Role.READER, "county-hospital", "32"),
    (Role.FAMILY_DOCTOR, "township-01", "02"),
    (Role.RESIDENT, "township-01", None),
    # The commission reads consortium aggregates; it is scoped to the lead institution.
    (Role.COMMISSION, "county-hospital", None),
)
_TITLES_BY_LEVEL = {
    InstitutionLevel.TERTIARY: (
        ProfessionalTitle.CHIEF,
        ProfessionalTitle.ASSOCIATE_CHIEF,
        ProfessionalTitle.ATTENDING,
        ProfessionalTitle.RESIDENT,
    ),
    InstitutionLevel.SECONDARY: (
        ProfessionalTitle.ASSOCIATE_CHIEF,
        ProfessionalTitle.ATTENDING,
        ProfessionalTitle.RESIDENT,
    ),
    InstitutionLevel.PRIMARY: (ProfessionalTitle.ATTENDING, ProfessionalTitle.RESIDENT),
    InstitutionLevel.VILLAGE: (ProfessionalTitle.VILLAGE_DOCTOR,),
}


@dataclass(frozen=True)
class LoadReport:
    institutions: int
    departments: int
    practitioners: int
    residents: int
    users: int
    resources: int
    seconds: float


def load(db: Session, *, scale: Scale, seed: int, records: bool = False) -> LoadReport:
    """Create the whole demo consortium in the caller's transaction; ``records``: with the
    shared health record its referral history implies (``demo.records``)."""
    if not get_settings().is_development and get_settings().environment != "test":
        raise Forbidden("demo users with a known password are refused outside development")
    if auth_service.has_users(db):
        raise Conflict("the database already has users; demo data loads only into an empty one")
    started = time.perf_counter()
    rng = random.Random(seed)
    members = plan.institutions(rng)
    _add_consortia_and_institutions(db, members)
    departments = _add_departments(db, members)
    practitioners = _add_practitioners(db, rng, members)
    residents = _add_residents(db, rng, members, RESIDENTS[scale])
    add_local_records(db, members=[m.key for m in members], residents=residents, seed=seed)
    users = _add_users(db, members)
    demo_referrals.load(db, residents=RESIDENTS[scale], seed=seed, today=DEMO_TODAY)
    resources = 0
    if records:
        township = next(i for r, i, _ in DEMO_USERS if r == Role.RESIDENT)
        resources = demo_records.load(
            db,
            seed=seed,
            limit=RECORDED_STAYS,
            resident=DEMO_RESIDENT_PERSON,
            township=township,
            today=DEMO_TODAY,
        )
    return LoadReport(
        len(members),
        departments,
        practitioners,
        residents,
        users,
        resources,
        time.perf_counter() - started,
    )


def _add_consortia_and_institutions(db: Session, members: list[plan.DemoInstitution]) -> None:
    for c in plan.CONSORTIA:
        db.add(
            Consortium(
                id=c.key,
                name=c.name,
                name_en=c.name_en,
                type=c.type.value,
                kind=c.kind.value,
                lead_institution_id=c.lead_key,
                active=True,
            )
        )
    db.flush()
    for index, m in enumerate(members, start=1):
        db.add(
            Institution(
                id=m.key,
                code=f"MA{index:04d}",
                name=m.name,
                name_en=m.name_en,
                level=m.level.value,
                kind=m.kind.value,
                consortium_id=m.consortium_key,
                parent_id=m.parent_key,
                division_code=m.division_code,
                address=m.name,
                latitude=m.latitude,
                longitude=m.longitude,
                beds=m.beds,
                legal_person=m.level != InstitutionLevel.VILLAGE,
                emergency_centres=[e.value for e in m.emergency],
                regional_centres=[c.value for c in m.centres],
                active=True,
            )
        )
        db.flush()  # parents before children (self-referencing foreign key)


def _add_departments(db: Session, members: list[plan.DemoInstitution]) -> int:
    rows = [
        {
            "id": f"{m.key}:{code}",
            "institution_id": m.key,
            "code": code,
            "name": plan.DEPARTMENTS[code][0],
            "name_en": plan.DEPARTMENTS[code][1],
            "beds": 0
            if m.level == InstitutionLevel.VILLAGE
            else max(m.beds // len(m.departments), 0),
            "brand": code in m.brand_departments,
            "active": True,
        }
        for m in members
        for code in m.departments
    ]
    db.execute(insert(Department), rows)
    return len(rows)


def _add_practitioners(db: Session, rng: random.Random, members: list[plan.DemoInstitution]) -> int:
    practitioners: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    for m in members:
        for code in m.departments:
            for _ in range(1 if m.level == InstitutionLevel.VILLAGE else rng.randint(2, 4)):
                person = _resident_for(rng, m, members)
                n = len(practitioners) + 1
                practitioners.append(
                    {
                        "id": f"pr-{n:05d}",
                        "name": person.name,
                        "sex": person.sex,
                        "title": rng.choice(_TITLES_BY_LEVEL[m.level]).value,
                        "licence_number": f"1105{n:011d}",
                        "specialties": [code],
                        "active": True,
                    }
                )
                roles.append(
                    {
                        "id": f"prr-{n:05d}",
                        "practitioner_id": f"pr-{n:05d}",
                        "institution_id": m.key,
                        "department_id": f"{m.key}:{code}",
                        "primary_site": True,
                        "active": True,
                    }
                )
    db.execute(insert(Practitioner), practitioners)
    db.execute(insert(PractitionerRole), roles)
    return len(practitioners)


def _resident_for(
    rng: random.Random, member: plan.DemoInstitution, members: list[plan.DemoInstitution]
) -> Any:
    township = member if member.villages else next(m for m in members if m.villages)
    return make_resident(
        rng,
        township_name=township.township or "",
        county_name=plan.COUNTY_NAME,
        township_division_code=township.division_code,
        village_names=township.villages,
        today=DEMO_TODAY,
    )


def _add_residents(
    db: Session, rng: random.Random, members: list[plan.DemoInstitution], count: int
) -> int:
    for batch in _chunks(_resident_rows(rng, members, count), _BATCH):
        db.execute(insert(Person), batch)
    return count


def _resident_rows(
    rng: random.Random, members: list[plan.DemoInstitution], count: int
) -> Iterator[dict[str, Any]]:
    townships = [m for m in members if m.villages]
    issued: set[str] = set()
    for n in range(1, count + 1):
        town = townships[n % len(townships)]
        r = make_resident(
            rng,
            township_name=town.township or "",
            county_name=plan.COUNTY_NAME,
            township_division_code=town.division_code,
            village_names=town.villages,
            today=DEMO_TODAY,
            issued=issued,
        )
        yield {
            "id": f"p{n:08d}",
            "id_number": r.id_number,
            "name": r.name,
            "pinyin": r.pinyin,
            "sex": r.sex,
            "birth_date": r.birth_date,
            "phone": r.phone,
            "address": r.address,
            "division_code": r.division_code,
            "home_institution_id": town.key,
        }


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _add_users(db: Session, members: list[plan.DemoInstitution]) -> int:
    keys = {m.key for m in members}
    for role, institution_key, department in DEMO_USERS:
        assert institution_key in keys
        memberships = [(institution_key, role)]
        if role == Role.SPECIALIST:
            memberships.append(("township-01", role))  # multi-site practice (多点执业)
        practitioner = f"pr-demo-{role.value}" if department else None
        display_name = _DEMO_NAMES[role]
        if role == Role.RESIDENT:
            person = db.get(Person, DEMO_RESIDENT_PERSON)
            display_name = person.name if person else display_name
        if practitioner:
            db.add(
                Practitioner(
                    id=practitioner,
                    name=_DEMO_NAMES[role],
                    sex="female",
                    title=_DEMO_TITLES[role].value,
                    licence_number=f"DEMO-{role.value}",
                    specialties=[department],
                    active=True,
                )
            )
            db.flush()
        auth_service.create_user(
            db,
            None,
            username=role.value,
            display_name=display_name,
            password=DEMO_PASSWORD,
            roles=memberships,
            practitioner_id=practitioner,
            person_id=DEMO_RESIDENT_PERSON if role == Role.RESIDENT else None,
        )
    auth_service.create_client(
        db,
        None,
        client_id="county-his",
        secret=DEMO_PASSWORD,
        name="县人民医院 HIS",
        institution_id="county-hospital",
    )
    return len(DEMO_USERS)


_DEMO_NAMES = {
    Role.ADMIN: "周明远",
    Role.COORDINATOR: "陈晓燕",
    Role.DOCTOR: "李建国",
    Role.SPECIALIST: "王静怡",
    Role.READER: "赵海峰",
    Role.FAMILY_DOCTOR: "刘秀英",
    Role.RESIDENT: "张桂兰",
    Role.COMMISSION: "孙立华",
}
_DEMO_TITLES = {
    Role.DOCTOR: ProfessionalTitle.ATTENDING,
    Role.SPECIALIST: ProfessionalTitle.ASSOCIATE_CHIEF,
    Role.READER: ProfessionalTitle.ATTENDING,
    Role.FAMILY_DOCTOR: ProfessionalTitle.ATTENDING,
}
