"""A client's registered redirect URIs are where the built-in issuer sends a person's authorization code: one
that is a wildcard, carries a fragment, or is plain http to another host would hand codes to whoever controls it.
gateway.yaml is refused at load (and ``psgw policy validate``) with the client and the reason."""

from __future__ import annotations

import msgspec
import pytest

from gateway.config import ClientConfig, redirect_uri_refusal


@pytest.mark.parametrize("uri", [
    "https://pages.example.com/dashboards/",
    "http://127.0.0.1:8103/time/",
    "http://localhost:8103/time/",
    "http://[::1]:8103/approvals/",
    "com.psgateway.time:/oauth2/callback",  # RFC 8252 7.1: an app's reverse-domain scheme, one slash
])
def test_safe_redirect_uris_are_accepted(uri: str) -> None:
    assert redirect_uri_refusal(uri) is None
    assert ClientConfig(id="app", redirect_uris=[uri]).redirect_uris == [uri]


@pytest.mark.parametrize(("uri", "why"), [
    ("https://pages.example.com/time/#/done", "fragment"),
    ("https://*.example.com/time/", "wildcard"),
    ("http://pages.example.com/time/", "loopback"),
    ("http://10.0.0.5/time/", "loopback"),
    ("/time/", "absolute"),
    ("javascript:alert(1)", "reverse-domain"),
    ("psgw://callback", "reverse-domain"),
    ("com.psgateway.time://host/callback", "reverse-domain"),
    ("https:///nohost", "host"),
    ("https://pages.example.com/time/\r\nSet-Cookie: x=1", "control character"),
    ("https://[::1/time", "not a URI"),
])
def test_unsafe_redirect_uris_are_refused_with_the_reason(uri: str, why: str) -> None:
    refusal = redirect_uri_refusal(uri)
    assert refusal is not None and why in refusal
    with pytest.raises(msgspec.ValidationError, match="client 'app': redirect URI"):
        msgspec.convert({"id": "app", "redirect_uris": [uri]}, ClientConfig)
