// The finance dashboard: signs in through the experience tier's demo login, then reads each panel from the
// dashboards API through the gateway. No data ships with the page; every figure comes from the API.
"use strict";

const API = "/experience/dashboards/v1";
const SVG = "http://www.w3.org/2000/svg";
const session = { token: null, api: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const money = (amount, currency) =>
  amount === null || amount === undefined ? "n/a" : `${number.format(Number(amount))} ${currency}`;
const pct = (value) => (value === null || value === undefined ? "n/a" : `${value}%`);

// A table cell; data-value keeps the API's exact decimal string for anyone reading the page by machine.
function cell(text, value, numeric) {
  return el("td", { class: numeric ? "num" : null, "data-value": value === undefined ? null : String(value) }, text);
}

function fill(table, rows) {
  const body = document.querySelector(`[data-table="${table}"] tbody`);
  body.replaceChildren(...rows);
}

class ProblemError extends Error {
  constructor(status, problem) {
    // Title and detail together: "Upstream unavailable: the process tier is failing; its circuit breaker is open".
    const parts = problem ? [problem.title, problem.detail].filter(Boolean) : [];
    const detail = parts.length ? parts.join(": ") : `the API answered ${status}`;
    super(detail);
    this.status = status;
    this.correlationId = problem && problem.correlation_id;
  }
}

async function call(path) {
  let response;
  try {
    response = await fetch(session.api + API + path, {
      headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json" },
    });
  } catch (error) {
    throw new ProblemError(0, { detail: "the gateway cannot be reached" });
  }
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) throw new ProblemError(response.status, body);
  return body;
}

async function panel(name, path, render) {
  const section = document.querySelector(`[data-panel="${name}"]`);
  const status = section.querySelector(".panel-status");
  const body = section.querySelector(".panel-body");
  section.setAttribute("aria-busy", "true");
  body.hidden = true;
  status.className = "panel-status loading";
  status.setAttribute("role", "status");
  status.textContent = "Loading…";
  try {
    render(await call(path));
    status.textContent = "";
    status.className = "panel-status";
    body.hidden = false;
    section.dataset.state = "loaded";
  } catch (error) {
    status.className = "panel-status error";
    status.setAttribute("role", "alert");
    const reference = error.correlationId ? ` (reference ${error.correlationId})` : "";
    status.textContent = `Could not load this panel: ${error.message}${reference}.`;
    section.dataset.state = "error";
  } finally {
    section.removeAttribute("aria-busy");
  }
}

// -- charts (inline SVG) ------------------------------------------------------------------------------------

function groupedBars(container, title, groups, series) {
  const width = 720, height = 240, left = 40, bottom = 48, top = 16;
  const max = Math.max(100, ...groups.flatMap((g) => series.map((s) => Number(g[s.key] || 0))));
  const slot = (width - left) / Math.max(groups.length, 1);
  const bar = Math.min(28, (slot - 12) / series.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  chart.append(svg("title", {}, title));
  const scale = (v) => ((height - bottom - top) * v) / max;
  groups.forEach((group, i) => {
    series.forEach((s, j) => {
      const value = Number(group[s.key] || 0);
      const x = left + i * slot + 6 + j * bar;
      const h = scale(value);
      const rect = svg("rect", { x, y: height - bottom - h, width: bar - 2, height: h, class: s.className });
      rect.append(svg("title", {}, `${group.label}: ${s.label} ${s.format(group[s.key])}`));
      chart.append(rect);
    });
    chart.append(svg("text", { x: left + i * slot + slot / 2, y: height - bottom + 16, "text-anchor": "middle" },
      group.label.length > 16 ? group.label.slice(0, 15) + "…" : group.label));
  });
  chart.append(svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#8a94a6" }));
  series.forEach((s, j) => {
    chart.append(svg("rect", { x: left + j * 140, y: height - 18, width: 12, height: 12, class: s.className }));
    chart.append(svg("text", { x: left + j * 140 + 18, y: height - 8 }, s.label));
  });
  container.replaceChildren(chart);
}

function burnBar(value) {
  const width = 120, height = 14;
  const burn = value === null || value === undefined ? null : Number(value);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": burn === null ? "no not-to-exceed" : `burn ${value}%` });
  chart.append(svg("rect", { x: 0, y: 0, width, height, class: "burn-track" }));
  if (burn !== null) {
    const band = burn >= 100 ? "burn-bad" : burn >= 90 ? "burn-warn" : "burn-ok";
    chart.append(svg("rect", { x: 0, y: 0, width: Math.min(width, (width * burn) / 100), height, class: band }));
  }
  return chart;
}

// -- panels -------------------------------------------------------------------------------------------------

function renderUtilization(data) {
  const chartRows = data.business_units.map((u) => ({ label: u.label, planned: u.planned_pct, actual: u.actual_pct }));
  groupedBars(document.querySelector('[data-chart="utilization"]'),
    `Planned and actual utilization by business unit, ${data.from_date} to ${data.to_date}`, chartRows, [
      { key: "planned", label: "Planned %", className: "bar-plan", format: pct },
      { key: "actual", label: "Actual %", className: "bar-actual", format: pct },
    ]);
  fill("utilization-units", data.business_units.map((u) => el("tr", { "data-key": u.key },
    el("th", { scope: "row" }, u.label), cell(u.workers, u.workers, true),
    cell(u.capacity_hours, u.capacity_hours, true), cell(u.planned_hours, u.planned_hours, true),
    cell(u.actual_hours, u.actual_hours, true), cell(pct(u.planned_pct), u.planned_pct, true),
    cell(pct(u.actual_pct), u.actual_pct, true), cell(pct(u.billable_pct), u.billable_pct, true))));
  fill("utilization-workers", data.workers.map((w) => el("tr", { "data-key": w.key },
    el("th", { scope: "row" }, w.label), cell(w.business_unit_id), cell(w.capacity_hours, w.capacity_hours, true),
    cell(w.planned_hours, w.planned_hours, true), cell(w.actual_hours, w.actual_hours, true),
    cell(pct(w.planned_pct), w.planned_pct, true), cell(pct(w.actual_pct), w.actual_pct, true))));
}

function amounts(list) {
  return list.length ? list.map((a) => money(a.amount, a.currency)).join(", ") : "none";
}

function renderAging(data) {
  groupedBars(document.querySelector('[data-chart="aging"]'), `Unbilled approved hours by age, as of ${data.as_of}`,
    data.buckets.map((b) => ({ label: b.label, hours: b.hours })), [
      { key: "hours", label: "Hours", className: "bar-actual", format: (v) => `${v} h` },
    ]);
  fill("aging", data.buckets.map((b) => el("tr", { "data-key": b.bucket },
    el("th", { scope: "row" }, b.label), cell(b.entries, b.entries, true), cell(b.hours, b.hours, true),
    cell(b.held_entries, b.held_entries, true), cell(amounts(b.amounts)))));
}

function renderBacklog(data) {
  fill("backlog", data.projects.map((p) => el("tr", { "data-key": p.project_id },
    el("th", { scope: "row" }, p.project_name), cell(p.posted_hours, p.posted_hours, true),
    cell(money(p.posted_amount, p.currency), p.posted_amount, true),
    cell(money(p.milestone_amount, p.currency), p.milestone_amount, true),
    cell(money(p.total_amount, p.currency), p.total_amount, true), cell(p.oldest_work_date || "n/a"))));
}

function renderExceptions(data) {
  const open = document.querySelector('[data-figure="exceptions-open"]');
  open.textContent = data.open_total;
  open.dataset.value = data.open_total;
  groupedBars(document.querySelector('[data-chart="exceptions"]'), "Open exceptions by reason",
    data.by_reason.map((r) => ({ label: r.label, count: r.count })), [
      { key: "count", label: "Open", className: "bar-actual", format: (v) => String(v) },
    ]);
  const rows = (list) => list.map((r) => el("tr", { "data-key": r.key },
    el("th", { scope: "row" }, r.label), cell(r.count, r.count, true)));
  fill("exceptions-units", rows(data.by_business_unit));
  fill("exceptions-reasons", rows(data.by_reason));
  fill("exceptions-ages", rows(data.by_age));
}

function renderMargins(data) {
  fill("margins", data.projects.map((p) => {
    const burn = el("td", { "data-value": p.nte_burn_pct === null ? null : p.nte_burn_pct });
    burn.append(burnBar(p.nte_burn_pct), " ", p.nte_burn_pct === null ? "no cap" : `${p.nte_burn_pct}%`);
    return el("tr", { "data-key": p.project_id },
      el("th", { scope: "row" }, p.project_name), cell(money(p.billed_revenue, p.currency), p.billed_revenue, true),
      cell(money(p.cost, p.currency), p.cost, true), cell(money(p.margin, p.currency), p.margin, true),
      cell(pct(p.margin_pct), p.margin_pct, true),
      cell(p.nte_amount === null ? "none" : money(p.nte_amount, p.currency), p.nte_amount, true), burn);
  }));
  const rates = Object.entries(data.fx_rates_to_usd).map(([c, r]) => `1 ${c} = ${r} USD`).join(", ");
  document.querySelector('[data-figure="fx-note"]').textContent =
    `Costs in other currencies are stated at planning rates: ${rates}.`;
}

function loadAll(period) {
  const [year, month] = period.split("-").map(Number);
  const first = `${period}-01`;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const last = `${period}-${String(lastDay).padStart(2, "0")}`;
  return Promise.all([
    panel("utilization", `/utilization?from_date=${first}&to_date=${last}`, renderUtilization),
    panel("aging", "/unbilled-time-aging", renderAging),
    panel("backlog", "/invoice-ready-backlog", renderBacklog),
    panel("exceptions", "/exceptions-summary", renderExceptions),
    panel("margins", "/project-margins", renderMargins),
  ]);
}

async function signIn(event) {
  event.preventDefault();
  const status = document.getElementById("sign-in-status");
  const button = document.getElementById("sign-in-button");
  const period = document.getElementById("period").value;
  button.disabled = true;
  status.className = "";
  status.textContent = "Signing in…";
  try {
    const response = await fetch("/dashboards/sessions", { method: "POST", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ProblemError(response.status, body);
    session.token = body.access_token;
    session.api = body.api_base_url;
    status.textContent = "Signed in.";
    document.getElementById("signed-in").textContent =
      `Signed in for the demo. Utilization period: ${period}.`;
    document.getElementById("dashboard").hidden = false;
    await loadAll(period);
    document.body.dataset.loaded = "true";
  } catch (error) {
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = `Sign-in failed: ${error.message}.`;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const now = new Date();
  document.getElementById("period").value =
    `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
  document.getElementById("sign-in-form").addEventListener("submit", signIn);
});
