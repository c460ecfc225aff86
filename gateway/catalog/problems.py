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
    "malformed-http": ProblemType(400, "Malformed HTTP request",
                                  "The bytes are not valid HTTP/1.1 (the gateway's parser refused them)."),
    "request-head-too-large": ProblemType(431, "Request head too large",
                                          "The request line and headers together exceed 64 KiB; the connection "
                                          "is closed."),
    "json-too-deep": ProblemType(400, "JSON nested too deeply",
                                 "The body nests deeper than the gateway accepts (`max_json_depth`)."),
    "invalid-idempotency-key": ProblemType(400, "Bad request", "Idempotency-Key: 1..200 visible ASCII."),
    "oauth2-invalid-request": ProblemType(400, "Bad token request",
                                          "The token request is malformed (RFC 6749 `invalid_request`)."),
    "oauth2-invalid-client": ProblemType(401, "Client authentication failed",
                                         "Unknown client, wrong secret or a revoked client (`invalid_client`)."),
    "oauth2-invalid-grant": ProblemType(400, "Invalid grant",
                                        "The code or credentials are invalid or expired (`invalid_grant`)."),
    "oauth2-unauthorized-client": ProblemType(400, "Unauthorized client",
                                              "This client may not use this grant type (`unauthorized_client`)."),
    "oauth2-unsupported-grant-type": ProblemType(400, "Unsupported grant type",
                                                 "No such grant here (`unsupported_grant_type`)."),
    "oauth2-invalid-scope": ProblemType(400, "Invalid scope",
                                        "A requested scope is unknown or not granted to the client (`invalid_scope`)."),
    "validation-failed": ProblemType(422, "Unprocessable content",
                                     "A system API refused the values; `errors` points at each one."),
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
    "cors-rejected": ProblemType(403, "Cross-origin request refused",
                                 "The page's origin is not among the gateway's allowed CORS origins."),
    "ip-not-allowed": ProblemType(403, "Forbidden", "The caller's address is not on this API's allow list."),
    "own-time": ProblemType(403, "Forbidden", "Nobody approves or rejects their own time or expenses."),
    "not-found": ProblemType(404, "Not found", "Nothing is published at this path."),
    "no-such-operation": ProblemType(404, "Not found", "The version is published; its contract has no such path."),
    "no-such-resource": ProblemType(404, "Not found",
                                    "A path segment holds an encoded '/' (%2F); no id has one."),
    "no-such-api": ProblemType(404, "Not found", "No API version is published at this path."),
    "unknown-id": ProblemType(404, "Not found", "No record has this id."),
    "method-not-allowed": ProblemType(405, "Method not allowed", "The path exists; the method does not."),
    "not-acceptable": ProblemType(406, "Not acceptable", "No media type the Accept header allows."),
    "conflict": ProblemType(409, "Conflict", "The request conflicts with the record's current state."),
    "invalid-transition": ProblemType(409, "Conflict", "That state change is not allowed from the current state."),
    "not-editable": ProblemType(409, "Conflict", "The entry is past draft (`state`): correct it instead."),
    "not-correctable": ProblemType(409, "Conflict",
                                   "A draft or rejected entry is edited, not corrected by request (`state`)."),
    "already-superseded": ProblemType(409, "Conflict", "The entry was corrected already; correct the newest version."),
    "correction-open": ProblemType(409, "Conflict", "A correction of this entry is open already."),
    "not-retryable": ProblemType(409, "Conflict", "Exceptions of this kind cannot be retried; resolve them instead."),
    "dimension-conflict": ProblemType(409, "Conflict",
                                      "The project already has another ERP dimension, or the code belongs to another "
                                      "project (`existing`)."),
    "idempotency-key-in-use": ProblemType(409, "Conflict",
                                          "A request with this Idempotency-Key is still running; retry after "
                                          "`Retry-After`."),
    "precondition-failed": ProblemType(412, "Precondition failed", "If-Match names an old version; read it again."),
    "payload-too-large": ProblemType(413, "Payload too large", "The body is larger than this API accepts."),
    "unsupported-media-type": ProblemType(415, "Unsupported media type", "Send application/json."),
    "unprocessable-content": ProblemType(422, "Unprocessable content", "Well-formed, but breaks a business rule."),
    "not-own-entry": ProblemType(422, "Unprocessable content",
                                 "A time entry in the request belongs to someone else; `errors` points at it."),
    "worker-terminated": ProblemType(422, "Unprocessable content",
                                     "The worker's last day (HR's termination date) is before the work date: "
                                     "`reason_code` is WORKER_TERMINATED, `termination_date` the last day."),
    "period-closed": ProblemType(422, "Unprocessable content", "The ERP's accounting period for that date is closed."),
    "admin-change-refused": ProblemType(422, "Change refused",
                                        "The admin API refused the change (it would leave the policy invalid)."),
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
    "already-recognized": ProblemType(409, "Conflict", "The contract's period is recognised already at another "
                                      "amount (`existing_id`); revenue is recognised once per period."),
    "not-supported": ProblemType(422, "Unprocessable content",
                                 "This backend has no such concept (for example revenue schedules on Tryton); "
                                 "the detail says where it is supported."),
    "write-off-exceeds-recognisable": ProblemType(422, "Unprocessable content",
                                                  "The write-off is more than the contract's schedule has left to "
                                                  "recognise; `errors` says the most it may be."),
    "percent-complete-unmeasurable": ProblemType(422, "Unprocessable content",
                                                 "A percent-complete contract's progress cannot be measured: no "
                                                 "budgeted cost, a worker without an HR cost rate on a posted day, "
                                                 "or a cost currency without a planning rate."),
    # Tax and e-invoicing (README, "Tax and e-invoicing").
    "no-e-invoice": ProblemType(404, "Not found", "The invoice has no e-invoice yet: it is rendered when the "
                                "invoice is posted."),
    "unknown-legal-entity": ProblemType(422, "Unprocessable content",
                                        "The contract's legal entity is not known, so no tax jurisdiction applies."),
    "tax-refused": ProblemType(422, "Unprocessable content",
                               "The region's tax engine refused the calculation; `detail` gives its reason."),
    "unsupported-country": ProblemType(422, "Unprocessable content",
                                       "No tax engine covers this country (or US state); see `errors`."),
    "invalid-vat-number": ProblemType(400, "Bad request", "The VAT number is malformed or fails its check digits "
                                      "for its country; `errors` points at it."),
    "currency-mismatch": ProblemType(422, "Unprocessable content",
                                     "The lines are not in the invoice's currency; one currency per invoice."),
    "tax-service-unavailable": ProblemType(503, "Service unavailable",
                                           "The region's tax engine is down; that region's invoices wait in the "
                                           "exception queue (TAX_SERVICE_UNAVAILABLE) and are retried."),
    "not-implemented": ProblemType(501, "Not implemented", "The contract's mock has no success example for this "
                                   "operation (`psgw contracts mock`); ask for a documented status with "
                                   "`Prefer: code=NNN`."),
    "sources-reserved": ProblemType(409, "Conflict", "Another invoice holds these sources (`sources`)."),
    "draft-outdated": ProblemType(409, "Conflict", "Time on the draft was corrected after it was drafted "
                                  "(`time_entry_ids`); void the draft and draft the period again."),
    "draft-exists": ProblemType(409, "Conflict", "The period got another invoice meanwhile; draft again."),
    "invoice-voided": ProblemType(410, "Gone", "The draft was voided; the ERP keeps it as void."),
    "precondition-required": ProblemType(428, "Precondition required",
                                         "Send If-Match with the version you last read (its ETag)."),
    "rate-limited": ProblemType(429, "Too many requests", "Over the rate limit or quota; see `Retry-After`."),
    "internal-error": ProblemType(500, "Internal error", "Unexpected; quote the correlation id to the operators."),
    "bad-gateway": ProblemType(502, "Bad gateway", "A dependency answered badly."),
    "downstream-error": ProblemType(502, "Bad gateway", "A system of record failed; `downstream` names it."),
    "response-contract-violation": ProblemType(502, "Bad gateway",
                                               "A tier answered outside its contract; the gateway did not pass it on."),
    "token-refused": ProblemType(502, "Bad gateway", "The gateway refused the page's own client credentials."),
    "upstream-circuit-open": ProblemType(503, "Upstream unavailable",
                                         "A tier failed repeatedly; calls pause (`Retry-After`)."),
    "downstream-saturated": ProblemType(503, "Service unavailable",
                                        "A system of record has every connection busy; retry after `Retry-After`."),
    "vendor-limit-exceeded": ProblemType(503, "Service unavailable",
                                         "A vendor's API limit is reached; `downstream` names it, retry after "
                                         "`Retry-After`."),
    "rate-limit-unavailable": ProblemType(503, "Rate limiting unavailable",
                                          "The rate-limit store is unreachable and this API fails closed."),
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
