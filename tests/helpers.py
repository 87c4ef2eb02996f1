"""Small helpers shared by tests: logging in through the real endpoints."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

DEMO_PASSWORD = "medalliance"


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def page_login(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def bearer(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    response = client.post(
        "/api/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def system_bearer(client: TestClient, client_id: str = "county-his") -> dict[str, str]:
    """A member system's token (client credentials), as its HIS would obtain one."""
    response = client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": DEMO_PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def browser_login(page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the Chinese login page, as a person would (Playwright ``Page``)."""
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
