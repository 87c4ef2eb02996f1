"""The commission opens the indicator dashboard in Chinese, drills from the consortium to a
township health centre's months, and exports the view as XLSX."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

LAST_MONTH = "2026-11"  # the demo consortium's current month (its referral year ends here)


@pytest.fixture(scope="module")
def dashboard_data(server_env: dict[str, str]) -> None:
    """The demo has a year of referrals but few encounters: add two years of indicator facts."""
    subprocess.run(
        [sys.executable, "-m", "medalliance.cli", "indicators", "demo", "--last-month", LAST_MONTH],
        env=server_env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def login(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("medalliance")
    page.get_by_role("button", name="登录").click()


class TestDashboard:
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
