"""Discovery of contracts laid out as <layer>/<api>/v<N>.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest

from contracts.toolchain.catalog import (
    ApiVersion,
    ContractLocation,
    discover_contracts,
    group_by_api,
    locate_contract,
)

FIXTURES = Path(__file__).parent / "fixtures"
CONTRACTS = FIXTURES / "contracts"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("contracts/experience/mobile-time/v1.yaml", ContractLocation("experience", "mobile-time", 1)),
        ("system/psa/v12.yaml", ContractLocation("system", "psa", 12)),
        ("contracts/gateway/admin/v1.yaml", None),  # not a layer
        ("contracts/process/Billing/v1.yaml", None),  # not kebab-case
        ("contracts/process/billing/v0.yaml", None),  # majors start at 1
        ("contracts/process/billing/v1.yml", None),
        ("v1.yaml", None),
    ],
)
def test_locate_contract(path: str, expected: ContractLocation | None) -> None:
    assert locate_contract(PurePosixPath(path)) == expected


def test_location_gives_id_and_base_path() -> None:
    location = ContractLocation("experience", "mobile-time", 2)

    assert location.api_id == "experience/mobile-time"
    assert location.base_path == "/experience/mobile-time/v2"


def test_discover_reads_metadata_of_every_version() -> None:
    versions = discover_contracts(CONTRACTS)

    assert [(version.api_id, version.major, version.contract_version) for version in versions] == [
        ("experience/mobile-time", 1, "1.2.0"),
        ("experience/mobile-time", 2, "2.0.0"),
    ]
    first = versions[0]
    assert first == ApiVersion(
        api_id="experience/mobile-time",
        layer="experience",
        api="mobile-time",
        major=1,
        base_path="/experience/mobile-time/v1",
        path=str(CONTRACTS / "experience" / "mobile-time" / "v1.yaml"),
        title="Mobile time entry",
        contract_version="1.2.0",
        description=first.description,
        lifecycle="active",
        sunset=None,
        sla_tiers=("gold", "silver"),
        owner_tier="experience",
    )


def test_discover_orders_layers_bottom_up_and_ignores_other_files(tmp_path: Path) -> None:
    source = CONTRACTS / "experience" / "mobile-time" / "v1.yaml"
    for relative in ("experience/mobile-time/v1.yaml", "system/psa/v1.yaml", "process/billing/v2.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, tmp_path / relative)
    (tmp_path / "system" / "psa" / "notes.yaml").write_text("not: a contract\n")
    (tmp_path / "toolchain").mkdir()

    versions = discover_contracts(tmp_path)

    assert [(version.layer, version.api, version.major) for version in versions] == [
        ("system", "psa", 1),
        ("process", "billing", 2),
        ("experience", "mobile-time", 1),
    ]


def test_group_by_api_orders_majors() -> None:
    grouped = group_by_api(list(reversed(discover_contracts(CONTRACTS))))

    assert list(grouped) == ["experience/mobile-time"]
    assert [version.major for version in grouped["experience/mobile-time"]] == [1, 2]
