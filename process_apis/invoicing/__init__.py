"""Invoicing process API: draft invoices per contract and period by billing model, posting with flow-back."""
