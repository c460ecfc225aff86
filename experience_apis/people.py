"""Who a user-facing call speaks for: the person behind the token, never a body field."""

from __future__ import annotations

from runtime.problems import Forbidden
from runtime.tokens import Principal


def worker_of(principal: Principal) -> str:
    """The worker a user token speaks for; client-only tokens (no person behind them) are refused."""
    if not principal.subject.startswith("wrk_"):
        raise Forbidden("this API serves a person: use a user token whose subject is a worker id",
                        slug="user-token-required")
    return principal.subject
