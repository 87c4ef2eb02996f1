"""The dashboard as its users use it: the commission reads aggregates and exports them;
admins edit definitions (each edit a new, audited version) and import settlement files."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, csrf_from, page_login
from indicators.factories import load_small_county
from medalliance.audit.models import AuditEvent
from medalliance.indicators.models import SettlementFact


@pytest.fixture
def county(db: Session) -> Session:
    load_small_county(db)
    db.flush()
    return db


class TestDashboard:
    def test_commission_sees_each_indicator_with_numerator_and_denominator(
        self, client: TestClient, county: Session
    ) -> None:
        page_login(client, "commission")
        html = client.get("/indicators?period=2026-Q3").text
        assert "县域就诊率" in html
        assert 'data-testid="value-county_visit_rate">75.0 %' in html
        assert "6 / 8" in html

    def test_drill_down_from_consortium_to_an_institution_and_its_months(
        self, client: TestClient, county: Session
    ) -> None:
        page_login(client, "commission")
        parts = client.get("/indicators/up_referrals?period=2026-Q3").text
        assert 'href="/indicators/up_referrals/institution/township-01?period=2026-Q3"' in parts
        months = client.get("/indicators/up_referrals/institution/township-01?period=2026-Q3")
        assert months.status_code == 200
        assert "2026-07" in months.text

    def test_xlsx_export_holds_the_values_shown(self, client: TestClient, county: Session) -> None:
        page_login(client, "commission")
        response = client.get("/indicators?period=2026-Q3&format=xlsx")
        assert response.status_code == 200
        assert "attachment" in response.headers["content-disposition"]
        sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
        rows = {r[0]: r for r in sheet.iter_rows(values_only=True)}
        assert rows["县域就诊率"][2:5] == (75.0, 6, 8)

    def test_csv_export_of_the_disease_spectrum(self, client: TestClient, county: Session) -> None:
        page_login(client, "commission")
        response = client.get("/indicators/spectrum?period=2026&format=csv")
        text = response.content.decode("utf-8-sig")
        assert "I10" in text
        assert "IX" in text

    def test_a_bad_period_is_a_message_naming_the_field(
        self, client: TestClient, county: Session
    ) -> None:
        page_login(client, "commission")
        response = client.get("/indicators?period=2026-13")
        assert response.status_code == 422
        assert "period" in response.text

    def test_commission_may_not_edit_definitions(self, client: TestClient) -> None:
        page_login(client, "commission")
        assert client.get("/indicators/definitions").status_code == 403


class TestDefinitions:
    def test_an_edit_is_a_new_audited_version_and_changes_the_value(
        self, client: TestClient, county: Session
    ) -> None:
        headers = bearer(client, "admin")
        body = client.get("/api/indicators?period=2026-Q3", headers=headers).json()
        rate = next(i for i in body["indicators"] if i["id"] == "grassroots_visit_share")
        assert rate["value"] == 50.0
        from medalliance.indicators.definitions import shipped

        new = next(d for d in shipped() if d.id == "grassroots_visit_share").model_dump(mode="json")
        new["denominator"] = "visits_in_county + visits_out_of_county"
        saved = client.put(
            "/api/indicators/definitions/grassroots_visit_share",
            json={"definition": new, "note": "count settled visits too"},
            headers=headers,
        )
        assert saved.status_code == 200
        assert saved.json()["version"] == 1
        body = client.get("/api/indicators?period=2026-Q3", headers=headers).json()
        rate = next(i for i in body["indicators"] if i["id"] == "grassroots_visit_share")
        assert (rate["value"], rate["denominator"]) == (37.5, 8)
        events = county.scalars(
            select(AuditEvent).where(AuditEvent.action == "indicator.definition.update")
        ).all()
        assert events[-1].resource_id == "grassroots_visit_share/1"

    def test_unknown_measures_are_refused_by_name(self, client: TestClient) -> None:
        from medalliance.indicators.definitions import shipped

        new = shipped()[0].model_dump(mode="json")
        new["denominator"] = "visits_in_county + vistis_abroad * (2 - nothing)"
        response = client.put(
            f"/api/indicators/definitions/{new['id']}",
            json={"definition": new},
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 422
        assert response.json()["field"] == "denominator"
        assert "nothing, vistis_abroad" in response.json()["detail"]

    def test_a_formula_that_does_not_parse_is_refused(self, client: TestClient) -> None:
        from medalliance.indicators.definitions import shipped

        new = shipped()[0].model_dump(mode="json")
        new["numerator"] = "visits_in_county + (visits"
        response = client.put(
            f"/api/indicators/definitions/{new['id']}",
            json={"definition": new},
            headers=bearer(client, "admin"),
        )
        assert response.status_code == 422
        assert response.json()["field"] == "numerator"

    def test_the_edit_form_shows_the_error_in_place(self, client: TestClient) -> None:
        page_login(client, "admin")
        form = client.get("/indicators/definitions/up_referrals")
        response = client.post(
            "/indicators/definitions/up_referrals",
            data={
                "csrf_token": csrf_from(form.text),
                "name_zh": "上转人次",
                "name_en": "Up",
                "dimension": "referral",
                "kind": "value",
                "numerator": "ups",
                "better": "higher",
                "levels": ["institution"],
                "periods": ["month"],
                "factor": "1",
                "decimals": "0",
            },
        )
        assert response.status_code == 422
        assert "unknown measures ups" in response.text


def _csv(*rows: str) -> bytes:
    return (
        "settlement_id,person_id,visit_date,encounter_class,institution,amount\n" + "\n".join(rows)
    ).encode()


class TestSettlementImport:
    def _upload(self, client: TestClient, name: str, content: bytes) -> object:
        token = csrf_from(client.get("/indicators/settlements").text)
        return client.post(
            "/indicators/settlements",
            data={"csrf_token": token},
            files={"file": (name, content, "text/csv")},
        )

    def test_a_clean_file_is_imported_at_once(self, client: TestClient, db: Session) -> None:
        page_login(client, "admin")
        response = self._upload(
            client,
            "ok.csv",
            _csv(
                "S1,p00000001,2026-07-01,ambulatory,city-hospital,120.5",
                "S2,p00000002,2026-07-02,inpatient,city-hospital,8000",
            ),
        )
        assert "已导入" in response.text
        assert len(db.scalars(select(SettlementFact)).all()) == 2

    def test_a_file_with_bad_rows_imports_nothing_until_accepted(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "admin")
        report = self._upload(
            client,
            "mixed.csv",
            _csv(
                "S1,p00000001,2026-07-01,ambulatory,city-hospital,120.5",
                "S1,p00000001,2026-07-01,ambulatory,city-hospital,120.5",
                "S3,p00000001,2026-02-30,ambulatory,city-hospital,1",
                "S4,p00000001,2026-07-01,ambulatory,nowhere-hospital,1",
                "S5,nobody,2026-07-01,ambulatory,city-hospital,1",
                "S6,p00000001,2026-07-01,dental,city-hospital,1",
            ),
        )
        text = report.text
        assert "duplicate S1" in text
        assert "visit_date" in text
        assert "unknown institution" in text
        assert "unknown person" in text
        assert "encounter_class" in text
        assert db.scalars(select(SettlementFact)).all() == []
        token = csrf_from(text)
        accept_url = report.url.path + "/accept"
        accepted = client.post(accept_url, data={"csrf_token": token})
        assert "已导入" in accepted.text
        assert [f.settlement_id for f in db.scalars(select(SettlementFact))] == ["S1"]
        again = client.post(accept_url, data={"csrf_token": token})
        assert again.status_code == 409

    def test_wrong_columns_refuse_the_whole_file(self, client: TestClient, db: Session) -> None:
        page_login(client, "admin")
        response = self._upload(client, "bad.csv", b"id,who,when\n1,p00000001,2026-07-01\n")
        assert response.status_code == 422
        assert "missing columns settlement_id" in response.text
        assert db.scalars(select(SettlementFact)).all() == []

    def test_an_xlsx_file_is_read_like_a_csv(self, client: TestClient, db: Session) -> None:
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(
            ["settlement_id", "person_id", "visit_date", "encounter_class", "institution", "amount"]
        )
        sheet.append(["X1", "p00000003", "2026-08-01", "emergency", "city-hospital", 300])
        buffer = io.BytesIO()
        workbook.save(buffer)
        page_login(client, "admin")
        response = self._upload(client, "s.xlsx", buffer.getvalue())
        assert "已导入" in response.text
        fact = db.scalars(select(SettlementFact)).one()
        assert (fact.township_code[:6], fact.in_county, fact.resident) == ("510799", False, True)
