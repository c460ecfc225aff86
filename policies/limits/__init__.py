"""Size limits, allowed content types and JSON depth: checked on the headers first, then while the body is read,
then on the bytes read (a JSON body nested deeper than ``max_json_depth`` is refused before anything parses it).

The limits policy is the one that reads the request body (from ASGI ``receive``), so an oversized upload is
refused as soon as its ``Content-Length`` (or its running size) passes the limit, before it is buffered whole.
Rules select APIs by layer or id; the last matching rule wins, field by field.
"""

from __future__ import annotations

from typing import Any

import msgspec

from policies.exchange import ApiTarget, Exchange, Layer
from policies.registry import BuildContext, PolicySpec
from runtime.problems import FieldError, ProblemError
from runtime.untrusted import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING, json_depth_exceeds

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LimitsRule(msgspec.Struct, kw_only=True, frozen=True):
    layers: list[Layer] = []
    apis: list[str] = []  # API ids, e.g. experience/mobile-time
    max_body_bytes: int | None = None
    # Media types (no parameters) a body may have; an empty list allows any.
    allowed_content_types: list[str] | None = None
    max_json_depth: int | None = None

    def __post_init__(self) -> None:
        _check_depth(self.max_json_depth)

    def selects(self, api: ApiTarget) -> bool:
        return api.layer in self.layers or api.api_id in self.apis


class LimitsConfig(msgspec.Struct, kw_only=True, frozen=True):
    # None: the gateway-wide ``max_body_bytes``.
    max_body_bytes: int | None = None
    allowed_content_types: list[str] = []
    # Arrays and objects nested deeper than this get 400 before schema validation (parsers recurse).
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    rules: list[LimitsRule] = []

    def __post_init__(self) -> None:
        _check_depth(self.max_json_depth)


def _check_depth(depth: int | None) -> None:
    if depth is not None and not 1 <= depth <= MAX_JSON_DEPTH_CEILING:
        raise ValueError(f"max_json_depth must be between 1 and {MAX_JSON_DEPTH_CEILING} (the validator's own "
                         "recursion limit lies above that)")


class PayloadTooLarge(ProblemError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class JsonTooDeep(ProblemError):
    status = 400
    slug = "json-too-deep"
    title = "JSON nested too deeply"


class ContentTypeNotAllowed(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class Limits:
    name = "limits"

    def __init__(self, config: LimitsConfig, api: ApiTarget, default_max_body_bytes: int) -> None:
        max_body = config.max_body_bytes if config.max_body_bytes is not None else default_max_body_bytes
        types: list[str] = list(config.allowed_content_types)
        max_depth = config.max_json_depth
        for rule in config.rules:
            if rule.selects(api):
                if rule.max_body_bytes is not None:
                    max_body = rule.max_body_bytes
                if rule.max_json_depth is not None:
                    max_depth = rule.max_json_depth
                if rule.allowed_content_types is not None:
                    types = list(rule.allowed_content_types)
        self.max_body_bytes = max_body
        self.allowed_content_types = frozenset(t.lower() for t in types)
        self.max_json_depth = max_depth

    async def access(self, exchange: Exchange) -> None:
        declared = exchange.header(b"content-length")
        has_body = (declared not in (None, "0")) or exchange.header(b"transfer-encoding") is not None
        if has_body and self.allowed_content_types and exchange.method in BODY_METHODS:
            media_type = (exchange.header(b"content-type") or "").split(";", 1)[0].strip().lower()
            if media_type not in self.allowed_content_types:
                exchange.decisions[self.name] = "content_type_not_allowed"
                raise ContentTypeNotAllowed(
                    f"{media_type or 'a body without a content type'} is not accepted by {exchange.api.base_path}; "
                    f"send one of {', '.join(sorted(self.allowed_content_types))}",
                    reason="content_type_not_allowed", allowed=sorted(self.allowed_content_types))
        if has_body:  # without Content-Length or Transfer-Encoding a request has no body (RFC 9112 6.3)
            try:
                exchange.body = await read_body(exchange.receive, self.max_body_bytes, declared)
            except PayloadTooLarge:
                exchange.decisions[self.name] = "body_too_large"
                raise
        exchange.body_read = True
        if exchange.body and is_json(exchange.header(b"content-type")) and json_depth_exceeds(
                exchange.body, self.max_json_depth):
            exchange.decisions[self.name] = "json_too_deep"
            raise json_too_deep(self.max_json_depth)
        exchange.decisions[self.name] = "ok"


def is_json(content_type: str | None) -> bool:
    """application/json and every ``+json`` type (merge-patch, problem); no content type is read as JSON too."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def json_too_deep(limit: int) -> JsonTooDeep:
    return JsonTooDeep(f"the JSON body nests arrays or objects more than {limit} levels deep",
                       reason="json_too_deep", max_json_depth=limit,
                       errors=[FieldError(pointer="", detail=f"nested more than {limit} levels deep")])


async def read_body(receive: Any, limit: int, declared: str | None) -> bytes:
    """The whole request body, refused (413) as soon as it is known to pass ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}", reason="body_too_large",
                              limit_bytes=limit)
    if receive is None:
        return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", reason="body_too_large",
                                  limit_bytes=limit)
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _build(config: LimitsConfig, ctx: BuildContext) -> Limits:
    return Limits(config, ctx.api, ctx.services.max_body_bytes)


POLICY = PolicySpec(name="limits", config=LimitsConfig, priority=1200, build=_build, enabled_by_default=True,
                    summary="body size, content types and JSON depth; reads the request body")
