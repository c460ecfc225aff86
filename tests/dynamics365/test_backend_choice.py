"""Choosing Dynamics 365 for the ERP in configuration: the setting, the sandbox dialect the launcher starts, and the
``psgw up`` option."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.launcher import sandbox_dialect, vendor_credentials
from runtime.settings import load_settings
from system_apis.backends import connector_for
from system_apis.erp.connectors.dynamics365 import Dynamics365Erp
from system_apis.settings import SystemSettings


def test_erp_backend_dynamics365_loads_its_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSGW_ERP_BACKEND", "dynamics365")
    monkeypatch.setenv("PSGW_ERP_TENANT_ID", "00000000-0000-0000-0000-000000000001")
    settings = load_settings(SystemSettings)
    assert (settings.erp_backend, settings.erp_tenant_id) == ("dynamics365", "00000000-0000-0000-0000-000000000001")
    assert sandbox_dialect("erp", {"PSGW_ERP_BACKEND": "dynamics365"}) == ["--dialect", "dynamics365"]
    assert isinstance(connector_for("erp", "dynamics365", "http://127.0.0.1:1", 1.0), Dynamics365Erp)


def test_the_launcher_gives_both_sides_the_same_tenant(tmp_path: Path) -> None:
    sandboxes, system = vendor_credentials(tmp_path)
    assert sandboxes["erp"]["PSGW_SANDBOX_TENANT_ID"] == system["PSGW_ERP_TENANT_ID"]
    assert vendor_credentials(tmp_path)[1]["PSGW_ERP_TENANT_ID"] == system["PSGW_ERP_TENANT_ID"]


def test_psgw_up_offers_dynamics365() -> None:
    shown = CliRunner().invoke(main, ["up", "--help"])
    assert shown.exit_code == 0 and "dynamics365" in shown.output and "Dynamics 365" in shown.output
