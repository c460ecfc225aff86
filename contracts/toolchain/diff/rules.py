"""The breaking-change rules: a stable id, a name and a fixed severity for each kind of change."""

from __future__ import annotations

from contracts.toolchain.diff.model import ChangeSeverity, DiffRule

_B, _N, _I = ChangeSeverity.BREAKING, ChangeSeverity.NON_BREAKING, ChangeSeverity.INFO

PATH_REMOVED = DiffRule("BRK-001", "path-removed", _B, "A path is gone; every call to it fails.")
OPERATION_REMOVED = DiffRule("BRK-002", "operation-removed", _B, "A method on a path is gone.")
OPERATION_ID_CHANGED = DiffRule(
    "BRK-003", "operation-id-changed", _B, "operationId changed or removed: generated clients lose the method."
)
SERVER_URL_CHANGED = DiffRule(
    "BRK-004", "server-url-changed", _B, "The base URL moved; every client must be reconfigured."
)
SECURITY_TIGHTENED = DiffRule(
    "BRK-005",
    "security-tightened",
    _B,
    "An operation needs a scope (or scheme) that existing clients were not granted.",
)
REQUEST_PROPERTY_REQUIRED = DiffRule(
    "BRK-010", "request-property-required", _B, "A request property is new and required, or became required."
)
PARAMETER_REQUIRED_ADDED = DiffRule(
    "BRK-011", "parameter-required-added", _B, "A new required query, header or path parameter."
)
PARAMETER_MADE_REQUIRED = DiffRule("BRK-012", "parameter-made-required", _B, "An optional parameter became required.")
REQUEST_PROPERTY_REJECTED = DiffRule(
    "BRK-013",
    "request-property-rejected",
    _B,
    "A request property was removed from an object that forbids unknown properties: sending it now fails.",
)
PARAMETER_REMOVED = DiffRule(
    "BRK-014", "parameter-removed", _B, "A query parameter was removed; the gateway rejects unknown query parameters."
)
REQUEST_BODY_REQUIRED = DiffRule("BRK-015", "request-body-required", _B, "A request body became required.")
REQUEST_BODY_REMOVED = DiffRule("BRK-016", "request-body-removed", _B, "The operation no longer takes a body.")
TYPE_CHANGED = DiffRule(
    "BRK-020", "type-changed", _B, "A request type narrowed or changed, or a response type widened or changed."
)
ENUM_NARROWED = DiffRule("BRK-021", "enum-narrowed", _B, "A request enum lost values (or gained an enum).")
ENUM_WIDENED = DiffRule("BRK-022", "enum-widened", _B, "A response enum gained values clients may not handle.")
RESPONSE_PROPERTY_REMOVED = DiffRule("BRK-023", "response-property-removed", _B, "A response property is gone.")
RESPONSE_PROPERTY_OPTIONAL = DiffRule(
    "BRK-024", "response-property-optional", _B, "A response property that was always present is now optional."
)
SUCCESS_STATUS_REMOVED = DiffRule("BRK-025", "success-status-removed", _B, "A success (2xx/3xx) response is gone.")
MEDIA_TYPE_CHANGED = DiffRule(
    "BRK-026", "media-type-changed", _B, "A request or response media type is no longer offered."
)
REQUEST_CONSTRAINT_TIGHTENED = DiffRule(
    "BRK-027",
    "request-constraint-tightened",
    _B,
    "A request bound tightened (maxLength, maximum, minimum, pattern, ...): valid requests now fail.",
)
RESPONSE_CONSTRAINT_LOOSENED = DiffRule(
    "BRK-028", "response-constraint-loosened", _B, "A response bound loosened: clients sized for the old bound break."
)
FORMAT_CHANGED = DiffRule("BRK-029", "format-changed", _B, "A string format changed (date -> date-time, ...).")
SCHEMA_VARIANT_CHANGED = DiffRule(
    "BRK-030", "schema-variant-changed", _B, "A oneOf/anyOf variant was removed from a request or added to a response."
)
RESPONSE_HEADER_REMOVED = DiffRule("BRK-031", "response-header-removed", _B, "A response header is gone.")
PROPERTY_RENAMED = DiffRule(
    "BRK-032",
    "property-renamed",
    _B,
    "A property was removed and another added in its place: clients must send and read the new name.",
)
MESSAGE_REMOVED = DiffRule(
    "BRK-033", "message-removed", _B, "An event type (AsyncAPI message) is no longer published: consumers wait in vain."
)

PATH_ADDED = DiffRule("ADD-001", "path-added", _N, "A new path.")
OPERATION_ADDED = DiffRule("ADD-002", "operation-added", _N, "A new method on a path.")
OPTIONAL_PARAMETER_ADDED = DiffRule("ADD-003", "optional-parameter-added", _N, "A new optional parameter.")
OPTIONAL_REQUEST_PROPERTY_ADDED = DiffRule(
    "ADD-004", "optional-request-property-added", _N, "A new optional request property."
)
RESPONSE_PROPERTY_ADDED = DiffRule("ADD-005", "response-property-added", _N, "A new response property.")
RESPONSE_STATUS_ADDED = DiffRule("ADD-006", "response-status-added", _N, "A new response status.")
MEDIA_TYPE_ADDED = DiffRule("ADD-007", "media-type-added", _N, "A new request or response media type.")
REQUEST_RELAXED = DiffRule(
    "ADD-008", "request-relaxed", _N, "The request accepts more: wider type or enum, looser bound, optional field."
)
RESPONSE_TIGHTENED = DiffRule(
    "ADD-009", "response-tightened", _N, "The response promises more: narrower type or enum, tighter bound."
)
SECURITY_RELAXED = DiffRule("ADD-010", "security-relaxed", _N, "An operation needs fewer scopes than before.")
RESPONSE_HEADER_ADDED = DiffRule("ADD-011", "response-header-added", _N, "A new response header.")

MESSAGE_ADDED = DiffRule(
    "ADD-012", "message-added", _N, "A new event type (AsyncAPI message): consumers skip types they do not know."
)
CONTRACT_VERSION_CHANGED = DiffRule("INF-001", "contract-version-changed", _I, "info.version changed.")
LIFECYCLE_CHANGED = DiffRule("INF-002", "lifecycle-changed", _I, "x-lifecycle or x-sunset changed.")
OPERATION_DEPRECATED = DiffRule("INF-003", "operation-deprecated", _I, "An operation is now deprecated.")
REQUEST_PROPERTY_REMOVED = DiffRule(
    "INF-004", "request-property-removed", _I, "A request property was removed; it is still accepted and ignored."
)
ERROR_STATUS_REMOVED = DiffRule("INF-005", "error-status-removed", _I, "An error response is no longer documented.")
HEADER_PARAMETER_REMOVED = DiffRule(
    "INF-006", "header-parameter-removed", _I, "A header or cookie parameter is no longer read."
)
PATH_PARAMETER_RENAMED = DiffRule(
    "INF-007", "path-parameter-renamed", _I, "A path parameter was renamed; the URL is unchanged."
)
LIFECYCLE_HEADERS_DROPPED = DiffRule(
    "INF-008",
    "lifecycle-headers-dropped",
    _I,
    "Deprecation, Sunset and Link headers are no longer sent: the new version is not deprecated.",
)

DIFF_RULES: tuple[DiffRule, ...] = (
    PATH_REMOVED,
    OPERATION_REMOVED,
    OPERATION_ID_CHANGED,
    SERVER_URL_CHANGED,
    SECURITY_TIGHTENED,
    REQUEST_PROPERTY_REQUIRED,
    PARAMETER_REQUIRED_ADDED,
    PARAMETER_MADE_REQUIRED,
    REQUEST_PROPERTY_REJECTED,
    PARAMETER_REMOVED,
    REQUEST_BODY_REQUIRED,
    REQUEST_BODY_REMOVED,
    TYPE_CHANGED,
    ENUM_NARROWED,
    ENUM_WIDENED,
    RESPONSE_PROPERTY_REMOVED,
    RESPONSE_PROPERTY_OPTIONAL,
    SUCCESS_STATUS_REMOVED,
    MEDIA_TYPE_CHANGED,
    REQUEST_CONSTRAINT_TIGHTENED,
    RESPONSE_CONSTRAINT_LOOSENED,
    FORMAT_CHANGED,
    SCHEMA_VARIANT_CHANGED,
    RESPONSE_HEADER_REMOVED,
    PROPERTY_RENAMED,
    PATH_ADDED,
    OPERATION_ADDED,
    OPTIONAL_PARAMETER_ADDED,
    OPTIONAL_REQUEST_PROPERTY_ADDED,
    RESPONSE_PROPERTY_ADDED,
    RESPONSE_STATUS_ADDED,
    MEDIA_TYPE_ADDED,
    REQUEST_RELAXED,
    RESPONSE_TIGHTENED,
    SECURITY_RELAXED,
    RESPONSE_HEADER_ADDED,
    CONTRACT_VERSION_CHANGED,
    LIFECYCLE_CHANGED,
    OPERATION_DEPRECATED,
    REQUEST_PROPERTY_REMOVED,
    ERROR_STATUS_REMOVED,
    HEADER_PARAMETER_REMOVED,
    PATH_PARAMETER_RENAMED,
    LIFECYCLE_HEADERS_DROPPED,
)

# The rules only an AsyncAPI event contract can break (contracts/toolchain/diff/asyncapi.py); its payloads are
# judged by the rules above.
ASYNCAPI_RULES: tuple[DiffRule, ...] = (MESSAGE_REMOVED, MESSAGE_ADDED)
