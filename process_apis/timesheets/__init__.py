"""Timesheets process API: time entry writes for the mobile app, week submission, and manager approvals."""
