"""Choosing a vendor per system in configuration: a bundled vendor loads, a misspelt one is a settings error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.launcher import REPO_ROOT, sandbox_dialect
from runtime.settings import SettingsError, load_settings
from system_apis.settings import SystemSettings


def test_erp_backend_names_a_bundled_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSGW_ERP_BACKEND", "netsuite")
    assert load_settings(SystemSettings).erp_backend == "netsuite"
    assert sandbox_dialect("erp", {"PSGW_ERP_BACKEND": "netsuite"}) == ["--dialect", "netsuite"]
    assert sandbox_dialect("erp", {}) == [] and sandbox_dialect("hr", {"PSGW_HR_BACKEND": "netsuite"}) == []


@pytest.mark.parametrize("name", ["netsuit", "sap", "", "NetSuite"])
def test_an_unknown_backend_stops_the_tier_naming_the_setting(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PSGW_ERP_BACKEND", name)
    with pytest.raises(SettingsError, match="erp_backend"):
        load_settings(SystemSettings)


def test_a_sandbox_refuses_a_dialect_it_does_not_speak() -> None:
    done = subprocess.run([sys.executable, "-m", "sandbox", "hr", "--dialect", "netsuite", "--port", "1"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "hr has no netsuite dialect" in done.stderr
