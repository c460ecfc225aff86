"""Choosing Certinia for the PSA in configuration, and the sandbox that imitates it."""

from __future__ import annotations

import pytest

from gateway.launcher import sandbox_dialect
from runtime.settings import SettingsError, load_settings
from system_apis.backends import connector_for
from system_apis.psa.connectors.certinia import CertiniaPsa
from system_apis.settings import SystemSettings


def test_psa_backend_certinia_loads_the_certinia_connector_and_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSGW_PSA_BACKEND", "certinia")
    assert load_settings(SystemSettings).psa_backend == "certinia"
    assert isinstance(connector_for("psa", "certinia", "http://127.0.0.1:1", 1.0), CertiniaPsa)
    assert sandbox_dialect("psa", {"PSGW_PSA_BACKEND": "certinia"}) == ["--dialect", "certinia"]
    assert sandbox_dialect("erp", {"PSGW_PSA_BACKEND": "certinia"}) == []


@pytest.mark.parametrize("name", ["certina", "Certinia", "salesforce"])
def test_a_misspelt_psa_backend_stops_the_tier_naming_the_setting(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PSGW_PSA_BACKEND", name)
    with pytest.raises(SettingsError, match="psa_backend"):
        load_settings(SystemSettings)
