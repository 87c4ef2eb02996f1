"""HL7 v2 inbound over HTTP: ADT and ORU from the county hospital become one shared record."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.patients.models import Person
from medalliance.records.hl7.models import ReceivedMessage
from medalliance.records.models import FhirResource
from records.hl7.conftest import Send
from records.hl7.hl7_samples import (
    ID_NUMBER,
    LIPID_RESULTS,
    adt,
    assert_clean,
    oru,
    pid,
    resident_id,
    segment,
)


def _search(client: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = client.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def _counts(db: Session) -> tuple[int, int, int]:
    resources = db.scalar(select(func.count()).select_from(FhirResource))
    received = db.scalar(select(func.count()).select_from(ReceivedMessage))
    persons = db.scalar(select(func.count()).select_from(Person))
    return int(resources or 0), int(received or 0), int(persons or 0)


def _person(db: Session) -> str:
    person = db.scalar(select(Person).where(Person.id_number == ID_NUMBER))
    assert person is not None
    return person.id


class TestResultsAreStoredOnce:
    def test_the_same_oru_sent_twice_makes_one_observation_set(
        self, send: Send, db: Session, client: TestClient, his_headers: dict[str, str]
    ) -> None:
        first = send(oru("LIS-0001"))
        assert first.status_code == 200, first.text
        assert segment(first.content, "MSA")[1:3] == ["AA", "LIS-0001"]
        before = _counts(db)

        again = send(oru("LIS-0001"))

        assert again.status_code == 200
        assert again.content == first.content  # the original ACK, byte for byte
        assert _counts(db) == before
        person = _person(db)
        observations = _search(client, his_headers, f"Observation?subject=Patient/{person}")
        assert len(observations) == len(LIPID_RESULTS)
        reports = _search(client, his_headers, f"DiagnosticReport?subject=Patient/{person}")
        assert len(reports) == 1
        assert len(reports[0]["result"]) == len(LIPID_RESULTS)

    def test_a_final_result_after_the_preliminary_updates_the_same_resources(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        preliminary = tuple(r.replace("|||F", "|||P", 1) for r in LIPID_RESULTS)
        assert send(oru("LIS-0002", results=preliminary, status="P")).status_code == 200
        assert send(oru("LIS-0003")).status_code == 200
        person = _person(db)
        observations = _search(client, his_headers, f"Observation?subject=Patient/{person}")
        assert len(observations) == len(LIPID_RESULTS)
        assert {o["status"] for o in observations} == {"final"}
        assert {o["meta"]["versionId"] for o in observations} == {"2"}

    def test_a_reused_control_id_with_different_content_is_rejected(self, send: Send) -> None:
        assert send(oru("LIS-0004")).status_code == 200
        other = send(oru("LIS-0004", order="LAB-20261105-0099"))
        assert other.status_code == 400
        assert segment(other.content, "MSA")[1] == "AR"
        assert segment(other.content, "ERR")[3].startswith("205^")


class TestObservationMapping:
    def test_numeric_results_carry_loinc_ucum_range_and_flag(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        assert send(oru("LIS-0010")).status_code == 200
        person = _person(db)
        found = _search(client, his_headers, "Observation?code=http://loinc.org|2093-3")
        cholesterol = next(o for o in found if o["subject"]["reference"] == f"Patient/{person}")
        assert cholesterol["valueQuantity"] == {
            "value": 6.8,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        }
        assert cholesterol["referenceRange"][0]["low"]["value"] == 3.1
        assert cholesterol["referenceRange"][0]["high"]["value"] == 5.7
        assert cholesterol["interpretation"][0]["coding"][0]["code"] == "H"
        assert cholesterol["status"] == "final"
        assert cholesterol["effectiveDateTime"] == "2026-11-05T08:00:00+08:00"
        assert cholesterol["performer"] == [{"reference": "Organization/county-hospital"}]

    def test_text_results_are_strings_and_coded_results_are_concepts(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        coded = "OBX|5|CWE|5778-6^尿液颜色^LN||YEL^黄色^L||||||F"
        assert send(oru("LIS-0011", results=(*LIPID_RESULTS, coded))).status_code == 200
        person = _person(db)
        found = _search(client, his_headers, f"Observation?subject=Patient/{person}")
        by_code = {o["code"]["coding"][0]["code"]: o for o in found}
        assert by_code["8251-1"]["valueString"] == "空腹采血"
        color = by_code["5778-6"]["valueCodeableConcept"]
        assert color["coding"][0]["code"] == "YEL"
        assert color["text"] == "黄色"


class TestVisits:
    def test_admission_then_discharge_updates_the_same_encounter(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        admitted = send(adt("A01", "HIS-1001"))
        assert segment(admitted.content, "MSA")[1] == "AA", admitted.text
        person = _person(db)
        [encounter] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert encounter["status"] == "in-progress"
        assert encounter["class"]["code"] == "IMP"
        assert encounter["serviceProvider"] == {"reference": "Organization/county-hospital"}

        discharged = send(adt("A03", "HIS-1002", discharge="20261112100000"))

        assert segment(discharged.content, "MSA")[1] == "AA", discharged.text
        [after] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert after["id"] == encounter["id"]
        assert after["status"] == "finished"
        assert after["period"] == {
            "start": "2026-11-05T09:28:00+08:00",
            "end": "2026-11-12T10:00:00+08:00",
        }

    def test_an_update_keeps_the_status_and_records_the_diagnosis(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        assert send(adt("A04", "HIS-1101")).status_code == 200
        assert send(adt("A08", "HIS-1102")).status_code == 200
        person = _person(db)
        [encounter] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert encounter["status"] == "arrived"
        [condition] = _search(client, his_headers, f"Condition?subject=Patient/{person}")
        assert condition["code"]["coding"][0] == {
            "system": "http://hl7.org/fhir/sid/icd-10",
            "code": "I63.9",
            "display": "脑梗死",
        }
        assert condition["encounter"] == {"reference": f"Encounter/{encounter['id']}"}

    def test_an_a08_of_the_same_facility_updates_the_encounter_it_wrote(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        """Only the institution that wrote a resource may change it: the facility's own
        system, sending as that institution, still does."""
        assert segment(send(adt("A04", "HIS-1201")).content, "MSA")[1] == "AA"
        updated = send(adt("A08", "HIS-1202"))
        assert segment(updated.content, "MSA")[1] == "AA", updated.text
        [encounter] = _search(client, his_headers, f"Encounter?subject=Patient/{_person(db)}")
        assert encounter["meta"]["versionId"] == "2"


class TestRefusals:
    def test_a_malformed_message_gets_ar_and_writes_nothing(self, send: Send, db: Session) -> None:
        before = _counts(db)
        response = send(b"PID|1||X^^^county-hospital^MR||\xe6\xac\xa7\xe9\x98\xb3^\r")
        assert response.status_code == 400
        assert segment(response.content, "MSA")[1] == "AR"
        err = segment(response.content, "ERR")
        assert err[3].startswith("100^")
        assert "MSH" in err[8]
        assert _counts(db) == before

    def test_bytes_not_in_the_declared_charset_get_ar_echoing_the_control_id(
        self, send: Send, db: Session
    ) -> None:
        before = _counts(db)
        response = send(oru("LIS-0015").decode().encode("gb18030"))  # MSH-18 says UTF-8
        assert response.status_code == 400
        msh, msa = segment(response.content, "MSH"), segment(response.content, "MSA")
        assert msa[1:3] == ["AR", "LIS-0015"]
        assert msh[4:6] == ["LIS", "county-hospital"]  # the sender is the receiver
        assert segment(response.content, "ERR")[2] == "MSH^1^18^1"
        assert _counts(db) == before

    def test_a_nul_character_gets_ar_naming_its_field_and_writes_nothing(
        self, send: Send, db: Session
    ) -> None:
        before = _counts(db)
        response = send(oru("LIS-0017").replace(b"PID|", b"PID|\x00", 1))
        assert response.status_code == 400
        assert_clean(response.content)
        msa = segment(response.content, "MSA")
        assert msa[1:] == ["AR", "LIS-0017", "PID-1 holds a control character (U+0000)"]
        assert segment(response.content, "ERR")[2:4] == ["PID^1^1^1", "102^Data type error^HL70357"]
        assert _counts(db) == before

    def test_a_control_id_with_a_nul_is_not_echoed(self, send: Send, db: Session) -> None:
        """An altered control ID would name no message the sender sent: MSA-2 stays empty."""
        before = _counts(db)
        response = send(oru("LIS-0016").replace(b"|LIS-0016|", b"|LIS-0016\x00|", 1))
        assert response.status_code == 400
        assert_clean(response.content)
        msh, msa = segment(response.content, "MSH"), segment(response.content, "MSA")
        assert msa[1:] == ["AR", "", "MSH-10 holds a control character (U+0000)"]
        assert msh[4:6] == ["LIS", "county-hospital"]  # the readable fields still answer
        assert segment(response.content, "ERR")[2] == "MSH^1^10^1"
        assert _counts(db) == before

    def test_other_control_characters_are_refused_where_they_are(self, send: Send) -> None:
        bell = LIPID_RESULTS[1].replace("|1.2|", "|1.2\x07|")
        response = send(oru("LIS-0018", results=(LIPID_RESULTS[0], bell)))
        assert response.status_code == 400
        msa = segment(response.content, "MSA")
        assert msa[1:] == ["AR", "LIS-0018", "OBX-5 holds a control character (U+0007)"]
        assert segment(response.content, "ERR")[2] == "OBX^2^5^1"
        sender_app = oru("LIS-0019").replace(b"|LIS|", b"|LIS\x1b|", 1)
        response = send(sender_app)
        assert_clean(response.content)
        assert segment(response.content, "MSH")[4:6] == ["", "county-hospital"]  # MSH-5, 6
        assert segment(response.content, "ERR")[2] == "MSH^1^3^1"

    def test_an_escaped_control_character_is_refused_too(self, send: Send) -> None:
        response = send(oru("LIS-0024").replace(b"PID|1||", b"PID|1||\\X00\\", 1))
        assert response.status_code == 400
        assert_clean(response.content)
        assert segment(response.content, "MSA")[1:3] == ["AR", "LIS-0024"]
        assert segment(response.content, "ERR")[2] == "PID^1^3^1"
        response = send(oru("LIS-0025").replace(b"|LIS-0025|", b"|LIS-0025\\X00\\|", 1))
        assert_clean(response.content)
        assert segment(response.content, "MSA")[1:3] == ["AR", ""]

    def test_undecodable_bytes_are_named_and_not_echoed(self, send: Send) -> None:
        response = send(oru("LIS-0026").replace(b"|LIS-0026|", b"|LIS-0026\xff|", 1))
        assert response.status_code == 400
        assert_clean(response.content)
        msa = segment(response.content, "MSA")
        assert msa[1:3] == ["AR", ""]
        assert msa[3].startswith("the bytes of MSH-10 are not valid utf-8")
        assert segment(response.content, "ERR")[2] == "MSH^1^18^1"  # declare the charset

    def test_a_bad_value_gets_ae_naming_the_field_and_writes_nothing(
        self, send: Send, db: Session
    ) -> None:
        before = _counts(db)
        bad = "OBX|1|NM|2093-3^总胆固醇^LN||六点八|mmol/L^^UCUM|3.1-5.7|H|||F"
        response = send(oru("LIS-0020", results=(*LIPID_RESULTS[1:], bad)))
        assert response.status_code == 422
        msa, err = segment(response.content, "MSA"), segment(response.content, "ERR")
        assert msa[1:3] == ["AE", "LIS-0020"]
        assert "not a number" in msa[3]
        assert err[2] == "OBX^4^5^1"  # the fourth OBX, field 5
        assert err[3].startswith("102^")
        assert _counts(db) == before  # not even the patient was registered

    def test_after_fixing_the_message_the_same_control_id_is_accepted(self, send: Send) -> None:
        bad = "OBX|1|NM|2093-3^总胆固醇^LN||六点八|mmol/L||H|||F"
        assert send(oru("LIS-0021", results=(bad,))).status_code == 422
        assert send(oru("LIS-0021")).status_code == 200

    def test_an_unsupported_event_is_rejected(self, send: Send) -> None:
        response = send(adt("A02", "HIS-2001"))
        assert response.status_code == 400
        assert segment(response.content, "ERR")[3].startswith("201^")

    def test_a_facility_other_than_the_callers_institution_is_rejected(
        self, send: Send, db: Session
    ) -> None:
        before = _counts(db)
        response = send(oru("LIS-0030", facility="township-01"))
        assert response.status_code == 403
        assert segment(response.content, "MSA")[1] == "AR"
        assert "township-01" in segment(response.content, "ERR")[8]
        assert _counts(db) == before

    def test_an_unidentified_patient_without_birth_date_is_registered(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        """The emergency room's 无名氏: no ID, no birth date yet. An AE would lose the
        visit (engines rarely resend one)."""
        unknown = pid(mrn="JZ0000007", id_number="", name="无名氏", birth_date="", phone="")
        response = send(adt("A04", "HIS-2001", patient=unknown, visit="V20261105099"))
        assert segment(response.content, "MSA")[1] == "AA", response.text
        person = db.scalar(select(Person).where(Person.name == "无名氏"))
        assert person is not None
        assert person.birth_date is None
        patient = client.get(f"/fhir/Patient/{person.id}", headers=his_headers).json()
        assert "birthDate" not in patient
        [visit] = _search(client, his_headers, f"Encounter?subject=Patient/{person.id}")
        assert visit["identifier"][0]["value"] == "V20261105099"

    def test_an_unknown_sex_without_id_number_is_registered_as_unknown(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        """An unconscious patient's sex may not be recorded yet: an AE would lose the
        visit."""
        unknown = pid(mrn="JZ0000008", sex="U", id_number="", name="无名氏", birth_date="")
        response = send(adt("A01", "HIS-2002", patient=unknown))
        assert segment(response.content, "MSA")[1] == "AA", response.text
        person = db.scalar(select(Person).where(Person.name == "无名氏"))
        assert person is not None
        assert person.sex == "unknown"
        patient = client.get(f"/fhir/Patient/{person.id}", headers=his_headers).json()
        assert patient["gender"] == "unknown"

    def test_a_sex_outside_table_0001_is_refused(self, send: Send) -> None:
        response = send(adt("A01", "HIS-2003", patient=pid(sex="X")))
        assert response.status_code == 422
        assert segment(response.content, "ERR")[2] == "PID^1^8^1"

    def test_a_person_cannot_post_messages(self, client: TestClient) -> None:
        from helpers import bearer

        response = client.post(
            "/api/hl7v2",
            content=oru("LIS-0040"),
            headers={**bearer(client, "doctor"), "Content-Type": "x-application/hl7-v2+er7"},
        )
        assert response.status_code == 403

    def test_a_json_body_is_refused_with_an_ack(
        self, client: TestClient, his_headers: dict[str, str]
    ) -> None:
        response = client.post("/api/hl7v2", json={}, headers=his_headers)
        assert response.status_code == 400
        assert segment(response.content, "MSA")[1] == "AR"


class TestResultsWithoutVisit:
    def test_an_oru_without_pv1_gets_an_outpatient_encounter_for_its_order(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        message = b"\r".join(s for s in oru("LIS-0050").split(b"\r") if not s.startswith(b"PV1"))
        assert send(message).status_code == 200
        person = _person(db)
        [encounter] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert encounter["class"]["code"] == "AMB"
        assert encounter["status"] == "finished"
        assert encounter["identifier"][0]["value"] == "order-LAB-20261105-0001"
        observations = _search(client, his_headers, f"Observation?subject=Patient/{person}")
        assert {o["encounter"]["reference"] for o in observations} == {
            f"Encounter/{encounter['id']}"
        }


class TestSeveralPatientsInOneMessage:
    """A laboratory's ORU^R01 may carry several patients (PATIENT_RESULT repeats)."""

    def test_each_patients_results_are_filed_under_that_patient(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        second_id = resident_id("13112519780704212")
        first = oru("LIS-0060").decode().rstrip("\r")
        second = oru(
            "LIS-0060",
            order="LAB-20261105-0002",
            visit="V20261105002",
            results=("OBX|1|NM|2093-3^总胆固醇^LN||4.0|mmol/L^^UCUM|3.1-5.7|N|||F",),
            patient=pid(
                mrn="ZY0099999",
                id_number=second_id,
                name="张^三",
                sex="F",
                birth_date="19780704",
                phone="13903180002",
            ),
        ).decode()
        message = first + "\r" + "\r".join(second.split("\r")[1:])  # its PID onwards
        response = send(message.encode())
        assert segment(response.content, "MSA")[1] == "AA", response.text
        zhang = db.scalar(select(Person).where(Person.id_number == second_id))
        assert zhang is not None
        [cholesterol] = _search(client, his_headers, f"Observation?subject=Patient/{zhang.id}")
        assert cholesterol["valueQuantity"]["value"] == 4.0
        [report] = _search(client, his_headers, f"DiagnosticReport?subject=Patient/{zhang.id}")
        assert report["identifier"][0]["value"] == "LAB-20261105-0002"
        ouyang = _search(client, his_headers, f"Observation?subject=Patient/{_person(db)}")
        assert len(ouyang) == len(LIPID_RESULTS)

    def test_results_before_any_patient_are_refused_and_nothing_is_written(
        self, send: Send, db: Session
    ) -> None:
        lines = oru("LIS-0061").decode().rstrip("\r").split("\r")
        msh, patient, visit, *orders = lines
        before = _counts(db)
        response = send(("\r".join([msh, *orders, patient, visit, *orders]) + "\r").encode())
        assert segment(response.content, "MSA")[1] == "AE"
        assert "before any PID" in response.text
        assert _counts(db)[0] == before[0]


class TestVisitUpdates:
    def test_a_discharge_of_a_visit_never_admitted_records_the_finished_stay(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        """Admitted before the interface went live: the discharge must not be lost."""
        response = send(adt("A03", "HIS-3001", visit="V-NEVER", discharge="20261106100000"))
        assert segment(response.content, "MSA")[1] == "AA"
        person = _person(db)
        [stay] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert stay["status"] == "finished"
        assert stay["period"]["end"].startswith("2026-11-06")

    def test_results_with_a_sparse_pv1_keep_the_visit_class_and_doctor(
        self, send: Send, client: TestClient, his_headers: dict[str, str], db: Session
    ) -> None:
        assert segment(send(adt("A01", "HIS-3002")).content, "MSA")[1] == "AA"
        sparse = b"PV1|1||||||||||||||||||V20261105001"
        message = b"\r".join(
            sparse if s.startswith(b"PV1") else s for s in oru("LIS-3003").split(b"\r")
        )
        assert segment(send(message).content, "MSA")[1] == "AA"
        person = _person(db)
        [encounter] = _search(client, his_headers, f"Encounter?subject=Patient/{person}")
        assert encounter["class"]["code"] == "IMP"
        assert encounter["participant"] == [{"individual": {"display": "王静怡"}}]
        assert encounter["status"] == "in-progress"
