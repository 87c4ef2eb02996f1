"""A coordinator logs in, sees their home page, and switches language."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def login(page: Page, base_url: str, username: str, password: str = "medalliance") -> None:
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/login?next=/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


class TestShell:
    def test_coordinator_logs_in_sees_home_and_switches_language(
        self, page: Page, base_url: str
    ) -> None:
        login(page, base_url, "coordinator")
        expect(page.get_by_test_id("home-title")).to_have_text("转诊办工作台")
        expect(page.get_by_test_id("institution")).to_have_text("安平县人民医院")
        expect(page.get_by_role("heading", name="转诊队列")).to_be_visible()
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_test_id("home-title")).to_have_text("Referral office")
        expect(page.get_by_test_id("institution")).to_have_text("Anping County People's Hospital")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_test_id("home-title")).to_have_text("转诊办工作台")

    def test_wrong_password_stays_on_login_with_a_message(self, page: Page, base_url: str) -> None:
        login(page, base_url, "coordinator", "wrong-password")
        expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误")

    def test_commission_home_draws_the_members_chart(self, page: Page, base_url: str) -> None:
        login(page, base_url, "commission")
        expect(page.get_by_test_id("home-title")).to_have_text("绩效考核看板")
        expect(page.locator("#members-chart canvas")).to_have_count(1)
        expect(page.get_by_test_id("members-table")).to_contain_text("村卫生室")
