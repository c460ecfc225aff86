"""Billing process API: eligibility (a rule table), exactly-once posting to the ERP, the posting queue."""
