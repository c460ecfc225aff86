"""The repository's own contracts keep the platform's promises: lint-clean, and published versions only grow."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from contracts import CONTRACTS_DIR
from contracts.toolchain.cli import contracts
from gateway.launcher import REPO_ROOT


def test_every_repository_contract_passes_the_house_lint() -> None:
    result = CliRunner().invoke(contracts, ["lint"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("0 error(s), 0 warning(s)")


def _parent_commit() -> str | None:
    probe = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD~1"], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=False)
    return probe.stdout.strip() or None


def test_published_contracts_change_only_additively() -> None:
    """Every contract published in the previous commit may only change in non-breaking ways (or be retired)."""
    base = _parent_commit()
    if base is None:
        pytest.skip("no parent commit to compare with (a fresh repository)")

    result = CliRunner().invoke(contracts, ["check-published", "--base", base])

    assert result.exit_code == 0, f"breaking change to a published contract (vs {base[:10]}):\n{result.output}"
    assert CONTRACTS_DIR.exists()
