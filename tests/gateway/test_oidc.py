"""An external OIDC issuer rotates its signing key: the gateway accepts the new kid without a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.gateway.conftest import GatewayProcess, ServerProcess, base_config

PROJECT = "/system/psa/v1/projects/prj_4001"


def test_jwks_rotation_of_an_external_issuer(gateways: Callable[..., GatewayProcess],
                                             servers: Callable[..., ServerProcess]) -> None:
    idp = servers("oidc_issuer.py")
    upstream = servers("flaky_upstream.py")  # answers without checking tokens, like a tier trusting the IdP
    config: dict[str, Any] = base_config()
    config["upstreams"]["system"]["url"] = upstream.url
    config["policies"]["authenticate"]["trusted_issuers"] = [{"issuer": idp.url, "audience": "psgateway"}]
    config["policies"]["authenticate"]["jwks_min_refresh_seconds"] = 0
    gateway = gateways(config, own_issuer=True)

    def token() -> tuple[str, str]:
        issued = httpx.post(idp.url + "/token", json={"aud": "psgateway", "sub": "process-tier",
                                                      "azp": "process-tier", "scope": "psa:read"}).json()
        return issued["access_token"], issued["kid"]

    first, first_kid = token()
    assert httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {first}"}).status_code == 200

    new_kid = httpx.post(idp.url + "/rotate").json()["kid"]
    second, second_kid = token()

    assert second_kid == new_kid != first_kid
    response = httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {second}"})
    assert response.status_code == 200, response.text
    # Tokens of the old key still verify (the issuer still publishes it).
    assert httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {first}"}).status_code == 200
    wrong_audience = httpx.post(idp.url + "/token", json={"aud": "other", "sub": "process-tier",
                                                          "azp": "process-tier"}).json()["access_token"]
    refused = httpx.get(gateway.url + PROJECT, headers={"Authorization": f"Bearer {wrong_audience}"})
    assert refused.status_code == 401 and refused.json()["reason"] == "wrong_audience"
