"""The finance dashboard page in a real (headless) browser: sign in, figures from the API, and a clear error."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.gateway.signin_flow import CONSULTANT_USER, FINANCE_LEAD_USER, password_of
from tests.process.test_expense_markup_and_sync import engagement_of
from tests.support.browser import headless_chromium, screenshot, sign_in_at_the_issuer
from tests.support.flows import wait_for
from tests.support.stack import RunningStack


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Its own stack: the page's origin is the experience tier, allowed by the gateway's CORS policy, and this
    module stops the process tier, which must not disturb the shared stack."""
    ports = Ports.free()
    data_dir: Path = tmp_path_factory.mktemp("psgw-page")
    stack = Stack(data_dir=data_dir, ports=ports, config_file=REPO_ROOT / "gateway.yaml",
                  extra_env={"PSGW_CORS_ORIGINS": f'["http://127.0.0.1:{ports.experience}"]'})
    stack.start()
    try:
        stack.wait_ready(timeout=90)
        yield RunningStack(stack)
    finally:
        stack.stop()


def sign_in(driver: WebDriver, stack: RunningStack, month: str | None = None,
            username: str = FINANCE_LEAD_USER) -> None:
    """Open the page, pick the month, sign in at the gateway's sign-in page as ``username``, and come back."""
    url = stack.stack.url("experience") + "/dashboards/"
    driver.get(url)
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "period").get_attribute("value"))
    if month is not None:
        driver.execute_script("document.getElementById('period').value = arguments[0]", month)
    driver.find_element(By.ID, "sign-in-button").click()
    sign_in_at_the_issuer(driver, username, password_of(stack, username), back_to=url)


def loaded(driver: WebDriver) -> None:
    WebDriverWait(driver, 90).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


# What a reader sees of one chart: its title, both axis titles, the tick labels drawn and the value on each bar.
_CHART = """
const box = document.querySelector(`[data-chart="${arguments[0]}"]`);
const canvas = box.querySelector('canvas');
const title = box.querySelector('.chart-title').textContent;
const empty = box.querySelector('[data-empty]');
if (!canvas) return {title, empty: empty && empty.textContent};
const chart = Chart.getChart(canvas);
const axis = (id) => ({title: chart.options.scales[id].title.display ? chart.options.scales[id].title.text : '',
                       ticks: chart.scales[id].ticks.map((t) => String(t.label))});
return {title, x: axis('x'), y: axis('y'), values: JSON.parse(canvas.dataset.values || '[]'),
        points: chart.data.datasets.flatMap((d) => d.data).filter((v) => v !== null).length,
        width: canvas.clientWidth, height: canvas.clientHeight};
"""


def chart(driver: WebDriver, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = driver.execute_script(_CHART, name)
    return seen


def money(amount: str, currency: str) -> str:
    """How a reader must see money: thousands separators, two decimals, the currency."""
    return f"{Decimal(amount):,.2f} {currency}"


def hours(value: str) -> str:
    """Hours as the page writes them: thousands separators, at most one decimal."""
    return f"{Decimal(value).quantize(Decimal('0.1'), ROUND_HALF_UP):,}".removesuffix(".0") + " h"


MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d{2} [A-Z]{3}$")


def panel_state(driver: WebDriver, name: str) -> str | None:
    return driver.find_element(By.CSS_SELECTOR, f'[data-panel="{name}"]').get_attribute("data-state")


def test_finance_lead_sees_the_figures_the_api_gives(page_stack: RunningStack) -> None:
    with page_stack.client("dashboard-web") as api, headless_chromium() as driver:
        sign_in(driver, page_stack)
        loaded(driver)
        assert driver.find_element(By.ID, "signed-in").text.startswith("Signed in as wrk_e1003.")

        assert {panel_state(driver, p) for p in ("utilization", "aging", "backlog", "exceptions", "margins")} == {
            "loaded"}
        backlog = api.get("/experience/dashboards/v1/invoice-ready-backlog").json()["projects"][0]
        row = driver.find_element(By.CSS_SELECTOR, f'[data-table="backlog"] tr[data-key="{backlog["project_id"]}"]')
        assert row.find_element(By.TAG_NAME, "th").text == backlog["project_name"]
        values = [c.get_attribute("data-value") for c in row.find_elements(By.TAG_NAME, "td")]
        assert values[:4] == [backlog["posted_hours"], backlog["posted_amount"], backlog["milestone_amount"],
                              backlog["total_amount"]]

        margins = api.get("/experience/dashboards/v1/project-margins").json()["projects"]
        nearest = margins[0]
        burn = driver.find_element(By.CSS_SELECTOR, f'[data-table="margins"] tr[data-key="{nearest["project_id"]}"]')
        assert burn.find_elements(By.TAG_NAME, "td")[-1].get_attribute("data-value") == nearest["nte_burn_pct"]

        exceptions = api.get("/experience/dashboards/v1/exceptions-summary").json()
        assert driver.find_element(By.CSS_SELECTOR, '[data-figure="exceptions-open"]').text == str(
            exceptions["open_total"])
        aging = api.get("/experience/dashboards/v1/unbilled-time-aging").json()
        shown = {r.get_attribute("data-key"): r.find_elements(By.TAG_NAME, "td")[1].get_attribute("data-value")
                 for r in driver.find_elements(By.CSS_SELECTOR, '[data-table="aging"] tbody tr')}
        assert shown == {**{b["bucket"]: b["hours"] for b in aging["buckets"]}, "total": aging["total_hours"]}
        assert driver.find_element(By.CSS_SELECTOR, '[data-chart="aging"] canvas[role="img"]')
        # Accessible structure: labelled controls and real table headers.
        assert driver.find_element(By.CSS_SELECTOR, 'label[for="period"]')
        assert driver.find_elements(By.CSS_SELECTOR, '[data-table="margins"] thead th[scope="col"]')


def test_every_chart_has_titled_axes_ticks_and_a_value_on_each_bar(page_stack: RunningStack) -> None:
    with page_stack.client("dashboard-web") as api, headless_chromium() as driver:
        sign_in(driver, page_stack)
        loaded(driver)
        driver.find_element(By.CSS_SELECTOR, '[data-panel="utilization"] details summary').click()
        # Opening the details box sizes its chart on the browser's next resize pass.
        WebDriverWait(driver, 10).until(lambda d: chart(d, "utilization-workers").get("width", 0) > 200)
        names = ("utilization", "utilization-workers", "aging", "margins", "burn")
        drawn = {name: chart(driver, name) for name in names}
        backlog = api.get("/experience/dashboards/v1/invoice-ready-backlog").json()
        currencies = {t["currency"] for t in backlog["totals"]}
        drawn.update({f"backlog-{c}": chart(driver, f"backlog-{c}") for c in currencies})

        for name, seen in drawn.items():
            assert "x" in seen, (name, seen)  # drawn, not the empty state
            assert seen["x"]["title"] and seen["y"]["title"], name
            assert seen["x"]["ticks"] and seen["y"]["ticks"], name
            assert len(seen["values"]) == seen["points"] > 0, name
            assert seen["width"] > 200 and seen["height"] > 100, name

        aging = api.get("/experience/dashboards/v1/unbilled-time-aging").json()
        assert drawn["aging"]["x"]["ticks"] == [b["label"] for b in aging["buckets"]]
        assert drawn["aging"]["values"] == [hours(b["hours"]) for b in aging["buckets"]]
        assert f"{hours(aging['total_hours'])} in total" in drawn["aging"]["title"]
        utilization = api.get("/experience/dashboards/v1/utilization", params={
            "from_date": drawn["utilization"]["title"].split(", ")[1].split(" to ")[0],
            "to_date": drawn["utilization"]["title"].split(" to ")[1].split(":")[0]}).json()
        assert drawn["utilization"]["x"]["ticks"] == [u["label"] for u in utilization["business_units"]]
        assert f"actual {Decimal(utilization['totals']['actual_pct']):.1f}%" in drawn["utilization"]["title"]
        margins = api.get("/experience/dashboards/v1/project-margins").json()["projects"]
        capped = [p for p in margins if p["nte_burn_pct"] is not None]
        assert drawn["burn"]["values"] == [
            f"{Decimal(p['nte_burn_pct']):.1f}% of {money(p['nte_amount'], p['currency'])}" for p in capped]
        for total in backlog["totals"]:
            title = drawn[f"backlog-{total['currency']}"]["title"]
            assert f"{money(total['amount'], total['currency'])} in total" in title


def test_demo_firm_reads_as_healthy_with_a_few_problem_projects(page_stack: RunningStack) -> None:
    with headless_chromium() as driver:
        sign_in(driver, page_stack)
        loaded(driver)
        rows = driver.find_elements(By.CSS_SELECTOR, '[data-table="margins"] tbody tr')
        margins = [Decimal(v) for r in rows
                   if (v := r.find_elements(By.TAG_NAME, "td")[3].get_attribute("data-value")) not in (None, "")]
        burns = [Decimal(v) for r in rows if (v := r.find_elements(By.TAG_NAME, "td")[-1].get_attribute("data-value"))]
        shown_money = [c.text for r in rows for c in r.find_elements(By.TAG_NAME, "td")[:4]]
        utilization = driver.find_element(By.CSS_SELECTOR, '[data-table="utilization-units"] tr[data-key="total"]')
        actual_pct = utilization.find_elements(By.TAG_NAME, "td")[5].get_attribute("data-value")
        fx_note = driver.find_element(By.CSS_SELECTOR, '[data-figure="fx-note"]').text
        notes = [li.text for li in driver.find_elements(By.CSS_SELECTOR, '[data-list="attention"] li')]
        driver.set_window_size(1280, 2400)
        screenshot(driver, "dashboard-healthy")

    assert sum(1 for m in margins if m > 0) >= len(rows) * 2 // 3, margins  # most projects make money
    assert any(m < 0 for m in margins)  # and the deliberate problems show
    assert max(burns) < 100 and any(b >= 90 for b in burns), burns  # one contract close to its cap, none past it
    assert all(MONEY.match(text) for text in shown_money), shown_money
    assert re.search(r"planning rates set on \d{4}-\d{2}-\d{2}: .*1 GBP = 1\.27 USD", fx_note), fx_note
    # The default period is the last complete month, and the demo records time from each assignment's start:
    # a busy, healthy firm (not 18% because only the last months had time).
    assert 70 <= Decimal(actual_pct) <= 85, actual_pct
    # Margins: a few deliberate problems, each explained in a sentence a finance lead can act on.
    assert sum(1 for m in margins if m > 0) >= len(rows) * 3 // 4, margins
    assert 1 <= len(notes) <= 3, notes
    assert any("await customer acceptance" in n for n in notes) and any("not-to-exceed" in n for n in notes), notes


def test_plan_against_actual_by_business_unit_and_the_problem_projects_explained(page_stack: RunningStack) -> None:
    with page_stack.client("dashboard-web") as api, headless_chromium() as driver:
        sign_in(driver, page_stack)
        loaded(driver)
        panel = api.get("/experience/dashboards/v1/project-margins").json()
        seen = chart(driver, "margins-units")
        by_project = chart(driver, "margins")
        table = driver.find_elements(By.CSS_SELECTOR, '[data-table="margins-units"] tbody tr')
        cells = {r.get_attribute("data-key"): [c.get_attribute("data-value")
                                               for c in r.find_elements(By.TAG_NAME, "td")] for r in table}
        notes = {li.get_attribute("data-key"): li.text
                 for li in driver.find_elements(By.CSS_SELECTOR, '[data-list="attention"] li')}
        driver.set_window_size(1280, 1400)
        driver.execute_script("document.querySelector('[data-panel=\"margins\"]').scrollIntoView()")
        screenshot(driver, "dashboard-margins")

    units, totals = panel["business_units"], panel["totals"]
    assert seen["x"]["title"] == "Business unit" and seen["y"]["title"] == "Margin (USD)"
    assert seen["x"]["ticks"] == [u["label"] for u in units]
    assert seen["values"] == [money(u["planned_margin"], "USD") for u in units] + [
        money(u["margin"], "USD") for u in units]
    assert f"planned {money(totals['planned_margin'], 'USD')}, actual {money(totals['margin'], 'USD')}" in seen["title"]
    assert "planned against actual" in by_project["title"] and by_project["values"]
    assert cells["total"][1:4] == [totals["planned_revenue"], totals["planned_cost"], totals["planned_margin"]]
    assert cells["total"][5:8] == [totals["earned_revenue"], totals["cost"], totals["margin"]]
    flagged = {p["project_id"]: p for p in panel["projects"] if p["attention"]}
    assert set(notes) == set(flagged) and flagged
    for project_id, text in notes.items():
        assert text == f"{flagged[project_id]['project_name']}: {flagged[project_id]['attention']}"


def test_expenses_are_drawn_with_their_cost_what_invoices_recover_and_totals(page_stack: RunningStack) -> None:
    """A known demo project (SOW-2006's, whose contract bills expenses with a 12.5% markup) gets a billable and a
    non-billable expense through the gateway; the finance lead sees both as cost, the billable one recovered at
    cost x 1.125, inside the project's cost and the business unit's figures, with the totals beside them."""
    with page_stack.client("process-tier") as system, page_stack.client("experience-tier") as process:
        engagement = engagement_of(system, marked_up=True)
        project_id, currency = engagement["project"]["id"], engagement["contract"]["currency"]
        for amount, billable in (("189.00", True), ("50.00", False)):
            captured = process.post("/process/expenses/v1/expenses", json={
                "worker_id": engagement["worker_id"], "project_id": project_id, "category": "lodging",
                "amount": amount, "currency": currency, "expense_date": dt.date.today().isoformat(), "country": "US",
                "receipt_ref": f"r-{amount}", "billable": billable})
            assert captured.status_code == 201, captured.text
            decided = process.post(f"/process/expenses/v1/expenses/{captured.json()['id']}/decisions",
                                   json={"approver_id": engagement["manager_id"], "decision": "approve"})
            assert decided.status_code == 200, decided.text
            expense = f"/process/expenses/v1/expenses/{captured.json()['id']}"
            wait_for("the expense to be posted", lambda e=expense: process.get(e).json()["state"] == "posted")
    with page_stack.client("dashboard-web") as api, headless_chromium() as driver:
        panel = api.get("/experience/dashboards/v1/project-margins").json()
        sign_in(driver, page_stack)
        loaded(driver)
        seen = chart(driver, "margins-expenses")
        rows = {r.get_attribute("data-key"): [r.find_element(By.TAG_NAME, "th").text,
                                              *(c.text for c in r.find_elements(By.TAG_NAME, "td"))]
                for r in driver.find_elements(By.CSS_SELECTOR, '[data-table="margins-expenses"] tbody tr')}
        margin_row = driver.find_element(By.CSS_SELECTOR, f'[data-table="margins"] tr[data-key="{project_id}"]')
        cost_shown = margin_row.find_elements(By.TAG_NAME, "td")[2]
        cost_cell = (cost_shown.text, cost_shown.get_attribute("data-value"))
        driver.set_window_size(1280, 1400)
        driver.execute_script("document.querySelector('[data-chart=\"margins-expenses\"]').scrollIntoView()")
        screenshot(driver, "dashboard-expenses")

    project = next(p for p in panel["projects"] if p["project_id"] == project_id)
    # This stack is the module's own: these two are the only expenses, so the figures are known to the cent.
    # 189.00 x 1.125 = 212.625, billed as 212.62 (rounded half-even once); 50.00 is a cost only.
    assert rows[project_id] == [project["project_name"], money("239.00", currency), money("0.00", currency),
                                money("212.62", currency), money("212.62", currency), money("-26.38", currency)]
    assert rows[f"total-{currency}"] == [f"Total ({currency})", *rows[project_id][1:]]
    assert set(rows) == {project_id, f"total-{currency}"}
    # The project's cost is its time and its expenses, as the margin table shows it.
    assert Decimal(project["cost"]) == Decimal(project["time_cost"]) + Decimal("239.00")
    assert cost_cell == (money(project["cost"], currency), project["cost"])
    units, totals = panel["business_units"], panel["totals"]
    assert seen["x"]["title"] == "Business unit" and seen["y"]["title"] == "Amount (USD)"
    assert seen["x"]["ticks"] == [u["label"] for u in units] and seen["y"]["ticks"]
    assert seen["values"] == [money(u["expense_cost"], "USD") for u in units] + [
        money(u["expense_revenue"], "USD") for u in units]
    usd = Decimal(panel["fx_rates_to_usd"][currency])
    assert Decimal(totals["expense_cost"]) == (Decimal("239.00") * usd).quantize(Decimal("0.01"))
    assert Decimal(totals["expense_revenue"]) == (Decimal("212.62") * usd).quantize(Decimal("0.01"))
    net = Decimal(totals["expense_revenue"]) - Decimal(totals["expense_cost"])
    assert (f"cost {money(totals['expense_cost'], 'USD')}, recovered {money(totals['expense_revenue'], 'USD')}, "
            f"net {money(str(net), 'USD')}") in seen["title"]
    assert Decimal(totals["cost"]) == Decimal(totals["time_cost"]) + Decimal(totals["expense_cost"])


def test_a_period_without_data_says_so_instead_of_a_blank_plot(page_stack: RunningStack) -> None:
    with headless_chromium() as driver:
        sign_in(driver, page_stack, month="2031-01")  # after every demo contract and assignment ends
        loaded(driver)
        seen = chart(driver, "utilization")
        assert seen["empty"] == "No data for this period."
        box = driver.find_element(By.CSS_SELECTOR, '[data-chart="utilization"]')
        assert box.find_element(By.CSS_SELECTOR, "[data-empty]").is_displayed()
        assert not box.find_elements(By.TAG_NAME, "canvas")


def test_the_page_needs_no_token_and_holds_no_secret_but_the_data_does(page_stack: RunningStack) -> None:
    base = page_stack.stack.url("experience")
    page = httpx.get(base + "/dashboards/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<meta name="client-id" content="dashboard-web">' in page.text
    assert f'<meta name="authorization-endpoint" content="{page_stack.url}/authorize">' in page.text
    scripts = [httpx.get(f"{base}/dashboards/assets/{name}").text for name in ("dashboard.js", "signin.js")]
    assert not any(s in script for script in scripts for s in ("client_secret", "demo-secret", "localStorage"))
    assert httpx.post(base + "/dashboards/sessions").status_code in (404, 405)  # no demo login hands out tokens
    assert httpx.get(page_stack.url + "/experience/dashboards/v1/exceptions-summary").status_code == 401


def test_a_person_without_a_dashboards_role_is_refused(page_stack: RunningStack) -> None:
    url = page_stack.stack.url("experience") + "/dashboards/"
    with headless_chromium() as driver:
        sign_in(driver, page_stack, username=CONSULTANT_USER)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sign-in"))
        status = driver.find_element(By.ID, "sign-in-status").text
        assert status.startswith("Sign-in failed: access_denied: ada has no role"), status
        assert not driver.find_element(By.ID, "dashboard").is_displayed()
        assert driver.current_url == url  # the refusal's parameters are gone from the address bar


def test_the_page_shows_an_error_when_the_process_tier_is_down(page_stack: RunningStack) -> None:
    page_stack.stack.stop("process")
    try:
        with headless_chromium() as driver:
            sign_in(driver, page_stack)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))

            assert panel_state(driver, "backlog") == "error"
            alert = driver.find_element(By.CSS_SELECTOR, '[data-panel="backlog"] .panel-status')
            assert alert.get_attribute("role") == "alert"
            assert alert.text.startswith("Could not load this panel:")
            assert "unavailable" in alert.text
            assert not driver.find_element(By.CSS_SELECTOR, '[data-panel="backlog"] .panel-body').is_displayed()
    finally:
        page_stack.stack.start(only=["process"])
        page_stack.stack.wait_ready(only=["process"])

