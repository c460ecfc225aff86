// The manager's approvals page: sign in (signin.js), then decide submitted time and correction requests on the
// projects you manage through the approvals API as yourself. Your own time is never listed (the API leaves it out
// and the process tier refuses it): it waits in another manager's inbox.
"use strict";

const { el, say, freshId, api, signInFlow } = Pages;
const approvals = api("/experience/approvals/v1");
const inbox = { items: new Map(), cursor: null, generation: 0 };

function who(item) {
  return item.worker_name ? `${item.worker_name} (${item.worker_id})` : item.worker_id;
}

function row(entry) {
  return el("tr", { "data-key": entry.time_entry_id },
    el("td", {}, el("input", { type: "checkbox", "data-select": entry.time_entry_id,
      "aria-label": `Select ${entry.time_entry_id}` })),
    el("th", { scope: "row", "data-field": "worker" }, who(entry)), el("td", {}, entry.project_name),
    el("td", { "data-field": "day" }, entry.work_date), el("td", { class: "num", "data-field": "hours" }, entry.hours),
    el("td", {}, entry.billable ? "yes" : "no"), el("td", { "data-field": "notes" }, entry.notes));
}

async function loadInbox(more) {
  if (!more) {
    inbox.items.clear();
    inbox.cursor = null;
  }
  const generation = ++inbox.generation;
  say("inbox-status", "Loading…", "panel-status loading");
  try {
    const params = new URLSearchParams({ limit: "50" });
    if (more && inbox.cursor) params.set("cursor", inbox.cursor);
    const page = await approvals.call("GET", `/submitted-entries?${params}`);
    if (generation !== inbox.generation) return;
    for (const item of page.items) inbox.items.set(item.time_entry_id, item);
    inbox.cursor = page.next_cursor;
    document.querySelector("#inbox-table tbody").replaceChildren(...[...inbox.items.values()].map(row));
    document.getElementById("more").hidden = !inbox.cursor;
    document.getElementById("select-all").checked = false;
    say("inbox-status", inbox.items.size ? "" : "Nothing waits for your decision.", "panel-status");
  } catch (error) {
    if (generation !== inbox.generation) return;
    say("inbox-status", `The inbox could not be loaded. ${error.message}`, "panel-status error");
  }
  document.body.setAttribute("data-inbox", String(generation));
}

function billingOf(item) {
  const billing = item.billing;
  if (!billing) return "";
  const amount = billing.amount ? ` ${billing.amount} ${billing.currency}` : "";
  const reasons = billing.reasons.length ? ` (${billing.reasons.join(", ")})` : "";
  return ` — ${billing.disposition.replace(/_/g, " ")}${amount}${reasons}`;
}

async function decide(decision) {
  const ids = [...document.querySelectorAll("[data-select]:checked")].map((box) => box.getAttribute("data-select"));
  const reason = document.getElementById("decision-reason").value.trim();
  if (!ids.length) {
    say("decision-status", "Select at least one entry first.", "error");
    return;
  }
  if (decision === "reject" && !reason) {
    say("decision-status", "Say why you reject it: the consultant sees your reason.", "error");
    return;
  }
  say("decision-status", "Working…");
  try {
    const body = { time_entry_ids: ids, decision };
    if (reason) body.reason = reason;
    const result = await approvals.call("POST", "/decisions", body, { "Idempotency-Key": freshId("approvals-web-") });
    const pending = result.state === "recorded" ? " Recorded: the timesheets catch up as soon as the PSA answers." : "";
    say("decision-status", `${result.approved} approved, ${result.rejected} rejected, ${result.not_decided} not ` +
      `decided.${pending}`, result.not_decided ? "error" : "ok");
    document.getElementById("decision-results").replaceChildren(...result.items.map((item) => el("li",
      { "data-key": item.time_entry_id, "data-result": item.result },
      `${item.time_entry_id}: ${item.result}${item.detail ? ` (${item.detail})` : ""}${billingOf(item)}`)));
    document.getElementById("decision-reason").value = "";
    await loadInbox(false);
  } catch (error) {
    say("decision-status", `Nothing was decided. ${error.message}`, "error");
  }
}

function correctionRow(c) {
  const asked = [c.corrected_hours ? `${c.corrected_hours} h` : null, c.corrected_work_date,
    c.corrected_notes ? `"${c.corrected_notes}"` : null].filter(Boolean).join(", ");
  return el("tr", { "data-key": c.correction_id },
    el("th", { scope: "row" }, who(c)), el("td", {}, c.project_name), el("td", {}, c.work_date),
    el("td", { class: "num" }, c.hours), el("td", { "data-field": "asked" }, asked), el("td", {}, c.reason),
    el("td", { class: "decide" },
      el("button", { type: "button", "data-decide": "approve", "data-correction": c.correction_id }, "Approve"),
      el("button", { type: "button", class: "danger", "data-decide": "reject", "data-correction": c.correction_id },
        "Reject")));
}

async function loadCorrections() {
  say("corrections-status", "Loading…", "panel-status loading");
  try {
    const page = await approvals.call("GET", "/correction-requests?limit=200");
    document.querySelector("#corrections-table tbody").replaceChildren(...page.items.map(correctionRow));
    say("corrections-status", page.items.length ? "" : "No correction requests wait for you.", "panel-status");
  } catch (error) {
    say("corrections-status", `The correction requests could not be loaded. ${error.message}`, "panel-status error");
  }
  document.body.setAttribute("data-corrections", "loaded");
}

async function decideCorrection(correctionId, decision) {
  const reason = document.getElementById("correction-reason").value.trim();
  if (decision === "reject" && !reason) {
    say("correction-status", "Say why you reject it: the consultant sees your reason.", "error");
    return;
  }
  try {
    const body = { decision };
    if (reason) body.reason = reason;
    const decided = await approvals.call("POST", `/correction-requests/${encodeURIComponent(correctionId)}/decisions`,
      body);
    const next = decided.new_time_entry_id ? ` The corrected entry is ${decided.new_time_entry_id}.` : "";
    say("correction-status", `Correction ${decided.correction_id}: ${decided.result} (${decided.state}).${next}`, "ok");
    document.getElementById("correction-reason").value = "";
    await loadCorrections();
  } catch (error) {
    say("correction-status", `Not decided. ${error.message}`, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("approve-selected").addEventListener("click", () => decide("approve"));
  document.getElementById("reject-selected").addEventListener("click", () => decide("reject"));
  document.getElementById("more").addEventListener("click", () => loadInbox(true));
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("[data-select]")) box.checked = event.target.checked;
  });
  document.querySelector("#corrections-table tbody").addEventListener("click", (event) => {
    const id = event.target.getAttribute("data-correction");
    if (id) decideCorrection(id, event.target.getAttribute("data-decide"));
  });
  signInFlow(approvals, (call) => call("GET", "/correction-requests?limit=1"), async (person) => {
    document.getElementById("signed-in").textContent =
      `Signed in as ${person}. Decisions are recorded as you; your own time is decided by someone else.`;
    await Promise.all([loadInbox(false), loadCorrections()]);
  });
});
