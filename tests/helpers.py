"""Small helpers shared by tests: logging in through the real endpoints, a real server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from medalliance.app import create_app
from medalliance.kit.serving import CoalescingHttpToolsProtocol

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


@contextmanager
def system_client(factory: sessionmaker[Session]) -> Iterator[TestClient]:
    """A client of an app on ``factory``'s database (one whose commits stay, unlike the
    tests' rolled-back session), sending FHIR JSON as the county hospital's HIS."""
    with TestClient(create_app(sessionmaker=factory)) as client:
        client.headers.update({**system_bearer(client), "Content-Type": "application/fhir+json"})
        yield client


def browser_login(page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the Chinese login page, as a person would (Playwright ``Page``)."""
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


@contextmanager
def uvicorn_in_thread(app: Any, **options: Any) -> Iterator[int]:
    """A real uvicorn server on a free local port, in a thread, speaking the HTTP protocol
    ``medalliance serve`` runs; yields the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        http=CoalescingHttpToolsProtocol,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
