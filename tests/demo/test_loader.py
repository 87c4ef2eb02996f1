"""The demo consortium: the shape the seed articles describe, deterministic by seed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.auth.models import Membership, User
from medalliance.demo.loader import Scale, load
from medalliance.patients.identity import parse_resident_id
from medalliance.patients.models import Person
from medalliance.registry.models import Consortium, Institution
from tests_support import fresh_sqlite_session


class TestShape:
    def test_levels_match_a_county_medical_community(self, db: Session) -> None:
        levels = dict(
            db.execute(select(Institution.level, func.count()).group_by(Institution.level)).all()
        )
        assert levels == {"tertiary": 1, "secondary": 3, "primary": 10, "village": 50}

    def test_county_hospital_leads_the_tight_county_community(self, db: Session) -> None:
        county = db.get(Consortium, "county")
        assert county is not None
        assert (county.type, county.kind, county.lead_institution_id) == (
            "tight",
            "county_medical_community",
            "county-hospital",
        )

    def test_every_village_clinic_belongs_to_a_township_centre(self, db: Session) -> None:
        villages = db.scalars(select(Institution).where(Institution.level == "village")).all()
        assert all(v.parent_id and v.parent_id.startswith("township-") for v in villages)

    def test_one_demo_user_per_role_named_after_it(self, db: Session) -> None:
        pairs = set(
            db.execute(
                select(User.username, Membership.role).join(
                    Membership, Membership.user_id == User.id
                )
            ).all()
        )
        for role in (
            "admin",
            "coordinator",
            "doctor",
            "specialist",
            "reader",
            "family_doctor",
            "resident",
            "commission",
        ):
            assert (role, role) in pairs

    def test_residents_have_valid_consistent_id_numbers(self, db: Session) -> None:
        residents = select(Person).where(Person.id <= "p00002000").order_by(Person.id).limit(500)
        people = db.scalars(residents).all()
        assert len(people) == 500
        for person in people:
            rid = parse_resident_id(person.id_number or "")
            assert (rid.sex, rid.birth_date) == (person.sex, person.birth_date)


class TestDeterminism:
    def test_same_seed_gives_the_same_consortium(self, tmp_path: Path) -> None:
        snapshots = []
        for run in ("a", "b"):
            with fresh_sqlite_session(tmp_path / run) as session:
                load(session, scale=Scale.SMALL, seed=7)
                snapshots.append(
                    session.execute(
                        select(Person.id, Person.name, Person.id_number).order_by(Person.id)
                    ).all()
                )
        assert snapshots[0] == snapshots[1]
        # Residents, plus the persons made from local records that matched nobody.
        assert len(snapshots[0]) >= 2000
