"""The system tier: ERP, PSA, HR and CRM in the canonical model. The only place that knows a vendor field."""
