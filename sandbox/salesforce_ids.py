"""Salesforce-style record ids: 15 case-sensitive characters plus a 3-character case checksum (18 in all).

The CRM sandbox mints them; the ERP sandbox keeps the CRM account id as a cross-reference, so both derive the
same id for the same record from its key prefix (``001`` Account, ``006`` Opportunity, ...) and a number.
"""

from __future__ import annotations

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
INSTANCE = "8d0"  # the org's pod characters

PREFIXES = {"Account": "001", "Contract": "800", "Opportunity": "006", "Rate_Card__c": "a0R",
            "Rate_Card_Line__c": "a0S", "Billing_Schedule_Line__c": "a0T",
            # Certinia PSA's managed-package objects in the same org (sandbox/certinia.py); resources are Contacts.
            "Contact": "003", "pse__Proj__c": "a3p", "pse__Project_Task__c": "a3t", "pse__Assignment__c": "a2a",
            "pse__Timecard_Header__c": "a4z", "pse__Milestone__c": "a3m", "pse__Expense__c": "a2e"}


def checksum(id15: str) -> str:
    """The 3 characters Salesforce appends so that the id survives case-insensitive systems."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX[bits]
    return suffix


def record_id(sobject: str, number: int) -> str:
    # Spread consecutive numbers over the id space so ids look like a real org's, deterministically.
    value = (number * 2_654_435_761 + 97_531) % 62**9
    digits = ""
    for _ in range(9):
        value, digit = divmod(value, 62)
        digits = BASE62[digit] + digits
    id15 = PREFIXES[sobject] + INSTANCE + digits
    return id15 + checksum(id15)


def is_record_id(value: str) -> bool:
    if len(value) == 15:
        return all(c in BASE62 for c in value)
    return len(value) == 18 and all(c in BASE62 for c in value) and checksum(value[:15]) == value[15:]
