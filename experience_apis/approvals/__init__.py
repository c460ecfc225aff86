"""Approvals inbox: what a project manager needs to decide submitted time on their projects."""
