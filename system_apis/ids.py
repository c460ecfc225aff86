"""Canonical ids: a type prefix plus the business key of the system of record.

Systems share business keys (employee numbers, project codes), not internal ids, so a canonical id can be
derived without a lookup: employee ``E1001`` is ``wrk_e1001``, project ``PRJ-4001`` is ``prj_4001``.
Internal vendor ids (integers, GUIDs, Salesforce ids) never leave the connectors.
"""

from __future__ import annotations

from typing import Literal

from runtime.problems import FieldError, NotFound, Unprocessable

Kind = Literal[
    "worker", "project", "task", "assignment", "customer", "contract", "time_entry", "opportunity", "milestone",
    "legal_entity", "business_unit", "rate_card", "invoice", "expense", "cost_center", "posting",
    "project_dimension", "revenue_schedule", "credit_note", "delivery",
]

# kind -> (canonical prefix, business-key prefix stripped from the key)
_FORMS: dict[str, tuple[str, str]] = {
    "worker": ("wrk_", ""),
    "project": ("prj_", "PRJ-"),
    "task": ("tsk_", "PRJ-"),
    "assignment": ("asg_", "ASG-"),
    "customer": ("cus_", "C-"),
    "contract": ("ctr_", "SOW-"),
    "time_entry": ("te_", "TC-"),
    "opportunity": ("opp_", "OPP-"),
    "milestone": ("ms_", "MS-"),
    "legal_entity": ("le_", "LE-"),
    "business_unit": ("bu_", "BU-"),
    "rate_card": ("rc_", "RC-"),
    "invoice": ("inv_", "INV-"),
    "expense": ("exp_", "EX-"),
    "cost_center": ("cc_", "CC-"),
    "posting": ("pst_", "JE-"),
    "project_dimension": ("dim_", "P-"),
    "revenue_schedule": ("rev_", "RS-"),
    "credit_note": ("crn_", "CM-"),
    "delivery": ("dlv_", "AP-"),
}


def to_canonical(kind: Kind, business_key: str) -> str:
    prefix, strip = _FORMS[kind]
    key = business_key[len(strip):] if strip and business_key.startswith(strip) else business_key
    return prefix + key.lower()


def to_business_key(kind: Kind, canonical_id: str) -> str:
    """The business key for a canonical id; a malformed id is simply not found (404), never a 500."""
    prefix, strip = _FORMS[kind]
    if not canonical_id.startswith(prefix) or len(canonical_id) == len(prefix):
        raise NotFound(f"no {kind.replace('_', ' ')} {canonical_id!r}", slug="unknown-id")
    return strip + canonical_id[len(prefix):].upper()


def is_canonical(kind: Kind, canonical_id: str) -> bool:
    prefix, _ = _FORMS[kind]
    return canonical_id.startswith(prefix) and len(canonical_id) > len(prefix)


def reference(kind: Kind, canonical_id: str, pointer: str) -> str:
    """The business key of an id named in a request body: a malformed one is a 422 on that field, not a 404."""
    if not is_canonical(kind, canonical_id):
        prefix, _ = _FORMS[kind]
        raise Unprocessable(f"{pointer[1:]} must be a {kind.replace('_', ' ')} id ({prefix}...)",
                            slug="validation-failed",
                            errors=[FieldError(pointer=pointer, detail=f"not a {kind.replace('_', ' ')} id")])
    return to_business_key(kind, canonical_id)


def unknown_reference(kind: Kind, canonical_id: str, pointer: str) -> Unprocessable:
    """A well-formed id in a request body that names no record."""
    what = kind.replace("_", " ")
    return Unprocessable(f"no {what} {canonical_id!r}", slug="validation-failed",
                         errors=[FieldError(pointer=pointer, detail=f"no {what} {canonical_id!r}")])
