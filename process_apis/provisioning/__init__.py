"""Provisioning process API: a won opportunity becomes exactly one customer, contract and project."""
