"""Auth payloads."""

from __future__ import annotations

from pydantic import BaseModel


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    institution_id: str | None


class MembershipRead(BaseModel):
    institution_id: str
    role: str


class MeRead(BaseModel):
    username: str
    role: str
    institution_id: str | None
    client_id: str | None
