"""Settings refuse unsafe values outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from medalliance.config import DEFAULT_SECRET, Settings
from medalliance.demo.loader import Scale, load
from medalliance.errors import Forbidden


class TestSecretKey:
    def test_default_secret_is_refused_in_production(self) -> None:
        with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
            Settings(environment="production", secret_key=DEFAULT_SECRET)

    def test_short_secret_is_refused_in_production(self) -> None:
        with pytest.raises(ValidationError, match="at least 32"):
            Settings(environment="production", secret_key="short")

    def test_development_runs_with_the_default(self) -> None:
        assert Settings(environment="development", secret_key=DEFAULT_SECRET).is_development


class TestDemoLoad:
    def test_demo_users_with_known_password_are_refused_in_production(
        self, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MEDALLIANCE_ENVIRONMENT", "production")
        monkeypatch.setenv("MEDALLIANCE_SECRET_KEY", "x" * 40)
        from medalliance.config import get_settings

        get_settings.cache_clear()
        try:
            with pytest.raises(Forbidden):
                load(db, scale=Scale.SMALL, seed=1)
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
