"""The catalog's events page: every event type of the AsyncAPI contract, with its payload schema."""

from __future__ import annotations

import httpx
import yaml

from contracts import CONTRACTS_DIR
from contracts.toolchain.asyncapi import load_asyncapi, message_names
from tests.support.stack import RunningStack


def test_the_events_page_lists_every_event_type_with_its_payload_schema(stack: RunningStack) -> None:
    page = httpx.get(f"{stack.url}/catalog/events")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for event_type in message_names(load_asyncapi()):
        assert f'id="{event_type.replace(".", "-")}"' in page.text, event_type
    assert "<code>planned_hours_per_week</code>" in page.text and "string (decimal)" in page.text
    assert "<code>exception_id</code>" in page.text
    served = httpx.get(f"{stack.url}/catalog/events/asyncapi.yaml")
    assert served.status_code == 200
    assert yaml.safe_load(served.text) == yaml.safe_load((CONTRACTS_DIR / "process/events/asyncapi.yaml").read_text())
    assert 'href="/catalog/events"' in httpx.get(f"{stack.url}/catalog").text
