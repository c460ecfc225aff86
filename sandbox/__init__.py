"""Local stand-ins for the vendor systems (PSA, ERP, HR, CRM), each in its own native dialect.

Each sandbox is its own process with its own SQLite store, seeded with the same deterministic demo firm,
and can inject faults on demand (latency, 5xx, timeouts, outages) through ``/_sandbox/faults``.
This package imports nothing from psgateway: it plays the vendor, not us.
"""
