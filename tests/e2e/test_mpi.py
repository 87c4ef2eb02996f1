"""An administrator searches a patient by pinyin, opens the review queue, links two
records of the same person, and sees one person holding both record numbers."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import Page, expect

from helpers import browser_login


def _open_review(server_env: dict[str, str]) -> tuple[int, str, str, list[str]]:
    """The first open review of the demo whose candidate is already known at a member: id,
    candidate id and pinyin, and the record numbers of both persons."""
    path = server_env["MEDALLIANCE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        review_id, person_id, candidate_id = db.execute(
            "SELECT id, person_id, candidate_id FROM match_review r WHERE status = 'open' AND "
            "EXISTS (SELECT 1 FROM local_record l WHERE l.person_id = r.candidate_id) "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        (pinyin,) = db.execute("SELECT pinyin FROM person WHERE id = ?", (candidate_id,)).fetchone()
        mrns = [
            row[0]
            for row in db.execute(
                "SELECT mrn FROM local_record WHERE person_id IN (?, ?)", (person_id, candidate_id)
            )
        ]
    return review_id, candidate_id, pinyin, mrns


class TestReviewQueue:
    def test_admin_links_two_records_into_one_person(
        self, page: Page, base_url: str, server_env: dict[str, str]
    ) -> None:
        review_id, candidate_id, pinyin, mrns = _open_review(server_env)
        assert len(mrns) >= 2
        browser_login(page, base_url, "admin")

        page.goto(f"{base_url}/patients")
        page.get_by_test_id("patient-q").fill(pinyin)
        page.get_by_test_id("patient-q").press("Enter")
        expect(page.locator(f'a[href="/patients/{candidate_id}"]').first).to_be_visible()

        page.goto(f"{base_url}/patients/reviews")
        page.locator(f'a[href="/patients/reviews/{review_id}"]').click()
        expect(page.get_by_test_id("compare")).to_be_visible()
        page.locator("input[name=reason]").fill("同一人：身份证号一致，姓名同音")
        page.get_by_test_id("review-link").click()
        expect(page).to_have_url(f"{base_url}/patients/reviews")

        page.goto(f"{base_url}/patients/{candidate_id}")
        known = page.get_by_test_id("known-at")
        for mrn in mrns:
            expect(known).to_contain_text(mrn)
