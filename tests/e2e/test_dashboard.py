"""The commission opens the indicator dashboard in Chinese, drills from the consortium to a
township health centre's months, and exports the view as XLSX."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from medalliance.config import get_settings
from medalliance.indicators.periods import add_months, month_of
from medalliance.kit.clock import utcnow

# The demo consortium's referral year ends today: this month is under way, and the one
# before is the last complete month, which the dashboard opens on.
LAST_MONTH = add_months(month_of(utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()), -1)


def _indicators(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "medalliance.cli", "indicators", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def consortium_facts(server_env: dict[str, str]) -> None:
    """The demo consortium's own records as facts, as the worker makes them (now, rather
    than when its next run comes)."""
    _indicators(server_env, "refresh")


@pytest.fixture(scope="module")
def dashboard_data(server_env: dict[str, str], consortium_facts: None) -> None:
    """The demo has a year of referrals but few encounters: add two years of indicator facts
    (up to last month)."""
    _indicators(server_env, "demo")


def login(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("medalliance")
    page.get_by_role("button", name="登录").click()


class TestDashboard:
    def test_the_demo_consortium_opens_on_its_last_complete_month(
        self, page: Page, base_url: str, consortium_facts: None
    ) -> None:
        """Not this month: a referral or two so far, and a fall of 100 % in down-referrals."""
        login(page, base_url, "commission")
        page.get_by_role("link", name="考核看板").click()
        expect(page.get_by_test_id("period")).to_have_text(LAST_MONTH)
        expect(page.get_by_test_id("value-up_referrals")).to_have_text(re.compile(r"^[1-9]\d*"))

    def test_commission_drills_to_a_township_and_exports_xlsx(
        self, page: Page, base_url: str, dashboard_data: None
    ) -> None:
        login(page, base_url, "commission")
        page.get_by_role("link", name="考核看板").click()
        expect(page.get_by_test_id("dashboard-title")).to_have_text("指标看板")
        expect(page.get_by_test_id("period")).to_have_text(LAST_MONTH)
        expect(page.get_by_test_id("overview-table")).to_contain_text("县域就诊率")
        expect(page.locator(".spark canvas").first).to_be_visible()

        page.get_by_test_id("indicator-link-up_referrals").click()
        expect(page.get_by_test_id("indicator-title")).to_contain_text("上转人次")
        expect(page.locator("#breakdown-chart canvas")).to_have_count(1)
        page.get_by_test_id("drill-township-01").click()

        expect(page.get_by_test_id("scope-label")).to_have_text("安平县城关镇卫生院")
        expect(page.get_by_test_id("monthly-table")).to_contain_text(LAST_MONTH)
        with page.expect_download() as download_info:
            page.get_by_test_id("export-xlsx").click()
        download = download_info.value
        assert download.suggested_filename.endswith(".xlsx")
        path = download.path()
        workbook = load_workbook(io.BytesIO(open(path, "rb").read()))  # noqa: SIM115
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        assert rows[0][:3] == ("月份", "值", "分子")
        assert rows[-1][0] == LAST_MONTH
