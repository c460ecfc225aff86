"""The problem types psgateway answers with, documented at /catalog/problems (each ``type`` resolves there)."""

from __future__ import annotations

from typing import NamedTuple


class ProblemType(NamedTuple):
    status: int
    title: str
    meaning: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad-request": ProblemType(400, "Bad request", "The request cannot be understood as sent."),
    "malformed-json": ProblemType(400, "Malformed JSON", "The body is not valid JSON."),
    "validation-error": ProblemType(400, "Invalid request",
                                    "The request does not match the contract; `errors` points at each bad field."),
    "invalid-cursor": ProblemType(400, "Bad request", "The cursor was not returned by this API."),
    "invalid-token": ProblemType(401, "Authentication failed",
                                 "No valid bearer token; `reason` says why (missing, expired, wrong_issuer, ...)."),
    "unauthorized": ProblemType(401, "Authentication required", "Send a bearer token."),
    "insufficient-scope": ProblemType(403, "Forbidden", "The token lacks a scope; `missing_scopes` names it."),
    "layer-violation": ProblemType(403, "Forbidden",
                                   "The layer rule forbids the call: experience -> process -> system, "
                                   "and system writes only from the process tier."),
    "user-token-required": ProblemType(403, "Forbidden", "This API serves a person: use a user token."),
    "forbidden": ProblemType(403, "Forbidden", "The caller may not do this."),
    "own-time": ProblemType(403, "Forbidden", "Nobody approves or rejects their own time or expenses."),
    "not-found": ProblemType(404, "Not found", "Nothing is published at this path."),
    "no-such-api": ProblemType(404, "Not found", "No API version is published at this path."),
    "unknown-id": ProblemType(404, "Not found", "No record has this id."),
    "method-not-allowed": ProblemType(405, "Method not allowed", "The path exists; the method does not."),
    "conflict": ProblemType(409, "Conflict", "The request conflicts with the record's current state."),
    "invalid-transition": ProblemType(409, "Conflict", "That state change is not allowed from the current state."),
    "payload-too-large": ProblemType(413, "Payload too large", "The body is larger than this API accepts."),
    "unsupported-media-type": ProblemType(415, "Unsupported media type", "Send application/json."),
    "unprocessable-content": ProblemType(422, "Unprocessable content", "Well-formed, but breaks a business rule."),
    "idempotency-key-reused": ProblemType(422, "Unprocessable content",
                                          "This Idempotency-Key was used with a different request body."),
    # Invoicing by the contract's billing terms (README, "Billing policies"); each says its `reason`.
    "contract-not-active": ProblemType(422, "Unprocessable content",
                                       "Only an active contract is invoiced (`reason`: CONTRACT_NOT_ACTIVE, "
                                       "AMENDMENT_PENDING)."),
    "outside-contract-term": ProblemType(422, "Unprocessable content",
                                         "The period is outside the contract's term (`term_start`, `term_end`)."),
    "contract-value-exceeded": ProblemType(422, "Unprocessable content",
                                           "Cumulative billing would pass the contract's total value "
                                           "(`contract_value`, `billed`, `amount`, `remaining`)."),
    "nothing-to-invoice": ProblemType(422, "Unprocessable content",
                                      "The period has nothing to bill; `holds` says what was left out and why."),
    "milestone-already-billed": ProblemType(409, "Conflict",
                                            "Another invoice billed these milestones (`milestone_ids`)."),
    "sources-reserved": ProblemType(409, "Conflict", "Another invoice holds these sources (`sources`)."),
    "draft-outdated": ProblemType(409, "Conflict", "Time on the draft was corrected after it was drafted "
                                  "(`time_entry_ids`); void the draft and draft the period again."),
    "draft-exists": ProblemType(409, "Conflict", "The period got another invoice meanwhile; draft again."),
    "invoice-voided": ProblemType(410, "Gone", "The draft was voided; the ERP keeps it as void."),
    "rate-limited": ProblemType(429, "Too many requests", "Over the rate limit or quota; see `Retry-After`."),
    "internal-error": ProblemType(500, "Internal error", "Unexpected; quote the correlation id to the operators."),
    "bad-gateway": ProblemType(502, "Bad gateway", "A dependency answered badly."),
    "downstream-error": ProblemType(502, "Bad gateway", "A system of record failed; `downstream` names it."),
    "upstream-unavailable": ProblemType(503, "Upstream unavailable", "A tier is down; `upstream` names it."),
    "downstream-unavailable": ProblemType(503, "Service unavailable",
                                          "A system of record is unreachable; `downstream` names it."),
    "token-unavailable": ProblemType(503, "Service unavailable", "A tier could not obtain its own token."),
    "service-unavailable": ProblemType(503, "Service unavailable", "Temporarily unavailable; retry later."),
    "upstream-timeout": ProblemType(504, "Upstream timeout", "A tier did not answer in time."),
    "downstream-timeout": ProblemType(504, "Gateway timeout", "A system of record did not answer in time."),
    "not-supported-by-vendor": ProblemType(501, "Not implemented",
                                           "The vendor system behind this API cannot do this; `downstream` names it."),
    "gateway-timeout": ProblemType(504, "Gateway timeout", "A dependency did not answer in time."),
}
