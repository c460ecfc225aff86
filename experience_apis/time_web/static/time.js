// The consultant's time page: sign in (signin.js), then log time, read and submit a week and ask for corrections
// through mobile time v3 (travel is one of its work types) as yourself. Offline, a new entry waits in this browser (localStorage: entries only,
// never the token) and goes through the offline batch endpoint, each once by its client_ref, when the network is
// back.
"use strict";

const { el, say, freshId, api, signInFlow } = Pages;
const mobile = api("/experience/mobile-time/v3");
const view = { week: null, person: null, entries: new Map() };
const CORRECTABLE = new Set(["approved", "posted", "invoiced"]);
const WORK_TYPES = {
  billable_delivery: "Billable delivery", non_billable_internal: "Non-billable internal", travel: "Travel",
};

// -- days: plain ISO dates, no time zone games -----------------------------------------------------------------

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}
function mondayOf(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
  return isoDay(date);
}
function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return isoDay(date);
}
function today() {
  const now = new Date();
  return isoDay(new Date(Date.UTC(now.getFullYear(), now.getMonth(), now.getDate())));
}
function duration(minutes) {
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}`;
}

// -- the outbox: entries logged offline, per person ------------------------------------------------------------

const outbox = {
  key: () => `psgw.time.outbox.${view.person}`,
  read() {
    try {
      return JSON.parse(localStorage.getItem(outbox.key()) || "[]");
    } catch (error) {
      return [];
    }
  },
  write(items) {
    if (items.length) localStorage.setItem(outbox.key(), JSON.stringify(items));
    else localStorage.removeItem(outbox.key());
    outbox.show();
  },
  show() {
    const waiting = outbox.read().length;
    const status = document.getElementById("outbox-status");
    status.hidden = waiting === 0;
    status.textContent = waiting === 1 ? "1 entry waits in this browser: it is sent when you are back online."
      : `${waiting} entries wait in this browser: they are sent when you are back online.`;
    document.getElementById("sync-now").hidden = waiting === 0;
    document.body.setAttribute("data-outbox", String(waiting));
  },
};

// Sends every waiting entry in one batch; each is done once (its client_ref), so sending again is harmless.
async function syncOutbox() {
  const waiting = outbox.read();
  if (!waiting.length || !mobile.session.token) return;
  let answer;
  try {
    answer = await mobile.call("POST", "/me/time-entry-syncs", { items: waiting.map((e) => ({ op: "upsert", ...e })) });
  } catch (error) {
    say("log-status", `The waiting entries were not sent yet. ${error.message}`, "error");
    return;
  }
  const refused = answer.items.filter((r) => r.status === "error");
  outbox.write([]);  // sent or refused for good: a refused entry would be refused again
  const sent = answer.items.length - refused.length;
  say("log-status", `${sent} waiting ${sent === 1 ? "entry" : "entries"} sent.` + (refused.length
    ? ` Refused: ${refused.map((r) => `${r.problem && r.problem.detail ? r.problem.detail : "refused"}`).join("; ")}`
    : ""), refused.length ? "error" : "ok");
  await loadWeek(view.week);
}

// -- logging ---------------------------------------------------------------------------------------------------

async function logTime(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const entry = {
    client_ref: freshId("web-"), project_id: form.get("project_id"), work_date: form.get("work_date"),
    minutes: Number(form.get("minutes")), work_type: form.get("work_type"), notes: form.get("notes") || "",
  };
  if (!navigator.onLine) {
    queue(entry);
    return;
  }
  say("log-status", "Logging…");
  try {
    const saved = await mobile.call("POST", "/me/time-entries", entry);
    say("log-status", `Logged ${duration(saved.minutes)} on ${saved.work_date} (${saved.state}).`, "ok");
    document.getElementById("log-minutes").value = "";
    document.getElementById("log-notes").value = "";
    await loadWeek(mondayOf(saved.work_date));
  } catch (error) {
    if (error.status === 0) queue(entry);
    else say("log-status", `Not logged. ${error.message}`, "error");
  }
}

function queue(entry) {
  outbox.write([...outbox.read(), entry]);
  say("log-status", `You are offline: ${duration(entry.minutes)} on ${entry.work_date} waits in this browser.`, "ok");
}

// -- the week --------------------------------------------------------------------------------------------------

function stateCell(entry) {
  const cell = el("td", { "data-field": "state" }, entry.state);
  if (entry.rejection_reason) cell.append(el("span", { class: "reason", "data-field": "reason" },
    `Reason: ${entry.rejection_reason}`));
  return cell;
}

function row(entry, projectNames) {
  const actions = el("td", {});
  if (CORRECTABLE.has(entry.state)) {
    actions.append(el("button", { type: "button", class: "secondary", "data-correct": entry.time_entry_id },
      "Ask for a correction"));
  }
  return el("tr", { "data-key": entry.time_entry_id, "data-state": entry.state },
    el("td", {}, entry.work_date), el("td", {}, projectNames.get(entry.project_id) || entry.project_id),
    el("td", { class: "num", "data-field": "time" }, duration(entry.minutes)),
    stateCell(entry), el("td", {}, WORK_TYPES[entry.work_type] || entry.work_type), el("td", {}, entry.notes),
    actions);
}

async function loadWeek(monday) {
  view.week = monday;
  document.getElementById("week-label").textContent = `Week of ${monday} to ${addDays(monday, 6)}`;
  say("week-status", "Loading…", "panel-status loading");
  try {
    const week = await mobile.call("GET", `/me/weeks/${monday}`);
    if (view.week !== monday) return;
    const names = new Map(week.projects.map((p) => [p.project_id, p.project_name || p.project_id]));
    view.entries = new Map(week.entries.map((e) => [e.time_entry_id, e]));
    document.querySelector("#week-table tbody").replaceChildren(...week.entries.map((e) => row(e, names)));
    document.getElementById("week-total").textContent = duration(week.total_minutes);
    document.getElementById("submit-week").disabled = week.submittable_entries === 0;
    say("week-status", week.entries.length ? `${week.submittable_entries} to submit.` : "Nothing logged this week.",
      "panel-status");
  } catch (error) {
    say("week-status", `The week could not be loaded. ${error.message}`, "panel-status error");
  }
  document.body.setAttribute("data-week", monday);
}

async function submitWeek() {
  say("week-status", "Submitting…", "panel-status loading");
  try {
    const result = await mobile.call("POST", `/me/weeks/${view.week}/submissions`);
    const refused = result.items.filter((i) => !["submitted", "unchanged"].includes(i.result));
    await loadWeek(view.week);
    say("week-status", `${result.submitted} submitted, ${result.unchanged} unchanged, ${result.refused} refused.` +
      (refused.length ? ` ${refused.map((i) => `${i.time_entry_id}: ${i.detail}`).join("; ")}` : ""),
    refused.length ? "panel-status error" : "panel-status ok");
  } catch (error) {
    say("week-status", `The week was not submitted. ${error.message}`, "panel-status error");
  }
}

// -- corrections of approved time ------------------------------------------------------------------------------

function openCorrection(entryId) {
  const entry = view.entries.get(entryId);
  const form = document.getElementById("correction-form");
  form.dataset.entry = entryId;
  form.dataset.key = freshId("correction-");  // one request per opening, however often it is sent
  document.getElementById("correction-of").textContent =
    `Correct ${duration(entry.minutes)} on ${entry.work_date} (${entry.state}): your manager decides.`;
  document.getElementById("correction-minutes").value = entry.minutes;
  form.hidden = false;
  document.getElementById("correction-reason").focus();
}

async function requestCorrection(event) {
  event.preventDefault();
  const form = event.target;
  const minutes = Number(document.getElementById("correction-minutes").value);
  const body = { reason: document.getElementById("correction-reason").value.trim() };
  if (minutes) body.minutes = minutes;
  try {
    const asked = await mobile.call("POST", `/me/time-entries/${encodeURIComponent(form.dataset.entry)}/corrections`,
      body, { "Idempotency-Key": form.dataset.key });
    form.hidden = true;
    form.reset();
    say("correction-status", `Correction ${asked.correction_id} asked for (${asked.state}): your manager decides.`,
      "ok");
  } catch (error) {
    say("correction-status", `No correction asked for. ${error.message}`, "error");
  }
}

// -- assignments -----------------------------------------------------------------------------------------------

async function loadAssignments() {
  const items = [];
  let cursor = null;
  do {
    const page = await mobile.call("GET", `/me/assignments?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  document.querySelector("#assignments-table tbody").replaceChildren(...items.map((a) => el("tr",
    { "data-key": a.assignment_id }, el("th", { scope: "row" }, a.project_name), el("td", {}, a.role),
    el("td", { class: "num" }, a.planned_hours_per_week), el("td", {}, a.start_date), el("td", {}, a.end_date || ""),
    el("td", {}, a.can_log_time ? "open" : "not open"))));
  const open = items.filter((a) => a.can_log_time);
  document.getElementById("log-project").replaceChildren(...open.map((a) => el("option", { value: a.project_id },
    a.project_name)));
  say("assignments-status", items.length ? "" : "You have no assignments.", "panel-status");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("log-date").value = today();
  document.getElementById("log-form").addEventListener("submit", logTime);
  document.getElementById("week-prev").addEventListener("click", () => loadWeek(addDays(view.week, -7)));
  document.getElementById("week-next").addEventListener("click", () => loadWeek(addDays(view.week, 7)));
  document.getElementById("week-day").addEventListener("change", (event) => {
    if (event.target.value) loadWeek(mondayOf(event.target.value));
  });
  document.getElementById("submit-week").addEventListener("click", submitWeek);
  document.getElementById("sync-now").addEventListener("click", syncOutbox);
  document.getElementById("correction-form").addEventListener("submit", requestCorrection);
  document.getElementById("correction-cancel").addEventListener("click", () => {
    document.getElementById("correction-form").hidden = true;
  });
  document.querySelector("#week-table tbody").addEventListener("click", (event) => {
    const id = event.target.getAttribute("data-correct");
    if (id) openCorrection(id);
  });
  window.addEventListener("online", syncOutbox);
  window.addEventListener("offline", () => outbox.show());
  signInFlow(mobile, (call) => call("GET", "/me/assignments?limit=1"), async (person) => {
    view.person = person;
    document.getElementById("signed-in").textContent = `Signed in as ${person}. What you log is yours.`;
    outbox.show();
    try {
      await loadAssignments();
    } catch (error) {
      say("assignments-status", `Your assignments could not be loaded. ${error.message}`, "panel-status error");
    }
    // A week the person picked while assignments were loading wins over the default (this week).
    await loadWeek(view.week || mondayOf(document.getElementById("log-date").value));
    if (navigator.onLine) await syncOutbox();
  });
});
