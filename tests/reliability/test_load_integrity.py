"""Load with integrity, CI-sized: mixed traffic through the gateway with an ERP 5xx burst, an ERP outage and a
restart of the process tier, then proof that every approved eligible entry is posted exactly once."""

from __future__ import annotations

from pathlib import Path

from bench.load_integrity import run


def test_mixed_traffic_with_faults_loses_and_doubles_nothing(tmp_path: Path) -> None:
    report = run(duration=25.0, data_dir=tmp_path)
    print(report.render())

    assert report.queued_entries > 0 and report.calls > 100, report.render()
    assert report.integrity_ok, report.render()
    assert report.erp_postings == report.queued_entries
    assert report.posted_amount == report.approved_amount
    assert report.unexpected_5xx == 0, report.render()  # every 5xx is one the run injected
