"""Care-level rules: the level each catalogue category belongs to, must-refer conditions,
wrong-level flags, ranked candidates and the emergency pathways by distance."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from medalliance.care_levels import service
from medalliance.care_levels.enums import CareLevel, LevelFit, Pathway
from medalliance.care_levels.schemas import DiseaseEntry, RecommendRequest
from medalliance.errors import ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.registry.models import Institution
from referrals.factories import actor, open_slots, village_doctor


def _recommend(db: Session, codes: list[str], where: str = "township-01"):  # type: ignore[no-untyped-def]
    return service.recommend(
        db,
        actor(db, "doctor"),
        RecommendRequest(diagnoses=codes, institution_id=where),
        now=utcnow(),
    )


class TestCatalogue:
    @pytest.mark.parametrize(
        ("code", "level"),
        [
            ("I10", "primary"),
            ("E11", "primary"),
            ("J06", "primary"),
            ("K29", "primary"),
            ("S33.5", "primary"),
            ("I63", "secondary"),
            ("I21", "secondary"),
            ("C34", "tertiary"),
        ],
    )
    def test_shipped_catalogue_places_each_disease_at_its_level(
        self, code: str, level: str
    ) -> None:
        entry = service.lookup(service.shipped_catalogue(), code)
        assert entry is not None
        assert entry.level == level

    def test_most_specific_entry_wins(self) -> None:
        entry = service.lookup(service.shipped_catalogue(), "E11.1")
        assert entry is not None
        assert entry.must_refer
        assert entry.level == "secondary"

    def test_reasons_and_criteria_are_shipped(self) -> None:
        catalogue = service.shipped_catalogue()
        assert {
            "acute_critical",
            "beyond_scope",
            "needs_equipment",
            "diagnosis_unclear",
            "patient_request",
        } <= {r.code for r in catalogue.up_reasons}
        assert {"stable", "rehabilitation", "chronic_management", "patient_request"} <= {
            r.code for r in catalogue.down_criteria
        }

    def test_admin_edit_makes_a_new_audited_version(self, db: Session) -> None:
        admin = actor(db, "admin")
        before = service.current(db).version
        entry = DiseaseEntry(
            code="J45",
            name_zh="哮喘",
            name_en="Asthma",
            level=CareLevel.PRIMARY,
            departments=["02"],
        )
        saved = service.upsert_disease(db, admin, entry, note="add asthma", now=utcnow())
        assert saved.version == before + 1
        assert service.lookup(service.current(db), "J45.9") is not None
        service.remove_disease(db, admin, "J45", note="undo", now=utcnow())
        assert service.lookup(service.current(db), "J45") is None

    def test_bad_catalogue_names_the_field(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            service.parse_catalogue(
                {"diseases": [{"code": "XX"}], "up_reasons": [], "down_criteria": []}
            )
        assert caught.value.field
        assert caught.value.field.startswith("diseases.0")


class TestRecommendation:
    def test_basic_disease_at_the_township_is_the_right_level(self, db: Session) -> None:
        rec = _recommend(db, ["I10"])
        assert (rec.level, rec.fit, rec.wrong_level) == (CareLevel.PRIMARY, LevelFit.OK, False)

    def test_basic_disease_at_the_county_hospital_could_go_down(self, db: Session) -> None:
        rec = _recommend(db, ["I10"], where="county-hospital")
        assert rec.fit == LevelFit.TOO_HIGH
        assert rec.wrong_level
        assert rec.candidates[0].level == "primary"

    def test_must_refer_condition_at_the_township_is_flagged(self, db: Session) -> None:
        rec = _recommend(db, ["I10", "I63.9"])
        assert rec.level == CareLevel.SECONDARY
        assert rec.fit == LevelFit.TOO_LOW
        assert rec.must_refer

    def test_severe_disease_is_for_the_tertiary_hospital(self, db: Session) -> None:
        rec = _recommend(db, ["C34.1"], where="county-hospital")
        assert rec.level == CareLevel.TERTIARY
        assert rec.fit == LevelFit.TOO_LOW
        assert [c.institution_id for c in rec.candidates] == ["city-hospital"]

    def test_unknown_code_is_assessed_at_county_level(self, db: Session) -> None:
        rec = _recommend(db, ["Z99.9"])
        assert rec.level == CareLevel.SECONDARY
        assert rec.rules[0].matched is None

    def test_village_clinic_counts_as_grassroots_for_basic_diseases(self, db: Session) -> None:
        rec = service.recommend(
            db, village_doctor(db), RecommendRequest(diagnoses=["E11"]), now=utcnow()
        )
        assert rec.fit == LevelFit.OK

    def test_candidates_rank_right_level_then_capability_then_distance_then_capacity(
        self, db: Session
    ) -> None:
        rec = _recommend(db, ["I25"])
        assert rec.candidates[0].institution_id == "county-hospital"
        assert rec.candidates[0].department_id == "county-hospital:03.04"
        assert all(c.institution_id != "county-tcm" for c in rec.candidates)  # no cardiology

    def test_free_capacity_is_reported(self, db: Session) -> None:
        open_slots(db, count=10)
        rec = _recommend(db, ["I25"])
        assert rec.candidates[0].free_slots == 10

    def test_bad_code_names_the_field(self, db: Session) -> None:
        with pytest.raises(ValidationFailed) as caught:
            _recommend(db, ["I10", "BP high"])
        assert caught.value.field == "diagnoses[1]"


class TestEmergencyPathways:
    @pytest.mark.parametrize(
        ("codes", "pathway"),
        [(["I21.0"], Pathway.CHEST_PAIN), (["I63.9"], Pathway.STROKE), (["T07"], Pathway.TRAUMA)],
    )
    def test_pathway_routes_to_the_nearest_designated_centre(
        self, db: Session, codes: list[str], pathway: Pathway
    ) -> None:
        rec = _recommend(db, codes)
        assert [r.pathway for r in rec.emergency] == [pathway]
        route = rec.emergency[0]
        assert route.institution_id == "county-hospital"  # nearer than the city hospital
        assert route.department_id == "county-hospital:20"

    def test_nearest_centre_changes_when_the_nearer_one_loses_its_designation(
        self, db: Session
    ) -> None:
        county = db.get(Institution, "county-hospital")
        assert county is not None
        county.emergency_centres = ["chest_pain", "trauma"]
        db.flush()
        route = service.emergency_route(db, actor(db, "doctor"), Pathway.STROKE, "township-01")
        assert route.institution_id == "city-hospital"
        assert route.distance_km > 20

    def test_haversine_distance(self) -> None:
        # Beijing–Shanghai is about 1,067 km great-circle.
        assert service.haversine_km(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(
            1067, abs=5
        )
