"""Reconciliation process API: PSA actuals against ERP postings and invoices, per project."""
