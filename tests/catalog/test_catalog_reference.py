"""The catalog as a developer reads it: rendered schemas, samples, who may call, the changelog, problem pages."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.catalog.problem_sources import emitted_problem_slugs
from tests.support.stack import RunningStack

MOBILE_V2 = "/catalog/apis/experience/mobile-time/v2"


def section(page: str, anchor: str) -> str:
    """The HTML of one operation's section."""
    start = page.index(f'<section class="operation" id="{anchor}">')
    return page[start : page.index("</section>", start)]


def test_every_problem_type_the_code_and_contracts_can_emit_has_its_page(stack: RunningStack) -> None:
    slugs = emitted_problem_slugs()
    assert len(slugs) > 40  # the scan reads the code: a broken scan would pass on nothing
    dead = {}
    for slug, where in slugs.items():
        page = httpx.get(f"{stack.url}/catalog/problems/{slug}")
        if page.status_code != 200 or f'id="{slug}"' not in page.text:
            dead[slug] = f"{page.status_code} (emitted at {where})"
    assert not dead


def test_pages_name_their_charset_once(stack: RunningStack) -> None:
    for path in (
        "/catalog",
        MOBILE_V2,
        "/catalog/problems",
        "/catalog/events",
        "/catalog/apis/process/staffing/changelog",
    ):
        response = httpx.get(stack.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8", path


def test_request_and_response_schemas_are_rendered_with_required_marks_enums_and_limits(stack: RunningStack) -> None:
    page = httpx.get(stack.url + MOBILE_V2).text
    create = section(page, "createMyTimeEntry")

    request = create[create.index('data-caption="Request body"') :]
    work_type = re.search(r'<tr class="field depth-0 required" data-field="work_type">(.*?)</tr>', request, re.S)
    assert work_type, "work_type is a required field of the request body"
    assert '<code class="enum">billable_delivery</code>' in work_type.group(1)
    minutes = re.search(r'data-field="minutes">(.*?)</tr>', request, re.S)
    assert minutes and "≤ 1440" in minutes.group(1) and "integer" in minutes.group(1)
    assert 'data-field="notes"' in request and '<tr class="field depth-0" data-field="notes">' in request  # optional
    # A response schema, $refs resolved, nested fields indented under their parent.
    week = section(page, "getMyWeek")
    assert 'data-caption="200 response"' in week
    assert re.search(r'class="field depth-1[^"]*" data-field="minutes"', week)


def test_each_operation_has_a_curl_and_a_python_sample_built_from_the_contract_examples(stack: RunningStack) -> None:
    create = section(httpx.get(stack.url + MOBILE_V2).text, "createMyTimeEntry")

    curl = re.search(r'<pre class="example sample-curl">(.*?)</pre>', create, re.S)
    python = re.search(r'<pre class="example sample-python">(.*?)</pre>', create, re.S)
    assert curl and python
    assert "curl -s -X POST http://" in curl.group(1) and "/experience/mobile-time/v2/me/time-entries" in curl.group(1)
    assert "&#34;work_type&#34;: &#34;billable_delivery&#34;" in curl.group(1)  # the request example, HTML-escaped
    assert "httpx.post(" in python.group(1) and "os.environ[&#39;PSGW_TOKEN&#39;]" in python.group(1)
    week = section(httpx.get(stack.url + MOBILE_V2).text, "getMyWeek")
    assert re.search(r"/me/weeks/\d{4}-\d{2}-\d{2}", week), "the path parameter is filled from its example"


def test_the_page_says_who_may_call_the_api(stack: RunningStack) -> None:
    mobile = httpx.get(stack.url + MOBILE_V2).text
    callers = mobile[mobile.index('id="callers"') : mobile.index("</table>", mobile.index('id="callers"'))]
    assert 'data-client="mobile-app"' in callers and "<code>time:write</code>" in callers
    assert 'data-client="experience-tier"' not in callers  # tiers do not call experience APIs
    staffing = httpx.get(f"{stack.url}/catalog/apis/process/staffing/v1").text
    assert "answer clients of layer <code>experience</code>" in staffing
    assert 'data-client="experience-tier"' in staffing and 'data-client="mobile-app"' not in staffing


def test_each_api_offers_its_mock_and_its_generated_clients(stack: RunningStack) -> None:
    page = httpx.get(stack.url + MOBILE_V2).text
    assert '<code id="mock-command">psgw contracts mock experience/mobile-time/v2</code>' in page
    assert '<code id="clients-command">psgw contracts clients</code>' in page


def test_the_changelog_reads_renames_groups_headers_and_carries_migration_notes(stack: RunningStack) -> None:
    # The first view computes a diff per pair of versions (seconds each on a busy machine); later ones are cached.
    page = httpx.get(f"{stack.url}/catalog/apis/experience/mobile-time/changelog", timeout=60).text

    assert "property &#39;hours&#39; renamed to &#39;minutes&#39;" in page
    assert "property &#39;hours&#39; removed" not in page
    assert page.count("Deprecation, Sunset and Link headers are no longer sent") == 1
    assert 'class="migration"' in page and "hours * 60" in page
    assert page.count('class="change breaking"') < 20


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/apis/experience/mobile-time/v2%0D%0AX-Injected:%201",
        "/catalog/apis/experience%2Fmobile-time/v2",
        "/catalog/apis/experience/mobile-time/v99999999999999999999",
        "/catalog/apis/experience/mobile-time/v-1",
        "/catalog/apis/nope/nope/v1/openapi.yaml",
        "/catalog/problems/%0d%0a",
        "/catalog/problems/..%2F..%2Fetc",
    ],
)
def test_hostile_catalog_paths_are_clear_4xx_problems(stack: RunningStack, path: str) -> None:
    response = httpx.get(stack.url + path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert response.headers["content-type"] == "application/problem+json", path
    assert "X-Injected" not in response.headers
