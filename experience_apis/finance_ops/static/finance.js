// The finance-operations page: the person signs in (authorization code + PKCE, signin.js), then works the exception
// queue and runs month end through the finance-operations API as themselves. No data and no secret ship with the
// page; every figure comes from the API.
"use strict";

const { el, say, api, signInFlow } = Pages;
const finance = api("/experience/finance-ops/v1");
const call = finance.call;
// generation: a newer load supersedes an older one still in flight, whose answer is then dropped.
const queue = { items: new Map(), cursor: null, filters: {}, generation: 0 };

function row(item) {
  const select = el("input", { type: "checkbox", "aria-label": `Select ${item.id}`, "data-select": item.id });
  return el("tr", { "data-key": item.id, "data-state": item.state },
    el("td", {}, select), el("th", { scope: "row" }, item.id), el("td", {}, item.kind),
    el("td", { "data-field": "reasons" }, item.reason_codes.join(", ")),
    el("td", {}, item.business_unit_id || ""), el("td", {}, item.project_id || ""),
    el("td", { "data-field": "source" }, `${item.source_type} ${item.source_id}`),
    el("td", { "data-field": "owner" }, item.owner_id || ""),
    el("td", { class: "num" }, item.age_days), el("td", { "data-field": "state" }, item.state));
}

function render() {
  const body = document.querySelector("#queue-table tbody");
  body.replaceChildren(...[...queue.items.values()].map(row));
  document.getElementById("more").hidden = !queue.cursor;
  document.getElementById("select-all").checked = false;
  say("queue-status", queue.items.size ? "" : "Nothing in the queue matches these filters.");
}

async function loadQueue(more) {
  if (!more) {
    const form = new FormData(document.getElementById("queue-filters"));
    queue.filters = Object.fromEntries([...form.entries()].filter(([, value]) => value !== ""));
    queue.items.clear();
    queue.cursor = null;
  }
  const params = new URLSearchParams({ ...queue.filters, limit: "50" });
  if (more && queue.cursor) params.set("cursor", queue.cursor);
  const generation = ++queue.generation;
  say("queue-status", "Loading…", "loading");
  try {
    const page = await call("GET", `/exceptions?${params}`);
    if (generation !== queue.generation) return;
    for (const item of page.items) queue.items.set(item.id, item);
    queue.cursor = page.next_cursor;
    render();
  } catch (error) {
    if (generation !== queue.generation) return;
    say("queue-status", `The queue could not be loaded. ${error.message}`, "error");
  }
  document.body.setAttribute("data-queue", "loaded");
}

function selected() {
  return [...document.querySelectorAll("[data-select]:checked")].map((box) => box.getAttribute("data-select"));
}

async function act(action) {
  const ids = selected();
  if (!ids.length) {
    say("action-status", "Select at least one item first.", "error");
    return;
  }
  const body = { action, exception_ids: ids };
  if (action === "resolve") {
    body.resolution = document.getElementById("resolution").value.trim();
    if (!body.resolution) {
      say("action-status", "Say how the items were resolved first.", "error");
      return;
    }
  }
  say("action-status", "Working…");
  try {
    const result = await call("POST", "/exception-actions", body);
    const refused = result.items.filter((i) => i.result !== "done").map((i) => `${i.exception_id}: ${i.detail}`);
    say("action-status", `${result.done} done, ${result.refused} refused, ${result.failed} failed.` +
        (refused.length ? ` ${refused.join("; ")}` : ""), result.done ? "ok" : "error");
    // Show each acted-on item as it is now.
    for (const id of ids) {
      try {
        queue.items.set(id, await call("GET", `/exceptions/${encodeURIComponent(id)}`));
      } catch (error) {
        queue.items.delete(id);
      }
    }
    render();
  } catch (error) {
    say("action-status", `Nothing was done. ${error.message}`, "error");
  }
}

const count = new Intl.NumberFormat("en-US");

async function runMonthEnd(event) {
  event.preventDefault();
  const period = document.getElementById("month").value;
  say("month-end-status", `Settling ${period}…`);
  try {
    const run = await call("POST", "/month-end-settlements", { period });
    const summary = run.summary;
    const figures = {
      period: run.period, run_by: run.run_by,
      settled: count.format(summary.settled), queued_for_posting: count.format(summary.queued_for_posting),
      held: count.format(summary.held), cost_only: count.format(summary.cost_only),
      already_posted: count.format(summary.already_posted),
      queued_totals: summary.queued_totals.map((t) => `${t.amount} ${t.currency}`).join(", ") || "none",
      held_by_reason: Object.entries(summary.held_by_reason).map(([r, n]) => `${r}: ${n}`).join(", ") || "none",
    };
    for (const [name, text] of Object.entries(figures)) {
      document.querySelector(`[data-figure="${name}"]`).textContent = text;
    }
    document.getElementById("month-end-result").hidden = false;
    say("month-end-status", `Month end for ${run.period} done.`, "ok");
    await loadQueue(false);
  } catch (error) {
    say("month-end-status", `Month end did not run. ${error.message}`, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const lastMonth = new Date();
  lastMonth.setUTCDate(1);
  lastMonth.setUTCMonth(lastMonth.getUTCMonth() - 1);
  document.getElementById("month").value = lastMonth.toISOString().slice(0, 7);
  document.getElementById("queue-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadQueue(false);
  });
  document.getElementById("more").addEventListener("click", () => loadQueue(true));
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("[data-select]")) box.checked = event.target.checked;
  });
  document.getElementById("assign-selected").addEventListener("click", () => act("assign"));
  document.getElementById("retry-selected").addEventListener("click", () => act("retry"));
  document.getElementById("resolve-selected").addEventListener("click", () => act("resolve"));
  document.getElementById("month-end-form").addEventListener("submit", runMonthEnd);
  signInFlow(finance, (check) => check("GET", "/exceptions?limit=1"), async (person) => {
    document.getElementById("signed-in").textContent = `Signed in as ${person}. Actions are recorded as you.`;
    await loadQueue(false);
  });
});
