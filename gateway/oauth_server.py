"""The built-in issuer's OAuth2 surface on authlib's authorization server: the token endpoint (client_credentials,
RFC 6749 section 4.4; authorization code with PKCE, section 4.1 and RFC 7636), token introspection (RFC 7662)
and token revocation (RFC 7009).

Authorization code is for people signing in to the pages: public clients (``redirect_uris`` and no secret) or
confidential ones, PKCE with S256 always (plain and a missing challenge are refused), the redirect URI matched
exactly, codes single-use, short-lived and bound to client, redirect URI, person and challenge
(:mod:`gateway.signin.codes`). A person's token carries the scopes requested that both the client is registered
for and the person's roles grant.

authlib drives the protocol (client authentication by ``client_secret_basic`` or ``client_secret_post``, grant
dispatch, error codes); this module supplies what is ours: the clients of the live state (bound to the built-in
issuer, secrets checked with scrypt), the RS256 JWTs the issuer signs, and what "active" means (the same
:class:`~policies.authenticate.IdentityBinder` the hot path uses, so introspection never disagrees with the API).
authlib is synchronous: the endpoints run it in a worker thread (a secret check costs tens of milliseconds).
A revoked access token is remembered by its ``jti`` until it expires (durable, shared by every instance).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, BaseGrant, ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError

from gateway.config import ClientConfig
from gateway.issuer import secret_matches
from gateway.signin.attempts import SignInAttempts
from gateway.signin.codes import CodeStore, IssuedCode, Redemption
from gateway.signin.config import Person
from gateway.signin.people import People
from runtime.tokens import Principal, TokenError

if TYPE_CHECKING:
    from gateway.app import Gateway

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class Payload(OAuth2Payload):
    """The request's parameters: the first value of each for reading, all of them to refuse repeats."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._datalist = {k: list(v) for k, v in values.items()}
        self._data = {k: v[0] for k, v in values.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):
    """A token- or authorization-endpoint request as authlib reads it: method, headers and the parameters."""

    def __init__(
        self, form: Mapping[str, str], headers: Mapping[str, str], *, values: Mapping[str, list[str]] | None = None
    ) -> None:
        # OAuth2Request's own constructor refuses http:// URIs; TLS is the deployment's (it terminates in front
        # of the gateway), so the URI is not checked here.
        self.method = "POST"
        self.uri = ""
        self.headers = headers  # case-insensitive (authlib asks for "Authorization")
        self._body = None
        self.payload = Payload(values if values is not None else {k: [v] for k, v in form.items()})
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self._form = dict(form)
        # What the revocation endpoint decided, persisted by the (async) caller once authlib returns.
        self.revoked: IssuedToken | None = None
        # The authorization code presented to the token endpoint, redeemed (async) before authlib runs.
        self.redemption: Redemption | None = None
        # The code the authorization endpoint issued, saved (async) by the caller once authlib returns.
        self.issued_code: IssuedCode | None = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class RegisteredClient(ClientMixin):
    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def is_public(self) -> bool:
        """A page or an app: signs people in, holds no secret (RFC 6749 section 2.1)."""
        return self.config.secret_hash is None and bool(self.config.redirect_uris)

    @property
    def signs_people_in(self) -> bool:
        return bool(self.config.redirect_uris) and self.config.user_tokens

    def get_client_id(self) -> str:
        return self.config.id

    def get_default_redirect_uri(self) -> None:
        return None  # every authorization request names its redirect URI

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.config.redirect_uris  # exact match, no prefixes, no patterns

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.signs_people_in

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.config.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            # It redeems its codes and revokes its own tokens on sign-out (RFC 7009 section 2.1) by client_id
            # alone; introspection stays for clients that can prove who they are.
            return endpoint in ("token", "revocation") and method == "none"
        return method in CLIENT_AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "authorization_code":
            return self.signs_people_in
        return grant_type == "client_credentials" and self.config.secret_hash is not None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or " ".join(self.config.scopes)


@dataclass
class IssuedToken(TokenMixin):
    """An access token of the built-in issuer, signature checked; whether it is *active* is the binder's call."""

    token: str
    claims: dict[str, Any]
    active_principal: Principal | None = None
    refusal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def jti(self) -> str | None:
        jti = self.claims.get("jti")
        return jti if isinstance(jti, str) else None

    def check_client(self, client: RegisteredClient) -> bool:
        return self.claims.get("client_id") == client.id

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return int(self.claims.get("exp", 0)) - int(self.claims.get("iat", 0))

    def is_expired(self) -> bool:
        return time.time() > float(self.claims.get("exp", 0))

    def is_revoked(self) -> bool:
        return self.active_principal is None


def refuse_unregistered_scopes(grant: BaseGrant) -> None:
    """A client asks only for scopes it is registered for (RFC 6749 section 3.3)."""
    requested = (grant.request.payload.scope or "").split()
    not_granted = sorted(set(requested) - set(grant.request.client.config.scopes))
    if not_granted:
        raise InvalidScopeError(f"scope {not_granted[0]!r} is not granted to this client")


class ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        refuse_unregistered_scopes(self)


class S256Only(CodeChallenge):
    """PKCE (RFC 7636) on every authorization request, S256 only: ``plain`` would show the verifier in the URL."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required (PKCE, RFC 7636, method S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCode(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", *CLIENT_AUTH_METHODS]

    def validate_requested_scope(self) -> None:
        refuse_unregistered_scopes(self)

    def save_authorization_code(self, code: str, request: Any) -> None:
        person: Person = request.user
        server: OAuthServer = self.server
        granted = sorted(set(str(request.scope).split()) & server.people.scopes_of(person))
        if not granted:
            raise AccessDeniedError(
                f"{person.username} has no role that grants {request.scope}", redirect_uri=request.payload.redirect_uri
            )
        request.issued_code = IssuedCode(
            code=code,
            client_id=request.client.id,
            redirect_uri=str(request.payload.redirect_uri),
            subject=person.subject,
            scope=" ".join(granted),
            code_challenge=str(request.payload.data["code_challenge"]),
            expires_at=time.time() + server.gateway.issuer.config.sign_in.authorization_code_ttl_seconds,
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> IssuedCode:
        redemption = self.request.redemption
        if redemption is None or redemption.code is None:
            raise InvalidGrantError(redemption.refusal if redemption else "the authorization code is not known")
        if redemption.code.client_id != client.id:
            raise InvalidGrantError("the authorization code was issued to another client")
        return redemption.code

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing to do: redeeming marked it used."""

    def authenticate_user(self, authorization_code: IssuedCode) -> str:
        return authorization_code.subject


def require_token(request: FormRequest) -> None:
    """Introspection and revocation need the token; its ``token_type_hint`` is ignored (RFC 7009 section 2.1 and
    RFC 7662 section 2.1 allow it): this issuer has only access tokens, so a ``refresh_token`` hint from a client
    library still finds and revokes the token, where refusing the hint would leave it valid."""
    if not request.form.get("token"):
        raise InvalidRequestError("the token parameter is required")


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def check_params(self, request: FormRequest, client: RegisteredClient) -> None:
        require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.read_token(token_string)

    def check_permission(self, token: IssuedToken, client: RegisteredClient, request: Any) -> bool:
        # A client may look at its own tokens; the security team's clients at any.
        return token.check_client(client) or client.config.layer == "admin"

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        principal = token.active_principal
        assert principal is not None  # an inactive token never gets here
        claims = token.claims
        return {
            "active": True,
            "scope": " ".join(sorted(principal.scopes)),
            "client_id": principal.client_id,
            "sub": principal.subject,
            "token_type": "Bearer",
            "exp": claims.get("exp"),
            "iat": claims.get("iat"),
            "nbf": claims.get("nbf"),
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "jti": claims.get("jti"),
        }


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["none", *CLIENT_AUTH_METHODS]  # "none": public clients only (check_endpoint_auth_method)

    def check_params(self, request: FormRequest, client: RegisteredClient) -> None:
        require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.read_token(token_string)

    def revoke_token(self, token: IssuedToken, request: FormRequest) -> None:
        # Only a token still in use: each revocation rebuilds the live state, so revoking the same token over and
        # over (anyone holding a public client's token may) costs nothing after the first time.
        if token.active_principal is not None:
            request.revoked = token


class OAuthServer(AuthorizationServer):
    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.register_grant(ClientCredentials)
        self.register_grant(AuthorizationCode, [S256Only(required=True)])
        self.people = People(gateway.issuer.config.sign_in, gateway.issuer.key_path.parent)
        self.attempts = SignInAttempts(gateway.issuer.config.sign_in.attempts)
        self.codes = CodeStore(gateway.engine)
        self._codes_ready = False
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)
        self.register_token_generator("default", self._generate)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        state = self.gateway.state
        config, identity = state.clients.get(client_id), state.identities.get(client_id)
        if config is None or identity is None or not identity.active:
            return None
        if self.gateway.issuer.issuer not in identity.issuers:
            return None  # registered with another issuer: this one never vouches for it
        return RegisteredClient(config)

    def _generate(
        self,
        *,
        grant_type: str,
        client: RegisteredClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        requested = (scope or "").split()
        token, ttl = self.gateway.issuer.mint(client.config, requested or None, subject=user)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(requested or client.config.scopes),
        }

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to store: the access token is a signed JWT."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

    async def _codes(self) -> CodeStore:
        if not self._codes_ready:
            await self.codes.create_schema()
            self._codes_ready = True
        return self.codes

    async def save_issued_code(self, request: FormRequest) -> None:
        if request.issued_code is not None:
            await (await self._codes()).save(request.issued_code)

    async def token_response(self, request: FormRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """The token endpoint: a presented authorization code is redeemed first (one SQL statement decides a race),
        a replayed one revokes the token its first use got; authlib then runs off the event loop (scrypt)."""
        code = request.form.get("code") if request.form.get("grant_type") == "authorization_code" else None
        if code:
            request.redemption = await (await self._codes()).redeem(code)
            replay = request.redemption
            if (replay.replayed_jti and replay.replayed_exp and replay.replayed_client
                    and replay.replayed_jti not in self.gateway.state.binder.revoked_token_ids):  # once, not per replay
                await self.gateway.revoke_access_token(
                    replay.replayed_jti, int(replay.replayed_exp), replay.replayed_client
                )
        status, body, headers = await asyncio.to_thread(self.create_token_response, request)
        if code and status == 200:
            issued = self.read_token(body["access_token"])
            if issued is not None and issued.jti:
                exp = float(issued.claims["exp"])
                if not await self.codes.record_token(code, issued.jti, exp):
                    # Presented again while this answer was on its way: the same as a replay after it.
                    await self.gateway.revoke_access_token(issued.jti, int(exp), issued.claims["client_id"])
                    return 400, {"error": "invalid_grant", "error_description": "the authorization code was used "
                                 "twice; the token it gave is revoked"}, headers
        return status, body, headers

    def read_token(self, token_string: str) -> IssuedToken | None:
        """A token this issuer signed (any published key), with whether the live state still accepts it."""
        issuer = self.gateway.issuer
        try:
            claims = jwt.decode(token_string, issuer.key_set(), algorithms=["RS256"]).claims
        except (JoseError, ValueError, TypeError):
            return None
        if claims.get("iss") != issuer.issuer or claims.get("aud") != issuer.config.audience:
            return None  # not an access token of this issuer (an internal token, another audience)
        found = IssuedToken(token=token_string, claims=claims)
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            return None
        verified = Principal(
            subject=str(claims.get("sub", "")),
            client_id=str(claims.get("client_id", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            issuer=issuer.issuer,
            expires_at=int(exp),
            claims=claims,
        )
        try:
            found.active_principal, _ = self.gateway.state.binder.bind(verified)
        except TokenError as exc:
            found.refusal = exc.reason
        return found
