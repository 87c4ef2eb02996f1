"""Expiring JWT access tokens (HS256) for the API and member systems."""

from __future__ import annotations

import time
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


# Verified tokens by their exact text, until they expire: a member system sends the same
# token on every call, and checking the signature again each time was ~3% of a FHIR request.
# Safe because a JWT is immutable and not revocable here; expiry is re-checked on each hit.
_VERIFIED: dict[tuple[str, str], tuple[Actor, float]] = {}
_VERIFIED_MAX = 4096


def read_token(token: str) -> Actor:
    key = (get_settings().secret_key, token)
    hit = _VERIFIED.get(key)
    if hit is not None and hit[1] > time.time():
        return hit[0]
    actor, expires = _verify(token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = (actor, expires)
    return actor


def _verify(token: str) -> tuple[Actor, float]:
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
    actor = Actor(
        user_id=None if client_id else claims["sub"],
        username=claims.get("name", ""),
        role=Role(claims["role"]),
        institution_id=claims.get("inst"),
        client_id=client_id,
        person_id=claims.get("pid"),
    )
    return actor, float(claims["exp"])
