"""Every query of the auth domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.auth.models import ApiClient, Membership, User


def user_by_username(db: Session, username: str) -> User | None:
    return db.scalars(select(User).where(User.username == username)).first()


def user_by_id(db: Session, user_id: str) -> User | None:
    return db.get(User, user_id)


def memberships(db: Session, user_id: str) -> Sequence[Membership]:
    stmt = (
        select(Membership)
        .where(Membership.user_id == user_id, Membership.active.is_(True))
        .order_by(Membership.id)
    )
    return db.scalars(stmt).all()


def client_by_id(db: Session, client_id: str) -> ApiClient | None:
    return db.get(ApiClient, client_id)


def any_user(db: Session) -> bool:
    return db.scalars(select(User.id).limit(1)).first() is not None
