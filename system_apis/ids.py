"""Canonical ids: a type prefix plus the business key of the system of record.

Systems share business keys (employee numbers, project codes), not internal ids, so a canonical id can be
derived without a lookup: employee ``E1001`` is ``wrk_e1001``, project ``PRJ-4001`` is ``prj_4001``.
Internal vendor ids (integers, GUIDs) never leave the connectors.
"""

from __future__ import annotations

from typing import Literal

from runtime.problems import NotFound

Kind = Literal[
    "worker", "project", "task", "assignment", "customer", "contract", "time_entry", "opportunity", "milestone",
    "legal_entity", "business_unit", "rate_card", "invoice", "expense", "cost_center",
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
