"""Translation of every error to problem+json, once, at the edge of each Litestar app."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from runtime import correlation
from runtime.problems import PROBLEM_CONTENT_TYPE, FieldError, Problem, ProblemError, make_problem

log = logging.getLogger("runtime.errors")

_MSGSPEC_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING_FIELD = re.compile(r"missing required field `(?P<field>[^`]+)`")


def _pointer_from_msgspec_path(path: str) -> str:
    # msgspec says `$.lines[2].hours`; RFC 6901 says /lines/2/hours.
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    return "".join("/" + (name or index).replace("~", "~0").replace("/", "~1") for name, index in parts)


def field_errors(extra: Any) -> list[FieldError]:
    """Litestar's validation ``extra`` (list of {message, key, source}) as JSON-pointer field errors."""
    errors: list[FieldError] = []
    if not isinstance(extra, list):
        return errors
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        source = item.get("source") or "body"
        location = str(getattr(source, "value", source))
        key = str(item.get("key") or "")
        pointer = ""
        match = _MSGSPEC_PATH.search(message)
        if match:
            pointer = _pointer_from_msgspec_path(match.group("path"))
            message = message[: match.start()]
        missing = _MISSING_FIELD.search(message)
        if missing:
            pointer = pointer + "/" + missing.group("field")
        if location != "body":
            pointer = "/" + key
        elif not pointer and key and key != "data":
            # Litestar gives msgspec's path without "$.": "lines[1].hours" (dict values show as "[...]").
            pointer = _pointer_from_msgspec_path("." + key.replace("[...]", ""))
        errors.append(FieldError(pointer=pointer, detail=message, location=location))
    return errors


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=problem.to_json(),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    correlation_id = correlation.current_correlation_id()
    instance = request.url.path
    if isinstance(exc, ProblemError):
        return problem_response(exc.to_problem(correlation_id, instance), exc.headers)
    if isinstance(exc, ValidationException):
        problem = make_problem(
            400,
            "the request does not match the contract",
            slug="validation-error",
            title="Invalid request",
            errors=field_errors(exc.extra) or None,
            correlation_id=correlation_id,
            instance=instance,
        )
        return problem_response(problem)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status >= 500:
            log.error("http error", exc_info=exc)
        detail = exc.detail if status < 500 else None
        if status == 400 and detail and detail.startswith("JSON is malformed"):
            problem = make_problem(400, detail, slug="malformed-json", title="Malformed JSON",
                                   correlation_id=correlation_id, instance=instance)
        else:
            problem = make_problem(status, detail, correlation_id=correlation_id, instance=instance)
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return problem_response(problem, headers or None)
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        make_problem(500, "an unexpected error occurred; quote the correlation id to the operators",
                     correlation_id=correlation_id, instance=instance)
    )
