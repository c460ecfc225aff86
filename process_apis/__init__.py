"""The process tier: workflows and business rules composed from system APIs (through the gateway)."""
