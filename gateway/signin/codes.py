"""Authorization codes (RFC 6749 section 4.1.2): short-lived, single-use, bound to client, redirect URI, person,
scopes and PKCE challenge; kept in the gateway's SQL database, so any instance redeems what another issued.

Only a code's SHA-256 is stored. Redeeming marks the row used in one conditional UPDATE: of two concurrent
redemptions exactly one wins. A code presented again is refused, and the token issued for it is revoked
(section 4.1.2: "SHOULD revoke ... all tokens previously issued based on that authorization code"); a code
presented again before its first use's token is recorded marks the row, and that token is revoked instead of
handed out (:meth:`CodeStore.record_token`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, MetaData, String, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

codes = Table(
    "gateway_authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(256), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("scope", String(2048), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("token_jti", String(64), nullable=True),
    Column("token_exp", Float, nullable=True),
)

# Used codes are kept this long after they expire, so a late replay still revokes what the first use got.
_KEEP_USED_SECONDS = 3600
# In token_jti: a replay arrived before the first use's token was recorded; that token is then never handed out.
_REPLAYED = "-replayed-"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    """What a code stands for (authlib's AuthorizationCodeMixin is duck-typed: get_redirect_uri, get_scope)."""

    code: str
    client_id: str
    redirect_uri: str
    subject: str
    scope: str
    code_challenge: str
    expires_at: float
    code_challenge_method: str = "S256"

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class Redemption:
    """The outcome of presenting a code: the code (first, unexpired use), or why not."""

    code: IssuedCode | None = None
    refusal: str | None = None
    # On a replay: the token the first use got, to revoke.
    replayed_jti: str | None = None
    replayed_client: str | None = None
    replayed_exp: float | None = None


class CodeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def save(self, issued: IssuedCode) -> None:
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(delete(codes).where(codes.c.expires_at < now - _KEEP_USED_SECONDS))
            await conn.execute(
                codes.insert().values(
                    code_hash=_digest(issued.code),
                    client_id=issued.client_id,
                    redirect_uri=issued.redirect_uri,
                    subject=issued.subject,
                    scope=issued.scope,
                    code_challenge=issued.code_challenge,
                    expires_at=issued.expires_at,
                )
            )

    async def redeem(self, code: str) -> Redemption:
        digest = _digest(code)
        now = time.time()
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(codes).where(codes.c.code_hash == digest))).mappings().first()
            if row is None:
                return Redemption(refusal="the authorization code is not known")
            if row["used_at"] is not None:
                if row["token_jti"] is None:  # the first use is still being answered: it will see this mark
                    await conn.execute(update(codes).where(codes.c.code_hash == digest, codes.c.token_jti.is_(None))
                                       .values(token_jti=_REPLAYED))
                recorded = row["token_jti"] not in (None, _REPLAYED)
                return Redemption(
                    refusal="the authorization code was already used; the token it gave is revoked",
                    replayed_jti=row["token_jti"] if recorded else None,
                    replayed_client=row["client_id"],
                    replayed_exp=row["token_exp"],
                )
            won = await conn.execute(
                update(codes).where(codes.c.code_hash == digest, codes.c.used_at.is_(None)).values(used_at=now)
            )
            if won.rowcount != 1:
                return Redemption(refusal="the authorization code was already used")
            if row["expires_at"] <= now:
                return Redemption(refusal="the authorization code has expired")
        return Redemption(
            code=IssuedCode(
                code=code,
                client_id=row["client_id"],
                redirect_uri=row["redirect_uri"],
                subject=row["subject"],
                scope=row["scope"],
                code_challenge=row["code_challenge"],
                expires_at=row["expires_at"],
            )
        )

    async def record_token(self, code: str, jti: str, expires_at: float) -> bool:
        """Remember the token a code gave, so a later replay revokes it; False when a replay came first (the caller
        then revokes the token and hands it to nobody)."""
        async with self.engine.begin() as conn:
            recorded = await conn.execute(
                update(codes).where(codes.c.code_hash == _digest(code), codes.c.token_jti.is_(None))
                .values(token_jti=jti, token_exp=expires_at)
            )
        return bool(recorded.rowcount == 1)
