"""Expiring JWT access tokens (HS256) for the API and member systems."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Unauthorized

_ALGORITHM = "HS256"
_AUDIENCE = "medalliance"


def issue_token(actor: Actor, now: datetime) -> tuple[str, int]:
    settings = get_settings()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": actor.user_id or f"client:{actor.client_id}",
        "name": actor.username,
        "role": actor.role.value,
        "inst": actor.institution_id,
        "cid": actor.client_id,
        "pid": actor.person_id,
        "aud": _AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    token = jwt.encode(claims, settings.secret_key, algorithm=_ALGORITHM)
    return token, int(lifetime.total_seconds())


def read_token(token: str) -> Actor:
    try:
        claims = jwt.decode(
            token,
            get_settings().secret_key,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("access token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid access token: {exc}") from exc
    client_id = claims.get("cid")
    return Actor(
        user_id=None if client_id else claims["sub"],
        username=claims.get("name", ""),
        role=Role(claims["role"]),
        institution_id=claims.get("inst"),
        client_id=client_id,
        person_id=claims.get("pid"),
    )
