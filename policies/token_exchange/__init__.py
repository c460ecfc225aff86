"""Token exchange: what the tiers see of the caller is a short internal token the gateway minted, never the
caller's own token (RFC 8693-style: the verified principal is exchanged for a token of the gateway's issuer,
for the tiers' audience only).

It runs last in the chain, so only calls every other policy accepted get a token, and carries exactly what the
gateway decided: the subject, the client, the *granted* scopes and the original issuer. The tiers trust only
that audience, so a token that was handed to a client (or an external IdP's token) sent to a tier directly is
refused there, and a revocation reaches the tiers within the internal token's lifetime.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from policies.authenticate import API_KEY_ISSUER
from policies.exchange import Exchange
from policies.registry import BuildContext, PolicySpec
from runtime.tokens import Principal


class InternalTokenSource(Protocol):
    def authorization_for(self, principal: Principal) -> bytes:
        """``Bearer <internal token>`` for this principal (cached until near its expiry)."""


class TokenExchange:
    name = "token_exchange"

    def __init__(self, tokens: InternalTokenSource) -> None:
        self.tokens = tokens

    async def access(self, exchange: Exchange) -> None:
        principal = exchange.principal
        if principal is None or principal.issuer == API_KEY_ISSUER:
            return  # API-key calls: the proxy swaps the key for the same kind of token
        authorization = self.tokens.authorization_for(principal)
        exchange.headers = [(k, v) for k, v in exchange.headers if k != b"authorization"]
        exchange.headers.append((b"authorization", authorization))
        exchange.decisions[self.name] = "ok"


class TokenExchangeConfig(msgspec.Struct, kw_only=True, frozen=True):
    """No settings: the internal tokens' audience and lifetime are the issuer's (gateway.yaml ``issuer``)."""


def _build(config: TokenExchangeConfig, ctx: BuildContext) -> TokenExchange:
    return ctx.once("token_exchange", lambda: TokenExchange(ctx.services.extra["internal_tokens"]))


# Last of the access phase: only a call every policy accepted gets an internal token.
POLICY = PolicySpec(name="token_exchange", config=TokenExchangeConfig, priority=100, build=_build,
                    enabled_by_default=True, required=True,
                    summary="swaps the caller's credential for a short internal token the tiers trust")
