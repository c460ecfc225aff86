"""Choosing SAP S/4HANA Cloud for the ERP in configuration: the setting, the sandbox dialect the launcher starts, and
the ``psgw up`` option."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.launcher import sandbox_dialect
from runtime.settings import load_settings
from system_apis.backends import connector_for
from system_apis.erp.connectors.s4hana import S4HanaErp
from system_apis.settings import SystemSettings


def test_erp_backend_s4hana_loads_its_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSGW_ERP_BACKEND", "s4hana")
    assert load_settings(SystemSettings).erp_backend == "s4hana"
    assert sandbox_dialect("erp", {"PSGW_ERP_BACKEND": "s4hana"}) == ["--dialect", "s4hana"]
    assert isinstance(connector_for("erp", "s4hana", "http://127.0.0.1:1", 1.0), S4HanaErp)


def test_psgw_up_offers_s4hana() -> None:
    shown = CliRunner().invoke(main, ["up", "--help"])
    assert shown.exit_code == 0 and "s4hana" in shown.output and "S/4HANA" in shown.output
