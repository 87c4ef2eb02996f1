"""ADT^A08 (update patient information): the member's corrections reach the MPI."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.audit.models import AuditEvent
from medalliance.patients.models import LocalRecord, Person
from medalliance.records.models import FhirResource
from records.hl7.conftest import Send
from records.hl7.hl7_samples import ID_NUMBER, adt, pid, resident_id, segment

MRN = "NM-0001"
ORIGINAL = {"name": "王^小红", "birth_date": "19900215", "sex": "F", "id_number": ""}


def _patient(**changes: str) -> str:
    return pid(mrn=MRN, **{**ORIGINAL, **changes})


def _record(db: Session) -> tuple[LocalRecord, Person]:
    db.expire_all()
    record = db.scalar(
        select(LocalRecord).where(
            LocalRecord.institution_id == "county-hospital", LocalRecord.mrn == MRN
        )
    )
    assert record is not None
    person = db.get(Person, record.person_id)
    assert person is not None
    return record, person


def _admit(send: Send) -> None:
    response = send(adt("A01", "UPD-0001", visit="V-UPD-1", patient=_patient()))
    assert segment(response.content, "MSA")[1] == "AA", response.text


class TestPatientUpdate:
    def test_an_a08_saves_the_new_name_phone_and_birth_date(self, send: Send, db: Session) -> None:
        _admit(send)
        update = _patient(name="王^晓红", birth_date="19900216", phone="13800000000")

        response = send(adt("A08", "UPD-0002", visit="V-UPD-1", patient=update))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        record, person = _record(db)
        for row in (record, person):
            assert (row.name, row.birth_date, row.phone) == (
                "王晓红",
                date(1990, 2, 16),
                "13800000000",
            )
        assert person.pinyin.replace(" ", "").startswith("wangxiao")

    def test_an_a08_adds_a_resident_id_number_the_person_lacked(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        number = resident_id("11010119900215002")

        response = send(adt("A08", "UPD-0003", visit="V-UPD-1", patient=_patient(id_number=number)))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        record, person = _record(db)
        assert record.id_number == person.id_number == number

    def test_an_id_number_of_another_person_is_refused_and_nothing_changes(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        other = send(adt("A01", "UPD-0004", visit="V-UPD-2"))  # 欧阳建华 holds ID_NUMBER
        assert segment(other.content, "MSA")[1] == "AA", other.text
        _, before = _record(db)
        person_id = before.id

        update = _patient(id_number=ID_NUMBER, name="欧阳^建华", sex="M", birth_date="19650312")
        response = send(adt("A08", "UPD-0005", visit="V-UPD-1", patient=update))

        msa, err = segment(response.content, "MSA"), segment(response.content, "ERR")
        assert msa[1] == "AE"
        assert err[3].startswith("205^")
        assert err[2] == "PID^1^3^1"
        record, person = _record(db)
        assert person.id == person_id
        assert (person.name, person.id_number, record.name) == ("王小红", None, "王小红")

    def test_a_birth_date_the_id_number_contradicts_is_refused(
        self, send: Send, db: Session
    ) -> None:
        number = resident_id("11010119900215002")
        response = send(adt("A01", "UPD-0006", patient=_patient(id_number=number)))
        assert segment(response.content, "MSA")[1] == "AA", response.text

        update = _patient(birth_date="19910101")  # the ID number is not repeated
        response = send(adt("A08", "UPD-0007", patient=update))

        assert segment(response.content, "MSA")[1] == "AE"
        assert segment(response.content, "ERR")[2] == "PID^1^7^1"
        _, person = _record(db)
        assert person.birth_date == date(1990, 2, 15)

    def test_an_a08_older_than_the_last_one_applied_changes_nothing(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)  # recorded 09:28
        newest = _patient(phone="13800000002")
        response = send(adt("A08", "UPD-0008", patient=newest, recorded="20261105101500"))
        assert segment(response.content, "MSA")[1] == "AA", response.text

        # Sent at 10:00, resent by the member's engine after the 10:15 update went through.
        late = _patient(phone="13800000001", name="王^晓虹")
        response = send(adt("A08", "UPD-0009", patient=late, recorded="20261105100000"))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        record, person = _record(db)
        for row in (record, person):
            assert (row.phone, row.name) == ("13800000002", "王小红")
        kept_out = db.scalars(
            select(AuditEvent.detail)
            .where(AuditEvent.action == "patient.update", AuditEvent.patient_id == person.id)
            .order_by(AuditEvent.id.desc())
        ).first()
        assert kept_out is not None
        assert kept_out["changed"] == []
        # 10:15 in the consortium's time zone (Asia/Shanghai), kept in UTC.
        assert kept_out["older_than_record"]["record"] == "2026-11-05T02:15:00+00:00"

    def test_an_a08_recorded_later_is_applied_even_when_an_older_one_follows_it(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        _send_phones(
            send,
            ("UPD-0010", "13800000003", "20261105110000"),
            ("UPD-0011", "13800000004", "20261105120000"),
            ("UPD-0012", "13800000005", "20261105113000"),
        )
        record, person = _record(db)
        assert record.phone == person.phone == "13800000004"

    def test_a_malformed_event_time_is_an_error_naming_evn_2(self, send: Send, db: Session) -> None:
        _admit(send)
        update = _patient(phone="13800000006")
        response = send(adt("A08", "UPD-0013", patient=update, recorded="2026-11-05 10:00"))

        assert segment(response.content, "MSA")[1] == "AE"
        assert segment(response.content, "ERR")[2].startswith("EVN^1^2")
        record, _ = _record(db)
        assert record.phone != "13800000006"

    def test_a_late_a08_leaves_the_visit_as_the_newer_one_left_it(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        newer = send(adt("A08", "UPD-0014", patient=_patient(), recorded="20261105101500"))
        assert segment(newer.content, "MSA")[1] == "AA", newer.text
        before = _stored(db)

        pneumonia = "DG1|2||J18.9^肺炎^I10||20261105093000|A"
        late = adt(
            "A08", "UPD-0015", patient=_patient(), recorded="20261105100000", extra=(pneumonia,)
        )
        response = send(late)

        assert segment(response.content, "MSA")[1] == "AA", response.text
        assert _stored(db) == before  # no new version of the visit, no new diagnosis

    def test_fractions_of_a_second_order_two_updates_in_one_second(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        _send_phones(
            send,
            ("UPD-0018", "13800000009", "20261105130000.75"),
            ("UPD-0019", "13800000010", "20261105130000.25"),  # earlier, arrives later
        )
        record, _ = _record(db)
        assert record.phone == "13800000009"

    def test_an_event_time_of_a_day_alone_does_not_order_updates(
        self, send: Send, db: Session
    ) -> None:
        _admit(send)
        _send_phones(
            send,
            ("UPD-0016", "13800000007", "20261105120000"),
            ("UPD-0017", "13800000008", "20261106"),  # no time: applied as it arrives
        )
        record, _ = _record(db)
        assert record.phone == "13800000008"


def _send_phones(send: Send, *updates: tuple[str, str, str]) -> None:
    """A08s (control ID, new phone, EVN-2) in this order, each acknowledged AA."""
    for control, phone, recorded in updates:
        response = send(adt("A08", control, patient=_patient(phone=phone), recorded=recorded))
        assert segment(response.content, "MSA")[1] == "AA", response.text


def _stored(db: Session) -> list[tuple[str, str, int]]:
    db.expire_all()
    rows = db.execute(
        select(FhirResource.resource_type, FhirResource.id, FhirResource.version).order_by(
            FhirResource.pid
        )
    ).all()
    return [(r.resource_type, r.id, r.version) for r in rows]
