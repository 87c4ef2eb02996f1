"""Authentication rules: password login with lockout, client credentials, user admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.audit.enums import Outcome
from medalliance.auth import repository
from medalliance.auth.enums import Role
from medalliance.auth.models import ApiClient, Membership, User
from medalliance.auth.passwords import hash_password, verify_password
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Conflict, NotFound
from medalliance.kit.ids import new_id

log = structlog.get_logger(__name__)

INVALID_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True)
class LoginResult:
    actor: Actor | None
    error: str | None = None


def login(
    db: Session,
    username: str,
    password: str,
    *,
    ip: str | None,
    now: datetime,
    institution_id: str | None = None,
) -> LoginResult:
    """Check a password; failures are counted, audited and may lock the account.

    Returns a result instead of raising so that the caller commits the failure
    count and its audit row.
    """
    user = repository.user_by_username(db, username)
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None or not user.active:
        audit.record(
            db,
            None,
            "auth.login",
            outcome=Outcome.FAILURE,
            username=username,
            ip=ip,
            detail={"reason": "unknown or inactive user"},
        )
        return LoginResult(None, INVALID_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        audit.record(
            db,
            None,
            "auth.login",
            outcome=Outcome.DENIED,
            username=username,
            ip=ip,
            detail={"reason": "account locked"},
        )
        return LoginResult(None, "account is locked after repeated failed logins; try later")
    if not password_ok:
        _count_failure(db, user, ip=ip, now=now)
        return LoginResult(None, INVALID_CREDENTIALS)
    membership = _choose_membership(db, user, institution_id)
    if membership is None:
        audit.record(
            db,
            None,
            "auth.login",
            outcome=Outcome.DENIED,
            username=username,
            ip=ip,
            detail={"reason": "no active role at this institution"},
        )
        return LoginResult(None, "no active role at this institution")
    user.failed_logins = 0
    user.locked_until = None
    actor = actor_for(user, membership, ip=ip)
    audit.record(db, actor, "auth.login", resource_type="User", resource_id=user.id)
    return LoginResult(actor)


def _count_failure(db: Session, user: User, *, ip: str | None, now: datetime) -> None:
    settings = get_settings()
    user.failed_logins += 1
    detail: dict[str, object] = {"reason": "wrong password", "failed_logins": user.failed_logins}
    if user.failed_logins >= settings.lockout_threshold:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        user.failed_logins = 0
        detail["locked_until"] = user.locked_until.isoformat()
        log.warning("account_locked", username=user.username, ip=ip)
    audit.record(
        db,
        None,
        "auth.login",
        outcome=Outcome.FAILURE,
        username=user.username,
        ip=ip,
        resource_type="User",
        resource_id=user.id,
        detail=detail,
    )


def _choose_membership(db: Session, user: User, institution_id: str | None) -> Membership | None:
    for membership in repository.memberships(db, user.id):
        if institution_id is None or membership.institution_id == institution_id:
            return membership
    return None


def actor_for(user: User, membership: Membership, *, ip: str | None) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        role=Role(membership.role),
        institution_id=membership.institution_id,
        person_id=user.person_id,
        ip=ip,
    )


def session_actor(
    db: Session, user_id: str, membership_id: int, *, ip: str | None, now: datetime
) -> Actor | None:
    """The actor behind a page session, or None when the account is no longer usable."""
    user = repository.user_by_id(db, user_id)
    if user is None or not user.active or (user.locked_until and user.locked_until > now):
        return None
    membership = next(
        (m for m in repository.memberships(db, user.id) if m.id == membership_id), None
    )
    return actor_for(user, membership, ip=ip) if membership else None


def membership_of(db: Session, actor: Actor) -> Membership | None:
    if actor.user_id is None:
        return None
    return next(
        (
            m
            for m in repository.memberships(db, actor.user_id)
            if m.institution_id == actor.institution_id and m.role == actor.role
        ),
        None,
    )


def client_login(db: Session, client_id: str, secret: str, *, ip: str | None) -> LoginResult:
    client = repository.client_by_id(db, client_id)
    if client is None or not client.active or not verify_password(client.secret_hash, secret):
        audit.record(db, None, "auth.client", outcome=Outcome.FAILURE, username=client_id, ip=ip)
        return LoginResult(None, "invalid client credentials")
    actor = Actor(
        user_id=None,
        username=client.name,
        role=Role.SYSTEM,
        institution_id=client.institution_id,
        client_id=client.client_id,
        ip=ip,
    )
    audit.record(db, actor, "auth.client", resource_type="Device", resource_id=client.client_id)
    return LoginResult(actor)


def create_user(
    db: Session,
    actor: Actor | None,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: list[tuple[str, Role]],
    practitioner_id: str | None = None,
    person_id: str | None = None,
) -> User:
    if repository.user_by_username(db, username) is not None:
        raise Conflict(f"username {username!r} is taken", field="username")
    user = User(
        id=new_id(),
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        practitioner_id=practitioner_id,
        person_id=person_id,
        failed_logins=0,
        active=True,
    )
    db.add(user)
    db.flush()
    for institution_id, role in roles:
        db.add(Membership(user_id=user.id, institution_id=institution_id, role=role.value))
    db.flush()
    audit.record(
        db,
        actor,
        "user.create",
        resource_type="User",
        resource_id=user.id,
        detail={"username": username, "roles": [r.value for _, r in roles]},
    )
    return user


def create_client(
    db: Session,
    actor: Actor | None,
    *,
    client_id: str,
    secret: str,
    name: str,
    institution_id: str,
) -> ApiClient:
    if repository.client_by_id(db, client_id) is not None:
        raise Conflict(f"client {client_id!r} exists", field="client_id")
    client = ApiClient(
        client_id=client_id,
        secret_hash=hash_password(secret),
        name=name,
        institution_id=institution_id,
        active=True,
    )
    db.add(client)
    db.flush()
    audit.record(db, actor, "client.create", resource_type="Device", resource_id=client_id)
    return client


def get_user(db: Session, user_id: str) -> User:
    user = repository.user_by_id(db, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def has_users(db: Session) -> bool:
    return repository.any_user(db)


def memberships_of(db: Session, actor: Actor) -> list[Membership]:
    if actor.user_id is None:
        return []
    return list(repository.memberships(db, actor.user_id))
