"""Insights process API: dashboard figures computed from the process tier's own data and billing rules."""
