"""Narrow calls into the auth domain for the MLLP listener, which has no token to read.

TODO(auth): auth.service has no lookup of a member system by client id or by institution
(only ``client_login``, which needs the secret). Until it does, these two queries read the
``api_client`` table here; move them to ``auth.service.get_client`` / ``clients_of``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.models import ApiClient
from medalliance.auth.principal import Actor


def _actor(client: ApiClient) -> Actor:
    return Actor(
        user_id=None,
        username=client.name,
        role=Role.SYSTEM,
        institution_id=client.institution_id,
        client_id=client.client_id,
    )


def system_by_client_id(db: Session, client_id: str) -> Actor | None:
    client = db.get(ApiClient, client_id)
    return _actor(client) if client is not None and client.active else None


def only_system_of(db: Session, institution_id: str) -> Actor | None:
    """The institution's member system when it has exactly one active one."""
    clients = db.scalars(
        select(ApiClient).where(ApiClient.institution_id == institution_id, ApiClient.active)
    ).all()
    return _actor(clients[0]) if len(clients) == 1 else None
