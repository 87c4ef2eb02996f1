"""The actor behind a request: who, in which role, at which institution."""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.auth.enums import Role


@dataclass(frozen=True)
class Actor:
    user_id: str | None
    username: str
    role: Role
    institution_id: str | None
    client_id: str | None = None
    person_id: str | None = None
    ip: str | None = None

    @property
    def is_system(self) -> bool:
        return self.client_id is not None


ANONYMOUS_NAME = "anonymous"
