"""README's "A short tour", pasted as a user would: every ``sh`` block of the section, in order, in one shell,
against a started stack, from the repository root. Only the stack's address and data dir differ from the
README's (the test stack runs on free ports beside a developer's own); the commands are the README's text."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from gateway.launcher import REPO_ROOT
from tests.support.stack import RunningStack

MARKER = "=== tour block"


def tour_blocks() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("## A short tour")
    section = readme[start : readme.index("\n## ", start + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def run_tour(stack: RunningStack) -> list[str]:
    script = "set -euo pipefail\n"
    for number, block in enumerate(tour_blocks()):
        block = (
            block.replace("http://127.0.0.1:8080", stack.url)
            .replace(".data/", f"{stack.stack.data_dir}/")
            .replace(".venv/bin/psgw token ", f".venv/bin/psgw token --data-dir {stack.stack.data_dir} ")
        )
        script += f"echo; echo '{MARKER} {number}'\n{block}\n"  # curl prints no final newline
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PSGW_ISSUER_URL": stack.url}
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = re.split(rf"^{MARKER} \d+\n", done.stdout, flags=re.M)[1:]
    assert done.returncode == 0, f"block {len(outputs) - 1} failed:\n{outputs[-1:]}\n{done.stderr}"
    return outputs


def test_the_readme_tour_works_as_pasted(stack: RunningStack) -> None:
    blocks = tour_blocks()
    assert len(blocks) == 8
    assignments, logs, logged, submitted, approved, exceptions, refusals, changelog = run_tour(stack)

    assert '"project_id":"prj_4001"' in assignments and '"can_log_time":true' in assignments
    assert len([line for line in logs.splitlines() if "tour-1" in line]) >= 3, logs  # the gateway and the tiers

    assert logged.startswith("HTTP/1.1 200"), logged  # the same client_ref again: the same entry, not a second one
    assert "deprecation: " in logged.lower() and "sunset: " in logged.lower() and 'rel="successor-version"' in logged
    entry = re.search(r'"time_entry_id":"(te_\w+)"', logged)
    assert entry and '"state":"draft"' in logged

    assert f'"time_entry_id":"{entry.group(1)}","result":"submitted"' in submitted, submitted

    first, second = [line for line in approved.splitlines() if line.startswith("{")]
    assert approved.splitlines()[0] == f'"{entry.group(1)}"'  # the manager's inbox holds it
    assert '"approved":1' in first and '"disposition":"queued_for_posting"' in first, first
    assert '"approved":0' in second and '"result":"unchanged"' in second, second  # posted exactly once

    assert exceptions.startswith('{"items":[')

    unauthenticated, layer, misspelled = [line for line in refusals.splitlines() if line.startswith("{")]
    assert '"status":401' in unauthenticated and '"reason":"missing"' in unauthenticated
    assert '"status":403' in layer and "layer-violation" in layer
    assert '"status":400' in misspelled and '"pointer":' in misspelled

    assert "renamed to 'minutes'" in changelog and "**Migrating:**" in changelog
    assert changelog.rstrip().endswith("exit code 1")
