"""``psgw contracts clients``: TypeScript types from openapi-typescript, and clear refusals. (The Python clients
are driven against the live stack in tests/e2e/test_generated_clients.py.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from contracts.toolchain.cli import contracts


def test_typescript_types_name_every_operation_of_the_contract(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        contracts, ["clients", "--output", str(tmp_path), "--no-python", "--api", "experience/mobile-time/v2"]
    )

    assert result.exit_code == 0, result.output
    types = (tmp_path / "typescript" / "experience" / "mobile-time" / "v2.ts").read_text()
    for operation in ("createMyTimeEntry", "submitMyWeek", "syncMyTimeEntries"):
        assert f"    {operation}: {{" in types
    assert '"/me/time-entries": {' in types
    assert "work_type" in types and "minutes: number" in types


def test_an_unknown_api_is_refused_before_anything_is_generated(tmp_path: Path) -> None:
    result = CliRunner().invoke(contracts, ["clients", "--output", str(tmp_path), "--api", "experience/nothing/v9"])

    assert result.exit_code == 2
    assert "no contract for experience/nothing/v9" in result.output
    assert list(tmp_path.iterdir()) == []
