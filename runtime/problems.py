"""RFC 9457 problem details: the one error shape on the wire, for every process.

Domain code raises :class:`ProblemError` (or a subclass); the edge turns it into
``application/problem+json`` once. Problem types are stable, relative URIs documented in the catalog.
"""

from __future__ import annotations

from typing import Any

import msgspec

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "/catalog/problems/"

# Stable slug per HTTP status, used when a caller gives none.
_DEFAULT_SLUGS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable-content", "Unprocessable content"),
    428: ("precondition-required", "Precondition required"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    502: ("bad-gateway", "Bad gateway"),
    503: ("service-unavailable", "Service unavailable"),
    504: ("gateway-timeout", "Gateway timeout"),
}


class FieldError(msgspec.Struct):
    """One invalid field: ``pointer`` is an RFC 6901 JSON pointer into the request part named by ``location``."""

    pointer: str
    detail: str
    location: str = "body"


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    correlation_id: str | None = None
    errors: list[FieldError] | None = None
    # Extension members (RFC 9457 section 3.2), e.g. the missing scope or the tier that is down.
    extensions: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        if self.correlation_id is not None:
            body["correlation_id"] = self.correlation_id
        if self.errors:
            body["errors"] = [msgspec.to_builtins(e) for e in self.errors]
        if self.extensions:
            for key, value in self.extensions.items():
                body.setdefault(key, value)
        return body

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_dict())


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


def make_problem(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    correlation_id: str | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> Problem:
    default_slug, default_title = _DEFAULT_SLUGS.get(status, ("error", "Error"))
    return Problem(
        type=problem_type(slug or default_slug),
        title=title or default_title,
        status=status,
        detail=detail,
        instance=instance,
        correlation_id=correlation_id,
        errors=errors,
        extensions=extensions or None,
    )


class ProblemError(Exception):
    """Raise anywhere inside a request to answer with a problem. Subclasses fix status and slug."""

    status: int = 500
    slug: str | None = None
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or "")
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    def to_problem(self, correlation_id: str | None = None, instance: str | None = None) -> Problem:
        return make_problem(
            self.status,
            self.detail,
            slug=self.slug,
            title=self.title,
            errors=self.errors,
            correlation_id=correlation_id,
            instance=instance,
            **self.extensions,
        )


class BadRequest(ProblemError):
    status = 400


class NotFound(ProblemError):
    status = 404


class Conflict(ProblemError):
    status = 409


class Unprocessable(ProblemError):
    status = 422


class Unauthorized(ProblemError):
    status = 401


class Forbidden(ProblemError):
    status = 403


class UpstreamError(ProblemError):
    """A system we depend on answered badly (502), timed out (504) or is down (503)."""

    status = 502
