"""Mobile time entry: what a consultant's phone needs, in small payloads."""
