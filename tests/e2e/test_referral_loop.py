"""The closed referral loop, clicked through by the people who do it: a village doctor
refers an uncontrolled hypertensive patient up to county cardiology, the county referral
office accepts and books a slot, the cardiologist sees the patient, sends the discharge
summary back and refers the patient down to the township health centre with the care
plans, and the township doctor takes the patient over and is given the follow-up due in
14 days."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from helpers import DEMO_PASSWORD, browser_login
from medalliance.config import get_settings

PATIENT = "p00000010"  # the demo resident, who lives in township-01 (马鞍村 is one of its villages)
VILLAGE = "township-01-village-1"
VILLAGE_DOCTOR = "village_doctor"
VILLAGE_PASSWORD = "cunyi-medalliance"
VILLAGE_SYSTEM = "village-1-his"
CARDIOLOGY = "county-hospital:03.04"
TOWNSHIP_GP = "township-01:02"
ZONE = ZoneInfo(get_settings().timezone)  # the consortium's zone, as pages show times

DISCHARGE = "入院后调整降压方案，血压控制于 135/85 mmHg，排除继发性高血压，准予出院"
REHAB = "低盐饮食，每日步行30分钟，戒烟限酒"
MEDICATION = "氨氯地平 5 mg qd，缬沙坦 80 mg qd"
FOLLOW_UP = "每周测血压，2周后乡镇卫生院复诊"


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "medalliance.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _village_clinic_joins(server_env: dict[str, str]) -> None:
    """The village doctor's account (the CLI) and the clinic's own system. The platform has
    no page, API or CLI command to register a member system, so the clinic's API client is
    provisioned the way the demo loader provisions the county HIS: ``auth.service``."""
    _cli(
        server_env,
        "users",
        "create",
        VILLAGE_DOCTOR,
        "--institution",
        VILLAGE,
        "--role",
        "doctor",
        "--display-name",
        "马鞍村村医",
        "--password",
        VILLAGE_PASSWORD,
    )
    provision = (
        "import medalliance.models\n"
        "from medalliance.auth import service\n"
        "from medalliance.db import unit_of_work\n"
        "with unit_of_work() as db:\n"
        f"    service.create_client(db, None, client_id={VILLAGE_SYSTEM!r},\n"
        f"        secret={DEMO_PASSWORD!r}, name='马鞍村卫生室 HIS', institution_id={VILLAGE!r})\n"
    )
    subprocess.run(
        [sys.executable, "-c", provision],
        env=server_env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _village_visit(base_url: str) -> None:
    """The patient is seen at the village clinic: its own system records the outpatient
    encounter and the diagnosis in the shared record. A member system's own encounter is
    what gives the clinic its care relationship with the patient (records.writes).

    Why not the resident consenting on their own: ``POST /api/patients/{id}/consent`` does
    not admit the resident role (403) and no page offers residents a consent form, although
    ``access.record_consent`` would accept it. So consent is recorded the way it is done at
    a clinic: the patient signs the paper form and the treating (village) doctor records it
    on the patient card, which needs exactly this care relationship."""
    token = httpx.post(
        f"{base_url}/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": VILLAGE_SYSTEM,
            "client_secret": DEMO_PASSWORD,
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "Content-Type": "application/fhir+json",
    }
    visit = {
        "resourceType": "Encounter",
        "id": "village-visit-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "serviceProvider": {"reference": f"Organization/{VILLAGE}"},
    }
    diagnosis = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
            "text": "高血压（控制不佳）",
        },
        "subject": {"reference": f"Patient/{PATIENT}"},
        "encounter": {"reference": "Encounter/village-visit-1"},
    }
    response = httpx.put(
        f"{base_url}/fhir/Encounter/village-visit-1", json=visit, headers=headers, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    response = httpx.post(f"{base_url}/fhir/Condition", json=diagnosis, headers=headers, timeout=30)
    assert response.status_code == 201, response.text


def _patient_names(server_env: dict[str, str]) -> tuple[str, str]:
    """The demo resident's name and pinyin (generated from the demo seed)."""
    path = server_env["MEDALLIANCE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        name, pinyin = db.execute(
            "SELECT name, pinyin FROM person WHERE id = ?", (PATIENT,)
        ).fetchone()
    return str(name), str(pinyin)


@pytest.fixture
def sign_in(browser: Browser, base_url: str) -> Iterator[Callable[..., Page]]:
    """Each person at their own computer: one browser context per user."""
    contexts = []

    def open_as(username: str, password: str = DEMO_PASSWORD) -> Page:
        context = browser.new_context(
            locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        browser_login(page, base_url, username, password)
        expect(page.get_by_test_id("who")).to_contain_text(username)
        return page

    yield open_as
    for context in contexts:
        context.close()


def _row(page: Page, referral_id: str) -> Locator:
    return page.locator(f'[data-testid="referral-row"][data-id="{referral_id}"]')


def _act(page: Page, action: str) -> None:
    page.get_by_test_id(f"action-{action}").click()


class TestReferralLoop:
    def test_village_to_county_and_back_to_the_township(
        self,
        sign_in: Callable[..., Page],
        base_url: str,
        server_env: dict[str, str],
    ) -> None:
        _village_clinic_joins(server_env)
        _village_visit(base_url)
        name, pinyin = _patient_names(server_env)

        # --- 1. The village doctor records the signed consent and refers the patient up. ---
        village = sign_in(VILLAGE_DOCTOR, VILLAGE_PASSWORD)
        village.goto(f"{base_url}/patients/{PATIENT}")
        expect(village.get_by_test_id("patient-name")).to_contain_text(name)
        village.get_by_label("依据文件", exact=True).fill("医联体信息共享知情同意书 MA-0001")
        village.get_by_test_id("consent-give").click()
        expect(village.get_by_test_id("consent-state")).to_have_text("已授权在医联体内共享")
        expect(village.get_by_test_id("consent-history")).to_contain_text("MA-0001")

        village.goto(f"{base_url}/referrals/mine?box=outgoing")
        village.get_by_role("link", name="开具转诊单").click()
        form = village.get_by_test_id("referral-form")
        # Typed in pinyin, key by key, as a doctor at the village clinic would.
        form.locator("input[name=q]").press_sequentially(pinyin)
        expect(form.locator(f'#patient-options option[value="{PATIENT}"]')).to_be_attached()
        form.locator("input[name=patient_id]").fill(PATIENT)
        form.locator("select[name=direction]").select_option("up")
        form.locator("select[name=urgency]").select_option("routine")
        form.locator("select[name=to_institution_id]").select_option("county-hospital")
        form.locator("input[name=to_department_id]").fill(CARDIOLOGY)
        form.locator("input[name=diagnoses]").press_sequentially("I10")
        # I10 itself is a grassroots disease; the doctor refers up because it is uncontrolled.
        expect(village.get_by_test_id("recommendation")).to_contain_text("基层（一级）")
        form.locator("select[name=reason_code]").select_option("difficult_case")
        form.locator("input[name=reason_text]").fill("高血压控制不佳，三药联用血压仍 180/110 mmHg")
        form.locator("textarea[name=history_summary]").fill("高血压10年，近1月头晕加重")
        form.locator("textarea[name=current_treatment]").fill("硝苯地平 30 mg qd")
        form.get_by_role("button", name="提交转诊").click()

        expect(village.get_by_test_id("status")).to_have_text("已申请")
        up_id = village.url.rstrip("/").split("/")[-1]
        expect(village.locator("h1")).to_contain_text("上转")
        diagnoses = village.locator("p").filter(has_text="诊断（ICD-10）")
        expect(diagnoses).to_contain_text("I10 原发性高血压")

        # --- The county referral office opens a day of cardiology slots. ---
        office = sign_in("coordinator")
        office.goto(f"{base_url}/scheduling")
        day = (datetime.now(ZONE) + timedelta(days=3)).date().isoformat()
        opener = office.get_by_test_id("open-day")
        opener.locator("input[name=department_id]").fill(CARDIOLOGY)
        opener.locator("input[name=day]").fill(day)
        opener.locator("input[name=count]").fill("10")
        opener.get_by_role("button", name="放号").click()
        expect(office.get_by_test_id("slots")).to_contain_text("转诊预留号源")

        # --- 2. The office sees it incoming, accepts it and books a slot. ---
        office.goto(f"{base_url}/referrals")
        row = _row(office, up_id)
        expect(row).to_contain_text("已申请")
        expect(row).to_contain_text("城关镇马鞍村卫生室")
        row.get_by_role("link", name=name).click()
        expect(office.get_by_test_id("status")).to_have_text("已申请")
        # The accept form is meant to offer the slots ("book later" or a slot), but the page
        # only lists slots once the referral is already accepted: accept, then book.
        _act(office, "accept")
        expect(office.get_by_test_id("status")).to_have_text("已同意")
        book = office.locator(f'form[action="/referrals/{up_id}/schedule"] select[name=slot_id]')
        first_slot = book.locator("option").first
        expect(first_slot).to_contain_text(f"{day} 08:")
        expect(first_slot).to_contain_text("预留")
        book.select_option(index=0)
        _act(office, "schedule")
        expect(office.get_by_test_id("status")).to_have_text("已预约")
        history = office.get_by_test_id("history")
        expect(history).to_contain_text("同意接收")
        expect(history).to_contain_text("预约号源")

        # --- 3. The cardiologist sees the patient, closes the loop and refers down. ---
        specialist = sign_in("specialist")
        specialist.goto(f"{base_url}/referrals")
        _row(specialist, up_id).get_by_role("link", name=name).click()
        expect(specialist.get_by_test_id("status")).to_have_text("已预约")
        _act(specialist, "arrive")
        expect(specialist.get_by_test_id("status")).to_have_text("已到诊")
        complete = specialist.locator(f'form[action="/referrals/{up_id}/complete"]')
        complete.locator("select[name=outcome_kind]").select_option("discharge-summary")
        complete.locator("textarea[name=outcome_text]").fill(DISCHARGE)
        _act(specialist, "complete")
        expect(specialist.get_by_test_id("status")).to_have_text("已完成")
        outcome = specialist.get_by_test_id("outcome")
        expect(outcome).to_contain_text(DISCHARGE)
        # The summary is now a document of the shared record; the page names it.
        found = re.search(r"DocumentReference/[A-Za-z0-9.\-]+", outcome.inner_text())
        assert found, outcome.inner_text()
        summary_ref = found.group(0)

        specialist.goto(f"{base_url}/referrals/new")
        down = specialist.get_by_test_id("referral-form")
        down.locator("input[name=patient_id]").fill(PATIENT)
        down.locator("select[name=direction]").select_option("down")
        down.locator("select[name=to_institution_id]").select_option("township-01")
        down.locator("input[name=to_department_id]").fill(TOWNSHIP_GP)
        down.locator("input[name=diagnoses]").fill("I10")
        down.locator("select[name=reason_code]").select_option("chronic_management")
        down.locator("textarea[name=history_summary]").fill("住院调整用药后血压平稳")
        # No copying: the down referral carries the outcome of the referral it continues.
        down.locator("summary").click()
        down.locator("textarea[name=rehab_plan]").fill(REHAB)
        down.locator("textarea[name=medication_plan]").fill(MEDICATION)
        down.locator("textarea[name=follow_up_plan]").fill(FOLLOW_UP)
        down.locator("input[name=previous_referral_id]").fill(up_id)
        down.get_by_role("button", name="提交转诊").click()
        expect(specialist.get_by_test_id("status")).to_have_text("已申请")
        expect(specialist.locator("h1")).to_contain_text("下转")
        down_id = specialist.url.rstrip("/").split("/")[-1]
        assert down_id != up_id
        expect(specialist.locator("body")).to_contain_text("转诊链")

        # The village doctor sees the outcome come back in the outgoing queue.
        village.goto(f"{base_url}/referrals/mine?box=outgoing&status=all")
        mine = _row(village, up_id)
        expect(mine).to_contain_text("已完成")
        expect(mine.get_by_test_id("outcome-new")).to_have_text("已回传结果")
        mine.get_by_role("link", name=name).click()
        expect(village.get_by_test_id("outcome")).to_contain_text(DISCHARGE)

        # --- 4. The township doctor takes the patient over. ---
        township = sign_in("doctor")
        township.goto(f"{base_url}/referrals")
        incoming = _row(township, down_id)
        expect(incoming).to_contain_text("下转")
        expect(incoming).to_contain_text("已申请")
        expect(incoming).to_contain_text("安平县人民医院")
        incoming.get_by_role("link", name=name).click()
        detail = township.locator("p")
        expect(township.get_by_test_id("continued-outcome")).to_contain_text(DISCHARGE)
        expect(detail.filter(has_text="附件（共享健康档案）")).to_contain_text(summary_ref)
        expect(detail.filter(has_text="康复方案")).to_contain_text(REHAB)
        expect(detail.filter(has_text="用药方案")).to_contain_text(MEDICATION)
        expect(detail.filter(has_text="随访计划")).to_contain_text(FOLLOW_UP)
        _act(township, "accept")
        expect(township.get_by_test_id("status")).to_have_text("已同意")
        _act(township, "arrive")
        expect(township.get_by_test_id("status")).to_have_text("已到诊")
        before = (datetime.now(ZONE) + timedelta(days=14)).date().isoformat()
        _act(township, "complete")
        expect(township.get_by_test_id("status")).to_have_text("已完成")
        after = (datetime.now(ZONE) + timedelta(days=14)).date().isoformat()
        # The follow-up task: due 14 days after the down referral is completed.
        expect(detail.filter(has_text="随访截止")).to_have_text(
            re.compile(rf"随访截止:\s*({before}|{after}) \d\d:\d\d")
        )
        expect(township.get_by_test_id("history")).to_contain_text("完成并回传")

        township.goto(f"{base_url}/patients/{PATIENT}/timeline?kind=documents")
        documents = township.get_by_test_id("timeline-items")
        expect(documents).to_contain_text("Discharge summary")
        expect(documents).to_contain_text("安平县人民医院")
