"""The built-in issuer's OAuth2 surface on authlib's authorization server: the token endpoint (client_credentials,
RFC 6749 section 4.4), token introspection (RFC 7662) and token revocation (RFC 7009).

authlib drives the protocol (client authentication by ``client_secret_basic`` or ``client_secret_post``, grant
dispatch, error codes); this module supplies what is ours: the clients of the live state (bound to the built-in
issuer, secrets checked with scrypt), the RS256 JWTs the issuer signs, and what "active" means (the same
:class:`~policies.authenticate.IdentityBinder` the hot path uses, so introspection never disagrees with the API).
authlib is synchronous: the endpoints run it in a worker thread (a secret check costs tens of milliseconds).
A revoked access token is remembered by its ``jti`` until it expires (durable, shared by every instance).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError

from gateway.config import ClientConfig
from gateway.issuer import secret_matches
from runtime.tokens import Principal, TokenError

if TYPE_CHECKING:
    from gateway.app import Gateway

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class FormRequest(OAuth2Request):
    """A token-endpoint request as authlib reads it: method, headers and the parsed form."""

    def __init__(self, form: Mapping[str, str], headers: Mapping[str, str]) -> None:
        # OAuth2Request's own constructor refuses http:// URIs; TLS is the deployment's (it terminates in front
        # of the gateway), so the URI is not checked here.
        self.method = "POST"
        self.uri = ""
        self.headers = headers  # case-insensitive (authlib asks for "Authorization")
        self._body = None
        self.payload = BasicOAuth2Payload(dict(form))
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

    def get_client_id(self) -> str:
        return self.config.id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.config.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str) -> str:
        return scope


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


class ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = (self.request.payload.scope or "").split()
        not_granted = sorted(set(requested) - set(self.request.client.config.scopes))
        if not_granted:
            raise InvalidScopeError(f"scope {not_granted[0]!r} is not granted to this client")


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.read_token(token_string)

    def check_permission(self, token: IssuedToken, client: RegisteredClient, request: Any) -> bool:
        # A client may look at its own tokens; the security team's clients at any.
        return token.check_client(client) or client.config.layer == "admin"

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        principal = token.active_principal
        assert principal is not None  # an inactive token never gets here
        claims = token.claims
        return {"active": True, "scope": " ".join(sorted(principal.scopes)), "client_id": principal.client_id,
                "sub": principal.subject, "token_type": "Bearer", "exp": claims.get("exp"),
                "iat": claims.get("iat"), "nbf": claims.get("nbf"), "iss": claims.get("iss"),
                "aud": claims.get("aud"), "jti": claims.get("jti")}


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.read_token(token_string)

    def revoke_token(self, token: IssuedToken, request: FormRequest) -> None:
        request.revoked = token


class OAuthServer(AuthorizationServer):
    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.register_grant(ClientCredentials)
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

    def _generate(self, *, grant_type: str, client: RegisteredClient, user: Any = None, scope: str | None = None,
                  expires_in: int | None = None, include_refresh_token: bool = False) -> dict[str, Any]:
        requested = (scope or "").split()
        token, ttl = self.gateway.issuer.mint(client.config, requested or None)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                "scope": " ".join(requested or client.config.scopes)}

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to store: the access token is a signed JWT."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

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
        verified = Principal(subject=str(claims.get("sub", "")), client_id=str(claims.get("client_id", "")),
                             scopes=frozenset(str(claims.get("scope", "")).split()), issuer=issuer.issuer,
                             expires_at=int(exp), claims=claims)
        try:
            found.active_principal, _ = self.gateway.state.binder.bind(verified)
        except TokenError as exc:
            found.refusal = exc.reason
        return found
