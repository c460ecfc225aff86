"""What a consultant relies on when time is logged at once from several places (the phone, its offline queue, a
retry after a lost answer): a day never holds more than 24 hours, nothing answered as logged is lost or logged
twice, a re-sent entry is the same entry, every refusal is a 4xx problem and nothing is a 5xx; and a write the PSA
refused (or an entry deleted) gives its minutes back at once, not after a lock or a claim times out.

Each test logs as a consultant no other test logs as, on days handed out to it alone (tests share the stack)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from typing import Any

import httpx

from tests.support.days import a_day_of_its_own, week_of
from tests.support.stack import RunningStack

V2 = "/experience/mobile-time/v2"
# Consultants of the sandbox firm that no other test logs time as: each test below takes its own.
_workers = itertools.count(1031)


def a_worker_of_its_own() -> str:
    return f"wrk_e{next(_workers)}"


def entry(day: dt.date, minutes: int, *, project_id: str = "prj_4001", client_ref: str | None = None
          ) -> dict[str, Any]:
    return {"project_id": project_id, "work_date": day.isoformat(), "minutes": minutes,
            "work_type": "billable_delivery", "client_ref": client_ref or "claims-" + uuid.uuid4().hex[:12]}


def day_of(stack: RunningStack, worker_id: str, day: dt.date) -> list[dict[str, Any]]:
    with stack.client("mobile-app", subject=worker_id) as phone:
        week = phone.get(f"{V2}/me/weeks/{week_of(day).isoformat()}")
    assert week.status_code == 200, week.text
    return [e for e in week.json()["entries"] if e["work_date"] == day.isoformat()]


def assert_refused_for_minutes(answer: httpx.Response, pointer: str = "/minutes") -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in answer.json()["errors"]] == [pointer], answer.text


def test_creates_edits_and_retries_at_once_never_overfill_a_day_nor_lose_or_double_an_entry(
        stack: RunningStack) -> None:
    worker, day = a_worker_of_its_own(), a_day_of_its_own()
    with stack.client("mobile-app", subject=worker) as phone:
        seeded = [phone.post(f"{V2}/me/time-entries", json=entry(day, 60)) for _ in range(3)]
    assert [s.status_code for s in seeded] == [201, 201, 201], [s.text for s in seeded]
    seeded_ids = [s.json()["time_entry_id"] for s in seeded]

    # 180 minutes logged; asked for at once: 10 new entries of 150 minutes, each sent twice (a retry racing the
    # first try), and each seeded entry grown to 240 minutes: 2,220 minutes more than the day has room for.
    creates = [entry(day, 150) for _ in range(10)]
    headers = {"Authorization": "Bearer " + stack.token("mobile-app", subject=worker)}

    async def fire() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=120.0) as client:
            sent = [client.post(f"{V2}/me/time-entries", json=body) for body in creates for _ in range(2)]
            grown = [client.patch(f"{V2}/me/time-entries/{i}", json={"minutes": 240}) for i in seeded_ids]
            answers = await asyncio.gather(*sent, *grown)
            return list(answers[:len(sent)]), list(answers[len(sent):])

    sent, grown = asyncio.run(fire())

    logged: dict[str, int] = {}  # entry id -> minutes, as the answers tell it
    for body, (first, second) in zip(creates, zip(sent[::2], sent[1::2], strict=True), strict=True):
        ids = set()
        for answer in (first, second):
            if answer.status_code in (200, 201):
                assert answer.json()["client_ref"] == body["client_ref"]
                ids.add(answer.json()["time_entry_id"])
            else:
                assert_refused_for_minutes(answer)
        assert len(ids) <= 1, f"one client_ref, two entries: {ids}"  # a retry is the same entry
        assert sorted(a.status_code for a in (first, second)).count(201) <= 1
        logged.update({i: 150 for i in ids})
    for entry_id, answer in zip(seeded_ids, grown, strict=True):
        if answer.status_code == 200:
            assert answer.json()["minutes"] == 240
            logged[entry_id] = 240
        else:
            assert_refused_for_minutes(answer)
            logged[entry_id] = 60

    held = day_of(stack, worker, day)
    assert {e["time_entry_id"]: e["minutes"] for e in held} == logged  # nothing lost, nothing doubled
    assert len({e["client_ref"] for e in held}) == len(held)
    total = sum(logged.values())
    assert total <= 24 * 60
    # Refusals were for want of room, not for writes that never came: the day was filled to its last 150 minutes.
    assert total > 24 * 60 - 150


def test_a_create_the_psa_refuses_gives_its_minutes_back_at_once(stack: RunningStack) -> None:
    worker, day = a_worker_of_its_own(), a_day_of_its_own()
    with stack.client("mobile-app", subject=worker) as phone:
        assert phone.post(f"{V2}/me/time-entries", json=entry(day, 1380)).status_code == 201

        refused = phone.post(f"{V2}/me/time-entries", json=entry(day, 60, project_id="prj_no_such_project"))
        assert 400 <= refused.status_code < 500, refused.text
        assert refused.headers["content-type"] == "application/problem+json"

        # The last hour of the day is still free: the refused create held it only while the PSA was asked.
        last_hour = phone.post(f"{V2}/me/time-entries", json=entry(day, 60))
        assert last_hour.status_code == 201, last_hour.text
        assert_refused_for_minutes(phone.post(f"{V2}/me/time-entries", json=entry(day, 1)))
    assert sum(e["minutes"] for e in day_of(stack, worker, day)) == 24 * 60


def test_an_offline_item_the_psa_refuses_gives_its_minutes_back_to_the_next_item(stack: RunningStack) -> None:
    worker, day = a_worker_of_its_own(), a_day_of_its_own()
    with stack.client("mobile-app", subject=worker) as phone:
        batch = phone.post(f"{V2}/me/time-entry-syncs", json={"items": [
            entry(day, 1380), entry(day, 60, project_id="prj_no_such_project"), entry(day, 60), entry(day, 1)]})
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [i["status"] for i in items] == ["created", "error", "created", "error"], items
    assert 400 <= items[1]["problem"]["status"] < 500
    assert [e["pointer"] for e in items[3]["problem"]["errors"]] == ["/items/3/minutes"]
    assert sum(e["minutes"] for e in day_of(stack, worker, day)) == 24 * 60


def test_an_edit_the_psa_refuses_gives_its_minutes_back_at_once(stack: RunningStack) -> None:
    worker, day = a_worker_of_its_own(), a_day_of_its_own()
    with stack.client("mobile-app", subject=worker) as phone:
        assert phone.post(f"{V2}/me/time-entries", json=entry(day, 1320)).status_code == 201
        small = phone.post(f"{V2}/me/time-entries", json=entry(day, 60))
        assert small.status_code == 201, small.text

        # Growing it to 120 minutes would fit, but the PSA refuses the change (no such task): nothing written.
        refused = phone.patch(f"{V2}/me/time-entries/{small.json()['time_entry_id']}",
                              json={"minutes": 120, "task_id": "tsk_no_such_task"})
        assert 400 <= refused.status_code < 500, refused.text
        assert refused.headers["content-type"] == "application/problem+json"

        last_hour = phone.post(f"{V2}/me/time-entries", json=entry(day, 60))
        assert last_hour.status_code == 201, last_hour.text
    assert sorted(e["minutes"] for e in day_of(stack, worker, day)) == [60, 60, 1320]


def test_a_deleted_or_shrunk_entry_makes_room_at_once(stack: RunningStack) -> None:
    worker, day = a_worker_of_its_own(), a_day_of_its_own()
    with stack.client("mobile-app", subject=worker) as phone:
        full = phone.post(f"{V2}/me/time-entries", json=entry(day, 1440))
        assert full.status_code == 201, full.text
        assert phone.delete(f"{V2}/me/time-entries/{full.json()['time_entry_id']}").status_code == 204
        again = phone.post(f"{V2}/me/time-entries", json=entry(day, 1440))
        assert again.status_code == 201, again.text

        shrunk = phone.patch(f"{V2}/me/time-entries/{again.json()['time_entry_id']}", json={"minutes": 1200})
        assert shrunk.status_code == 200, shrunk.text
        assert phone.post(f"{V2}/me/time-entries", json=entry(day, 240)).status_code == 201
        assert_refused_for_minutes(phone.post(f"{V2}/me/time-entries", json=entry(day, 1)))
    assert sorted(e["minutes"] for e in day_of(stack, worker, day)) == [240, 1200]
