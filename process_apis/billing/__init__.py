"""Billing process API: eligibility (the DOMAIN.md rules), exactly-once posting to the ERP, the posting queue."""
