"""Operator commands, run as an operator would: a fresh process on a fresh database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from medalliance.app import create_app
from medalliance.db import make_engine


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDALLIANCE_DATABASE_URL": url, "MEDALLIANCE_ENVIRONMENT": "development"}
    return subprocess.run(
        [sys.executable, "-m", "medalliance.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class TestMemberSystems:
    def test_a_registered_system_gets_a_token_scoped_to_its_institution(
        self, tmp_path: Path
    ) -> None:
        url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
        assert _cli(url, "db", "upgrade").returncode == 0
        assert _cli(url, "demo", "load", "--scale", "small").returncode == 0
        made = _cli(
            url,
            "clients",
            "create",
            "t02-his",
            "--institution",
            "township-02",
            "--name",
            "青石镇卫生院 HIS",
        )
        assert made.returncode == 0, made.stderr
        secret = re.search(r"secret \(shown once\): (\S+)", made.stdout)
        assert secret
        engine = make_engine(url)
        app = create_app(sessionmaker=sessionmaker(engine, expire_on_commit=False))
        with TestClient(app) as client:
            token = client.post(
                "/api/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "t02-his",
                    "client_secret": secret.group(1),
                },
            )
            assert token.status_code == 200, token.text
            assert token.json()["institution_id"] == "township-02"
        engine.dispose()

    def test_an_unknown_institution_is_refused(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
        assert _cli(url, "db", "upgrade").returncode == 0
        made = _cli(url, "clients", "create", "x", "--institution", "nowhere")
        assert made.returncode != 0
        assert "nowhere" in made.stderr + made.stdout
