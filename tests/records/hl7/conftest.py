"""Fixtures for HL7 v2 inbound tests: the county hospital's HIS posting ER7 messages."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers import system_bearer

ER7 = "x-application/hl7-v2+er7"
Send = Callable[[bytes], httpx.Response]


@pytest.fixture
def his_headers(client: TestClient) -> dict[str, str]:
    return system_bearer(client)


@pytest.fixture
def send(client: TestClient, his_headers: dict[str, str]) -> Send:
    def post(message: bytes) -> httpx.Response:
        headers = {**his_headers, "Content-Type": ER7}
        return client.post("/api/hl7v2", content=message, headers=headers)

    return post
