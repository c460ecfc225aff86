"""Staffing process API: who works where, assignments joined with their projects."""
