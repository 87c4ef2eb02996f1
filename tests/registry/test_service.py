"""Registry rules: who may change what, field validation, audit trail, deactivation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from medalliance.errors import Conflict, Forbidden, ValidationFailed
from medalliance.registry import service, staff
from medalliance.registry.models import Department, PractitionerRole
from medalliance.registry.schemas import (
    ConsortiumCreate,
    DepartmentCreate,
    InstitutionCreate,
    InstitutionUpdate,
    PractitionerCreate,
    RoleCreate,
)
from registry.factories import (
    CITY_ADMIN,
    CONSORTIUM_ADMIN,
    DOCTOR,
    TOWNSHIP_ADMIN,
    audit_rows,
    institution_payload,
    practitioner_payload,
)


def _rename(name: str) -> InstitutionUpdate:
    return InstitutionUpdate(name=name)


class TestEditScope:
    def test_institution_admin_edits_own_institution(self, db: Session) -> None:
        row = service.update_institution(db, TOWNSHIP_ADMIN, "township-01", _rename("城关卫生院"))
        assert row.name == "城关卫生院"

    def test_institution_admin_cannot_edit_another_member(self, db: Session) -> None:
        with pytest.raises(Forbidden):
            service.update_institution(db, TOWNSHIP_ADMIN, "township-02", _rename("x"))

    def test_consortium_admin_edits_every_member_of_the_consortium(self, db: Session) -> None:
        for member in ("township-02", "township-03-village-2", "county-tcm"):
            service.update_institution(db, CONSORTIUM_ADMIN, member, InstitutionUpdate(beds=7))
            assert service.get_institution(db, member).beds == 7

    def test_consortium_admin_cannot_edit_another_consortiums_member(self, db: Session) -> None:
        with pytest.raises(Forbidden):
            service.update_institution(db, CONSORTIUM_ADMIN, "city-hospital", _rename("x"))

    def test_non_admin_roles_edit_nothing(self, db: Session) -> None:
        with pytest.raises(Forbidden):
            service.update_institution(db, DOCTOR, "township-01", _rename("x"))

    def test_only_the_lead_admin_adds_members(self, db: Session) -> None:
        data = InstitutionCreate.model_validate(institution_payload())
        with pytest.raises(Forbidden):
            service.create_institution(db, TOWNSHIP_ADMIN, data)
        with pytest.raises(Forbidden):
            service.create_institution(db, CITY_ADMIN, data)
        assert service.create_institution(db, CONSORTIUM_ADMIN, data).consortium_id == "county"

    def test_institution_admin_cannot_move_own_institution_into_another_consortium(
        self, db: Session
    ) -> None:
        with pytest.raises(Forbidden):
            service.update_institution(
                db, TOWNSHIP_ADMIN, "township-01", InstitutionUpdate(consortium_id="city")
            )

    def test_institution_admin_manages_staff_only_at_own_institution(self, db: Session) -> None:
        data = PractitionerCreate.model_validate(
            practitioner_payload(institution_id="township-02", department_id=None)
        )
        with pytest.raises(Forbidden):
            staff.create_practitioner(db, TOWNSHIP_ADMIN, data)

    def test_consortium_lead_admin_changes_the_consortium(self, db: Session) -> None:
        from medalliance.registry.schemas import ConsortiumUpdate

        with pytest.raises(Forbidden):
            service.update_consortium(db, TOWNSHIP_ADMIN, "county", ConsortiumUpdate(name="x"))
        row = service.update_consortium(db, CONSORTIUM_ADMIN, "county", ConsortiumUpdate(name="y"))
        assert row.name == "y"


class TestValidation:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("division_code", "51079"),
            ("division_code", "5107990001"),
            ("division_code", "99079900000a"),
            ("division_code", "990799"),  # no such province
            ("level", "quaternary"),
            ("kind", "dental"),
            ("latitude", 91),
            ("longitude", -181),
        ],
    )
    def test_bad_field_is_refused_naming_it(self, field: str, value: object) -> None:
        with pytest.raises(ValidationError) as caught:
            InstitutionCreate.model_validate(institution_payload(**{field: value}))
        assert caught.value.errors()[0]["loc"][0] == field

    @pytest.mark.parametrize("code", ["510799", "510799101000"])
    def test_six_and_twelve_digit_division_codes_are_accepted(self, code: str) -> None:
        assert InstitutionCreate.model_validate(institution_payload(division_code=code))

    def test_duplicate_institution_code_conflicts(self, db: Session) -> None:
        data = InstitutionCreate.model_validate(institution_payload(code="MA0005"))
        with pytest.raises(Conflict) as caught:
            service.create_institution(db, CONSORTIUM_ADMIN, data)
        assert caught.value.field == "code"

    def test_duplicate_licence_number_conflicts_and_writes_nothing(self, db: Session) -> None:
        data = PractitionerCreate.model_validate(practitioner_payload(licence_number="DEMO-doctor"))
        before = db.query(PractitionerRole).count()
        with pytest.raises(Conflict) as caught:
            staff.create_practitioner(db, TOWNSHIP_ADMIN, data)
        assert caught.value.field == "licence_number"
        assert db.query(PractitionerRole).count() == before

    def test_duplicate_department_code_at_same_institution_conflicts(self, db: Session) -> None:
        data = DepartmentCreate(institution_id="township-01", code="02", name="全科")
        with pytest.raises(Conflict) as caught:
            service.create_department(db, TOWNSHIP_ADMIN, data)
        assert caught.value.field == "code"

    def test_same_department_code_at_another_institution_is_fine(self, db: Session) -> None:
        data = DepartmentCreate(institution_id="township-01", code="03.04", name="心血管内科")
        assert service.create_department(db, TOWNSHIP_ADMIN, data).code == "03.04"

    def test_institution_cannot_become_its_own_ancestor(self, db: Session) -> None:
        with pytest.raises(ValidationFailed) as caught:
            service.update_institution(
                db, CONSORTIUM_ADMIN, "county-hospital", InstitutionUpdate(parent_id="township-01")
            )
        assert caught.value.field == "parent_id"

    def test_removing_only_one_coordinate_is_refused(self, db: Session) -> None:
        with pytest.raises(ValidationFailed) as caught:
            service.update_institution(
                db, TOWNSHIP_ADMIN, "township-01", InstitutionUpdate(latitude=None)
            )
        assert caught.value.field == "latitude"

    def test_department_of_another_institution_is_refused_for_a_role(self, db: Session) -> None:
        data = RoleCreate(
            practitioner_id="pr-00001",
            institution_id="township-01",
            department_id="township-02:02",
        )
        with pytest.raises(ValidationFailed) as caught:
            staff.create_role(db, TOWNSHIP_ADMIN, data)
        assert caught.value.field == "department_id"


class TestAudit:
    def test_update_records_before_and_after_of_changed_fields_only(self, db: Session) -> None:
        service.update_institution(
            db, TOWNSHIP_ADMIN, "township-01", InstitutionUpdate(beds=99, kind="general")
        )
        (row,) = audit_rows(db, "registry.institution.update", "township-01")
        assert row.detail["after"] == {"beds": 99}
        assert row.detail["before"]["beds"] != 99
        assert row.username == TOWNSHIP_ADMIN.username

    def test_create_records_the_new_values(self, db: Session) -> None:
        data = InstitutionCreate.model_validate(institution_payload())
        row = service.create_institution(db, CONSORTIUM_ADMIN, data)
        (event,) = audit_rows(db, "registry.institution.create", row.id)
        assert event.detail["after"]["code"] == "MA9001"
        assert event.detail["before"] == {}

    def test_new_practice_site_is_audited(self, db: Session) -> None:
        role = staff.create_role(
            db, TOWNSHIP_ADMIN, RoleCreate(practitioner_id="pr-00001", institution_id="township-01")
        )
        (event,) = audit_rows(db, "registry.practitioner_role.create", role.id)
        assert event.detail["after"]["institution_id"] == "township-01"

    def test_consortium_creation_is_audited(self, db: Session) -> None:
        data = ConsortiumCreate(
            name="心血管专科联盟",
            type="loose",
            kind="specialist_alliance",
            lead_institution_id="county-hospital",
        )
        row = service.create_consortium(db, CONSORTIUM_ADMIN, data)
        assert audit_rows(db, "registry.consortium.create", row.id)


class TestDeactivation:
    def test_deactivated_institution_keeps_its_rows_visible_as_inactive(self, db: Session) -> None:
        departments = db.query(Department).filter_by(institution_id="township-01").count()
        service.set_institution_active(db, TOWNSHIP_ADMIN, "township-01", False)
        detail = service.institution_detail(db, TOWNSHIP_ADMIN, "township-01")
        assert not detail.institution.active
        assert len(detail.departments) == departments > 0
        assert all(not d.active for d in detail.departments)
        assert detail.staff
        assert all(not s.role.active for s in detail.staff)

    def test_deactivation_audit_names_the_cascaded_rows(self, db: Session) -> None:
        service.set_institution_active(db, TOWNSHIP_ADMIN, "township-01", False)
        (event,) = audit_rows(db, "registry.institution.deactivate", "township-01")
        assert event.detail["before"] == {"active": True}
        assert "township-01:02" in event.detail["cascaded"]["departments"]

    def test_no_department_can_be_added_to_an_inactive_institution(self, db: Session) -> None:
        service.set_institution_active(db, TOWNSHIP_ADMIN, "township-01", False)
        data = DepartmentCreate(institution_id="township-01", code="07", name="儿科")
        with pytest.raises(Conflict):
            service.create_department(db, TOWNSHIP_ADMIN, data)

    def test_practitioner_at_a_foreign_site_is_not_deactivated_by_one_site(
        self, db: Session
    ) -> None:
        staff.create_role(
            db,
            CONSORTIUM_ADMIN,
            RoleCreate(practitioner_id="pr-00001", institution_id="township-01"),
        )
        with pytest.raises(Forbidden):
            staff.set_practitioner_active(db, TOWNSHIP_ADMIN, "pr-00001", False)

    def test_multi_site_practice_shows_the_other_sites(self, db: Session) -> None:
        practitioner_id = staff.get_role(db, "prr-00001").practitioner_id
        staff.create_role(
            db,
            CONSORTIUM_ADMIN,
            RoleCreate(practitioner_id=practitioner_id, institution_id="township-01"),
        )
        detail = service.institution_detail(db, TOWNSHIP_ADMIN, "township-01")
        entry = next(s for s in detail.staff if s.practitioner.id == practitioner_id)
        assert [i.id for i in entry.other_sites] == [staff.get_role(db, "prr-00001").institution_id]
