"""A resident opens their consent page from the menu, withdraws and gives consent again,
and sees who accessed their record."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from helpers import browser_login


class TestResidentConsent:
    def test_resident_withdraws_and_gives_consent(self, page: Page, base_url: str) -> None:
        browser_login(page, base_url, "resident")
        page.locator('nav a[href="/me/consent"]').first.click()
        expect(page).to_have_url(f"{base_url}/me/consent")

        page.get_by_test_id("own-consent-withdraw").click()
        expect(page.get_by_test_id("own-consent-state")).to_have_text("未授权在医联体内共享")
        page.get_by_test_id("own-consent-give").click()
        expect(page.get_by_test_id("own-consent-state")).to_have_text("已授权在医联体内共享")
        expect(page.get_by_test_id("own-consent-history").locator("tbody tr")).not_to_have_count(0)
        expect(page.get_by_test_id("own-access-log")).to_be_visible()
