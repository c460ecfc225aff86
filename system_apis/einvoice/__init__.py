"""E-invoicing network system API v1 (contracts/system/einvoice/v1.yaml)."""
