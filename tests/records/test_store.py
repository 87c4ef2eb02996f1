"""The store through the service: create, read, versions, deletes, validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.access.enums import ConsentScope, ConsentStatus
from medalliance.audit.models import AuditEvent
from medalliance.errors import DomainError, Forbidden, PreconditionFailed
from medalliance.records import service
from records.factories import (
    COUNTY_HIS,
    TOWNSHIP_DOCTOR,
    TOWNSHIP_HIS,
    admitted,
    ensure_person,
    observation,
    resident,
)

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
P = "p00000001"


class TestCreateAndRead:
    def test_created_observation_reads_back_with_server_meta(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, observation(P), now=NOW)
        read = service.read(db, COUNTY_HIS, "Observation", stored.id, now=NOW)
        assert read.version == 1
        assert read.patient_id == P
        assert read.content["meta"]["versionId"] == "1"
        assert read.content["valueQuantity"]["value"] == 72

    def test_values_keep_their_text_whatever_their_size(self, db: Session) -> None:
        # A decimal beyond 64 bits and text in Chinese are stored and read back unchanged.
        admitted(db, P, NOW)
        resource = observation(P)
        resource["valueQuantity"]["value"] = 123456789012345678901234567890
        resource["note"] = [{"text": "血压偏高，建议复诊"}]
        stored = service.create(db, COUNTY_HIS, resource, now=NOW)
        read = service.read(db, COUNTY_HIS, "Observation", stored.id, now=NOW)
        assert read.content["valueQuantity"]["value"] == 123456789012345678901234567890
        assert read.content["note"][0]["text"] == "血压偏高，建议复诊"
        assert "血压".encode() in read.raw

    def test_update_with_stale_if_match_is_refused(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, observation(P), now=NOW)
        changed = {**stored.content, "status": "amended"}
        service.update(db, COUNTY_HIS, "Observation", stored.id, changed, now=NOW, if_match='W/"1"')
        with pytest.raises(PreconditionFailed):
            service.update(
                db, COUNTY_HIS, "Observation", stored.id, changed, now=NOW, if_match='W/"1"'
            )

    def test_deleted_resource_answers_gone_and_keeps_history(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, observation(P), now=NOW)
        service.delete(db, COUNTY_HIS, "Observation", stored.id, now=NOW)
        with pytest.raises(service.Gone):
            service.read(db, COUNTY_HIS, "Observation", stored.id, now=NOW)
        assert service.vread(db, COUNTY_HIS, "Observation", stored.id, 1, now=NOW).version == 1

    def test_invalid_resource_names_the_element(self, db: Session) -> None:
        admitted(db, P, NOW)
        bad = observation(P)
        bad["valueQuantity"]["value"] = "lots"
        with pytest.raises(DomainError) as caught:
            service.create(db, COUNTY_HIS, bad, now=NOW)
        assert caught.value.field == "Observation.valueQuantity.value"

    def test_unknown_patient_is_refused(self, db: Session) -> None:
        with pytest.raises(DomainError) as caught:
            service.create(db, COUNTY_HIS, observation("nobody-here"), now=NOW)
        assert caught.value.status == 422
        assert caught.value.field == "Observation.subject"


class TestAccess:
    def test_doctor_without_basis_cannot_read_and_refusal_is_refused(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, observation(P), now=NOW)
        with pytest.raises(Forbidden):
            service.read(db, TOWNSHIP_DOCTOR, "Observation", stored.id, now=NOW)

    def test_reads_are_audited_with_their_basis(self, db: Session) -> None:
        admitted(db, P, NOW)
        stored = service.create(db, COUNTY_HIS, observation(P), now=NOW)
        service.read(db, COUNTY_HIS, "Observation", stored.id, now=NOW)
        row = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "read", AuditEvent.resource_id == stored.id
            )
        ).one()
        assert (row.patient_id, row.basis) == (P, "care_relationship")

    def test_a_search_naming_a_patient_is_audited_even_when_it_finds_nothing(
        self, db: Session
    ) -> None:
        admitted(db, P, NOW)
        found = service.search(db, COUNTY_HIS, "Observation", [("patient", P)], now=NOW)
        assert found.matches == []
        db.flush()
        reads = db.scalars(
            select(AuditEvent.basis).where(
                AuditEvent.action == "read",
                AuditEvent.resource_type == "Observation",
                AuditEvent.patient_id == P,
            )
        ).all()
        assert reads == ["care_relationship"]

    def test_a_search_across_patients_audits_each_with_its_own_basis(self, db: Session) -> None:
        treated, consenting = P, ensure_person(db, "p00000004")
        admitted(db, treated, NOW, actor=TOWNSHIP_HIS)
        admitted(db, consenting, NOW)  # the county treats this one...
        service.create(db, TOWNSHIP_HIS, observation(treated), now=NOW)
        service.create(db, COUNTY_HIS, observation(consenting), now=NOW)
        access.record_consent(  # ...who consents to consortium-wide sharing
            db,
            resident(consenting),
            patient_id=consenting,
            status=ConsentStatus.GIVEN,
            scope=ConsentScope.CONSORTIUM,
        )
        found = service.search(db, TOWNSHIP_HIS, "Observation", [("code", "8867-4")], now=NOW)
        assert {m.patient_id for m in found.matches} == {treated, consenting}
        db.flush()
        rows = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "read",
                AuditEvent.resource_type == "Observation",
                AuditEvent.resource_id.is_(None),
                AuditEvent.client_id == TOWNSHIP_HIS.client_id,
            )
        ).all()
        assert {(r.patient_id, r.basis) for r in rows} == {
            (treated, "care_relationship"),
            (consenting, "consent"),
        }
