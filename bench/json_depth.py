"""What the JSON depth check (runtime.untrusted.json_depth_exceeds) costs per call, beside a msgspec decode of the
same bytes (what validation pays anyway), on a typical body, a large batch and a hostile 1 MB body.

    .venv/bin/python -m bench.json_depth

Figures are per call, median of 5 timing runs; the machine is shared, so read them as an order of magnitude.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable

import msgspec

from bench.harness import machine_summary
from runtime.untrusted import DEFAULT_MAX_JSON_DEPTH, json_depth_exceeds

BODIES: dict[str, bytes] = {
    "time entry (typical)": msgspec.json.encode({
        "client_ref": "c-1", "assignment_id": "asg_3001", "work_date": "2026-11-30", "minutes": 90,
        "work_type": "billable", "notes": "Pricing workshop prep"}),
    "sync batch, 100 items": msgspec.json.encode({"items": [
        {"op": "create", "client_ref": f"c-{n}", "entry": {"assignment_id": "asg_3001", "work_date": "2026-11-30",
                                                          "minutes": 90, "notes": "workshop [day 2]"}}
        for n in range(100)]}),
    "hostile: 8,000 arrays 63 deep (1 MB)": b"[" + b",".join([b"[" * 63 + b"]" * 63] * 8000) + b"]",
    "hostile: 1 MB of '['": b"[" * 1_000_000,
}


def per_call_us(call: Callable[[], object]) -> float:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(5, number)) * 1e6


def decode_or_refusal(body: bytes) -> object:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        return exc


def main() -> None:
    print(f"Measured on {machine_summary()}; limit {DEFAULT_MAX_JSON_DEPTH}.")
    print("| body | bytes | depth check us/call | msgspec decode us/call |\n|---|---:|---:|---:|")
    for name, body in BODIES.items():
        check = per_call_us(lambda body=body: json_depth_exceeds(body, DEFAULT_MAX_JSON_DEPTH))  # type: ignore[misc]
        decode = per_call_us(lambda body=body: decode_or_refusal(body))  # type: ignore[misc]
        print(f"| {name} | {len(body):,} | {check:,.2f} | {decode:,.2f} |")


if __name__ == "__main__":
    main()
