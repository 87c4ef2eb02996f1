"""A township doctor opens a patient's timeline and sees the stay the county hospital sent
over HL7 v2, then filters it to lab results without reloading the page."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from records.hl7.hl7_samples import adt, oru

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
VISIT_SYSTEM = "https://medalliance.example/fhir/sid/visit/county-hospital"


def _token(base_url: str, **form: str) -> dict[str, str]:
    response = httpx.post(f"{base_url}/api/auth/token", data=form, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _county_sends_a_stay(base_url: str) -> str:
    """The county HIS posts an admission and lab results; returns the patient's golden id."""
    his = _token(
        base_url,
        grant_type="client_credentials",
        client_id="county-his",
        client_secret="medalliance",
    )
    for message in (adt("A01", "E2E-0001", visit="V-E2E-1"), oru("E2E-0002", visit="V-E2E-1")):
        response = httpx.post(
            f"{base_url}/api/hl7v2", content=message, headers={**his, **ER7}, timeout=30
        )
        assert response.status_code == 200, response.text
    found = httpx.get(
        f"{base_url}/fhir/Encounter",
        params={"identifier": f"{VISIT_SYSTEM}|V-E2E-1"},
        headers=his,
        timeout=30,
    ).json()
    return str(found["entry"][0]["resource"]["subject"]["reference"]).split("/")[1]


def _patient_consents(base_url: str, person_id: str) -> None:
    coordinator = _token(
        base_url, grant_type="password", username="coordinator", password="medalliance"
    )
    response = httpx.post(
        f"{base_url}/api/patients/{person_id}/consent",
        json={"status": "given", "source_document": "知情同意书 E2E"},
        headers=coordinator,
        timeout=30,
    )
    assert response.status_code == 201, response.text


def _login(page: Page, base_url: str, username: str, target: str) -> None:
    page.goto(f"{base_url}{target}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("medalliance")
    page.get_by_role("button", name="登录").click()


class TestTimeline:
    def test_township_doctor_sees_the_county_stay_and_filters_to_labs(
        self, page: Page, base_url: str
    ) -> None:
        person_id = _county_sends_a_stay(base_url)
        _patient_consents(base_url, person_id)
        timeline = f"/patients/{person_id}/timeline"

        _login(page, base_url, "doctor", timeline)

        expect(page).to_have_url(f"{base_url}{timeline}")
        expect(page.get_by_test_id("timeline-title")).to_contain_text("欧阳建华")
        expect(page.get_by_test_id("timeline-basis")).to_have_text("访问依据：患者授权")
        stay = page.get_by_test_id("timeline-group").filter(has_text="住院")
        expect(stay).to_have_count(1)
        expect(stay.get_by_test_id("item-member").first).to_have_text("安平县人民医院")
        expect(stay).to_contain_text("总胆固醇")
        expect(stay).to_contain_text("脑梗死")

        page.evaluate("window.notReloaded = true")
        page.get_by_test_id("kind-labs").click()

        expect(page).to_have_url(f"{base_url}{timeline}?kind=labs")
        expect(page.get_by_test_id("timeline-items")).to_have_attribute("data-kind", "labs")
        items = page.get_by_test_id("timeline-item")
        expect(items.filter(has_text="总胆固醇")).to_have_count(1)
        expect(page.locator('[data-testid="timeline-item"][data-kind="diagnoses"]')).to_have_count(
            0
        )
        assert page.evaluate("window.notReloaded === true"), "HTMX swapped the list in place"
