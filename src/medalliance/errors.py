"""Domain errors carry their HTTP status; edges render them (problem+json or page message)."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    # The FHIR IssueType of its OperationOutcome, where the status's own does not say it.
    issue: ClassVar[str | None] = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid-transition"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition-failed"


class ValidationFailed(DomainError):
    """A payload that parses but breaks a domain rule (e.g. ID number check digit)."""

    status = 422
    code = "validation-failed"


class NotAcceptable(DomainError):
    status = 406
    code = "not-acceptable"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported-media-type"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"
