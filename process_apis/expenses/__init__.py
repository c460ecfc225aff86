"""Expenses: capture, policy, approval, exactly-once ERP posting and billing at cost (README, "Expenses")."""
