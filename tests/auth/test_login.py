"""Password login on the page and the API: credentials, lockout, CSRF, sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import DEMO_PASSWORD, bearer, csrf_from, page_login
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.auth.tokens import issue_token
from medalliance.config import get_settings
from medalliance.kit.clock import utcnow


def _token_attempt(client: TestClient, username: str, password: str) -> int:
    response = client.post(
        "/api/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    return response.status_code


class TestPasswordGrant:
    def test_right_password_gets_expiring_token(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token",
            data={"grant_type": "password", "username": "doctor", "password": DEMO_PASSWORD},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["role"] == "doctor"
        assert body["institution_id"] == "township-01"
        assert body["expires_in"] == get_settings().access_token_minutes * 60

    def test_wrong_password_does_not_log_in(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token",
            data={"grant_type": "password", "username": "doctor", "password": "wrong"},
        )
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"] == "invalid username or password"

    def test_unknown_user_gets_the_same_answer_as_wrong_password(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token",
            data={"grant_type": "password", "username": "nobody", "password": "x"},
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid username or password"

    def test_empty_password_is_a_bad_request(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token", data={"grant_type": "password", "username": "doctor", "password": ""}
        )
        assert response.status_code == 400
        assert "password" in response.json()["detail"]

    def test_unsupported_grant_type_names_the_field(self, client: TestClient) -> None:
        response = client.post("/api/auth/token", data={"grant_type": "implicit"})
        assert response.status_code == 422
        assert "grant_type" in response.json()["detail"]

    def test_failed_and_successful_logins_are_audited(
        self, client: TestClient, db: Session
    ) -> None:
        _token_attempt(client, "reader", "wrong")
        _token_attempt(client, "reader", DEMO_PASSWORD)
        rows = db.scalars(
            select(AuditEvent).where(AuditEvent.username == "reader").order_by(AuditEvent.id)
        ).all()
        assert [(r.action, r.outcome) for r in rows][-2:] == [
            ("auth.login", "failure"),
            ("auth.login", "success"),
        ]


class TestLockout:
    def test_locked_account_cannot_log_in_even_with_right_password(
        self, client: TestClient, db: Session
    ) -> None:
        for _ in range(get_settings().lockout_threshold):
            assert _token_attempt(client, "specialist", "wrong") == 401
        response = client.post(
            "/api/auth/token",
            data={"grant_type": "password", "username": "specialist", "password": DEMO_PASSWORD},
        )
        assert response.status_code == 401
        assert "locked" in response.json()["detail"]
        denied = db.scalars(
            select(AuditEvent).where(
                AuditEvent.username == "specialist", AuditEvent.outcome == "denied"
            )
        ).all()
        assert denied

    def test_failures_below_threshold_do_not_lock(self, client: TestClient) -> None:
        for _ in range(get_settings().lockout_threshold - 1):
            _token_attempt(client, "coordinator", "wrong")
        assert _token_attempt(client, "coordinator", DEMO_PASSWORD) == 200


class TestBearerTokens:
    def test_token_reaches_protected_api(self, client: TestClient) -> None:
        response = client.get("/api/auth/me", headers=bearer(client, "family_doctor"))
        assert response.status_code == 200
        assert response.json()["role"] == "family_doctor"

    def test_expired_token_is_refused(self, client: TestClient) -> None:
        actor = Actor(user_id="u1", username="doctor", role=Role.DOCTOR, institution_id="x")
        token, _ = issue_token(actor, utcnow() - timedelta(hours=3))
        response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    def test_tampered_token_is_refused(self, client: TestClient) -> None:
        header = bearer(client, "doctor")["Authorization"]
        forged = header[:-4] + ("AAAA" if not header.endswith("AAAA") else "BBBB")
        response = client.get("/api/auth/me", headers={"Authorization": forged})
        assert response.status_code == 401

    def test_no_token_is_refused_with_problem_json(self, client: TestClient) -> None:
        response = client.get("/api/auth/me")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


class TestClientCredentials:
    def test_member_system_gets_token_scoped_to_its_institution(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "county-his",
                "client_secret": DEMO_PASSWORD,
            },
        )
        assert response.status_code == 200
        me = client.get(
            "/api/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
        ).json()
        assert me == {
            "username": "县人民医院 HIS",
            "role": "system",
            "institution_id": "county-hospital",
            "client_id": "county-his",
        }

    def test_wrong_client_secret_is_refused(self, client: TestClient) -> None:
        response = client.post(
            "/api/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "county-his",
                "client_secret": "nope",
            },
        )
        assert response.status_code == 401


HOME_HEADINGS = [
    ("admin", "Consortium administration", "医联体管理工作台"),
    ("coordinator", "Referral office", "转诊办工作台"),
    ("doctor", "Grassroots doctor workspace", "基层医生工作台"),
    ("specialist", "Specialist workspace", "专科医生工作台"),
    ("reader", "Reading workspace", "阅片工作台"),
    ("family_doctor", "Family doctor panel", "家庭医生工作台"),
    ("resident", "My health", "我的健康"),
    ("commission", "Performance appraisal", "绩效考核看板"),
]


class TestPageLogin:
    def test_login_sets_session_and_shows_role_home(self, client: TestClient) -> None:
        page_login(client, "coordinator")
        home = client.get("/")
        assert home.status_code == 200
        assert 'data-testid="home-title"' in home.text

    def test_wrong_password_on_page_shows_message_and_no_session(self, client: TestClient) -> None:
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login", data={"username": "admin", "password": "bad", "csrf_token": token}
        )
        assert response.status_code == 401
        assert 'data-testid="login-error"' in response.text
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_login_form_without_csrf_token_is_refused(self, client: TestClient) -> None:
        client.get("/login")
        response = client.post("/login", data={"username": "admin", "password": DEMO_PASSWORD})
        assert response.status_code == 403
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_logout_without_csrf_token_is_refused(self, client: TestClient) -> None:
        page_login(client, "admin")
        assert client.post("/logout", follow_redirects=False).status_code == 403
        assert client.get("/").status_code == 200

    def test_logout_with_csrf_token_ends_the_session(self, client: TestClient) -> None:
        page_login(client, "admin")
        token = csrf_from(client.get("/").text)
        client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_login_never_redirects_off_site(self, client: TestClient) -> None:
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login",
            data={
                "username": "admin",
                "password": DEMO_PASSWORD,
                "csrf_token": token,
                "next": "//evil.example/",
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"

    @pytest.mark.parametrize(("role", "english", "chinese"), HOME_HEADINGS)
    def test_every_demo_role_sees_its_own_home_in_both_languages(
        self, client: TestClient, role: str, english: str, chinese: str
    ) -> None:
        page_login(client, role)
        zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert f'data-testid="home-title">{chinese}<' in zh.text
        client.get("/lang/en")
        en = client.get("/", headers={"Accept-Language": "zh-CN"})  # the switch wins
        assert f'data-testid="home-title">{english}<' in en.text
