"""Registry pages: list and search in both languages, detail, forms posted with CSRF."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from helpers import csrf_from, page_login
from medalliance.registry.models import Department, Institution
from registry.factories import audit_rows


def _english(client: TestClient) -> None:
    client.get("/lang/en")


class TestList:
    def test_list_renders_in_chinese_with_member_counts(self, client: TestClient) -> None:
        page_login(client, "admin")
        page = client.get("/registry", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200
        assert 'data-testid="registry-title">医联体机构注册<' in page.text
        assert "基层（一级）" in page.text
        assert "中医医院" in page.text
        assert "共 64 家机构" in page.text

    def test_list_renders_in_english(self, client: TestClient) -> None:
        page_login(client, "coordinator")
        _english(client)
        page = client.get("/registry")
        assert 'data-testid="registry-title">Consortium registry<' in page.text
        assert "TCM hospital" in page.text

    def test_htmx_search_returns_only_the_matching_rows(self, client: TestClient) -> None:
        page_login(client, "doctor")
        part = client.get("/registry", params={"q": "青石镇"}, headers={"HX-Request": "true"})
        assert "<html" not in part.text
        assert part.text.count('data-testid="institution-row"') == 6  # centre + 5 villages

    def test_level_filter(self, client: TestClient) -> None:
        page_login(client, "doctor")
        page = client.get("/registry", params={"level": "tertiary"})
        assert page.text.count('data-testid="institution-row"') == 1

    def test_admin_nav_has_the_registry(self, client: TestClient) -> None:
        page_login(client, "admin")
        assert 'href="/registry"' in client.get("/").text


class TestDetail:
    def test_detail_shows_departments_staff_and_centres(self, client: TestClient) -> None:
        page_login(client, "admin")
        page = client.get("/registry/institutions/county-hospital")
        assert page.status_code == 200
        assert "心血管内科" in page.text
        assert "胸痛中心" in page.text
        assert "消毒供应中心" in page.text
        assert 'data-testid="staff-row"' in page.text
        assert 'data-testid="edit-institution"' in page.text

    def test_reader_sees_no_edit_form(self, client: TestClient) -> None:
        page_login(client, "doctor")
        page = client.get("/registry/institutions/township-01")
        assert page.status_code == 200
        assert 'data-testid="edit-institution"' not in page.text

    def test_unknown_institution_is_a_404_page(self, client: TestClient) -> None:
        page_login(client, "admin")
        assert client.get("/registry/institutions/nope").status_code == 404


class TestForms:
    def test_edit_form_post_with_csrf_saves_and_audits(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "admin")
        page = client.get("/registry/institutions/township-01")
        token = csrf_from(page.text)
        form = {
            "csrf_token": token,
            "code": "MA0005",
            "name": "安平县城关镇中心卫生院",
            "name_en": "Chengguan Central Health Centre",
            "level": "primary",
            "kind": "general",
            "consortium_id": "county",
            "parent_id": "county-hospital",
            "division_code": "510799101000",
            "address": "城关镇",
            "latitude": "30.9",
            "longitude": "104.8",
            "beds": "70",
            "legal_person": "on",
            "regional_centres": ["ecg"],
        }
        response = client.post(
            "/registry/institutions/township-01", data=form, follow_redirects=False
        )
        assert response.status_code == 303
        row = db.get(Institution, "township-01")
        assert row is not None
        db.refresh(row)
        assert (row.name, row.beds, row.regional_centres) == ("安平县城关镇中心卫生院", 70, ["ecg"])
        assert audit_rows(db, "registry.institution.update", "township-01")

    def test_form_post_without_csrf_is_refused(self, client: TestClient, db: Session) -> None:
        page_login(client, "admin")
        response = client.post(
            "/registry/institutions/township-01/deactivate", follow_redirects=False
        )
        assert response.status_code == 403
        row = db.get(Institution, "township-01")
        assert row is not None
        assert row.active

    def test_bad_division_code_is_shown_in_place_and_nothing_is_written(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/registry/institutions/new").text)
        response = client.post(
            "/registry/institutions",
            data={
                "csrf_token": token,
                "code": "MA9100",
                "name": "新机构",
                "level": "primary",
                "kind": "general",
                "consortium_id": "county",
                "division_code": "51079",
            },
        )
        assert response.status_code == 422
        assert 'data-testid="form-error"' in response.text
        assert "行政区划代码" in response.text
        assert 'value="MA9100"' in response.text  # what the user typed is kept
        assert db.query(Institution).filter_by(code="MA9100").count() == 0

    def test_duplicate_department_code_is_a_409_in_place(
        self, client: TestClient, db: Session
    ) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/registry/institutions/township-01").text)
        before = db.query(Department).count()
        response = client.post(
            "/registry/institutions/township-01/departments",
            data={"csrf_token": token, "code": "02", "name": "全科", "beds": "0"},
        )
        assert response.status_code == 409
        assert "诊疗科目代码" in response.text
        assert db.query(Department).count() == before

    def test_deactivate_button_keeps_the_institution_listed_as_inactive(
        self, client: TestClient
    ) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/registry/institutions/township-01").text)
        response = client.post(
            "/registry/institutions/township-01/deactivate",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303
        detail = client.get("/registry/institutions/township-01").text
        assert 'data-testid="activate"' in detail
        listed = client.get("/registry", params={"status": "inactive"}).text
        assert "安平县城关镇卫生院" in listed

    def test_register_practitioner_at_the_institution(self, client: TestClient) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/registry/institutions/township-01").text)
        response = client.post(
            "/registry/institutions/township-01/practitioners",
            data={
                "csrf_token": token,
                "name": "黄志强",
                "sex": "male",
                "title": "attending",
                "licence_number": "110500000099999",
                "specialties": "02, 50",
                "department_id": "township-01:02",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        page = client.get(response.headers["location"])
        assert 'data-testid="practitioner-name">黄志强' in page.text
        assert "第一执业地点" in page.text

    def test_consortia_page_in_english(self, client: TestClient) -> None:
        page_login(client, "admin")
        _english(client)
        page = client.get("/registry/consortia")
        assert "County medical community" in page.text
        assert "Tight" in page.text
