// The finance dashboard: the person signs in (authorization code + PKCE, signin.js), then the page reads each panel
// from the dashboards API through the gateway with their token. No data and no secret ship with the page.
"use strict";

const API = "/experience/dashboards/v1";
const session = { token: null, api: document.querySelector('meta[name="api-base-url"]').content };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// -- formatting: the one place money, hours and percentages are written for a reader -------------------------

// Money from the API's exact decimal string, never through a float: thousands separators, two decimals, currency.
function money(amount, currency) {
  if (amount === null || amount === undefined) return "n/a";
  const text = String(amount);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const cents = (fraction + "00").slice(0, 2);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}.${cents} ${currency}`;
}
const hoursFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const hours = (value) => (value === null || value === undefined ? "n/a" : `${hoursFormat.format(Number(value))} h`);
const pct = (value) => (value === null || value === undefined ? "n/a" : `${Number(value).toFixed(1)}%`);

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
    const data = await call(path);
    // Shown before drawing: a chart drawn into a hidden box has no size until a later resize.
    body.hidden = false;
    render(data);
    status.textContent = "";
    status.className = "panel-status";
    section.dataset.state = "loaded";
  } catch (error) {
    body.hidden = true;
    status.className = "panel-status error";
    status.setAttribute("role", "alert");
    const reference = error.correlationId ? ` (reference ${error.correlationId})` : "";
    status.textContent = `Could not load this panel: ${error.message}${reference}.`;
    section.dataset.state = "error";
  } finally {
    section.removeAttribute("aria-busy");
  }
}

// -- charts (Chart.js, bundled with the page) ----------------------------------------------------------------

const COLORS = { plan: "#7a8ba8", actual: "#1f6feb", ok: "#1a7f37", warn: "#b35900", bad: "#b42318", neutral: "#5b6474" };
const EMPTY_TEXT = "No data for this period.";

// Writes each bar's value beside it, and records what it wrote on the canvas (data-values) for tests and tools.
const valueLabels = {
  id: "valueLabels",
  afterDatasetsDraw(chart, _args, options) {
    const { ctx } = chart;
    const horizontal = chart.options.indexAxis === "y";
    const written = [];
    ctx.save();
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#1d2433";
    chart.data.datasets.forEach((dataset, i) => {
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden) return;
      meta.data.forEach((bar, j) => {
        const value = dataset.data[j];
        if (value === null || value === undefined) return;
        const text = options.format(value, dataset, j);
        written.push(text);
        if (horizontal) {
          // After a bar's end; a bar below zero gets its value just right of zero, where its row is empty.
          ctx.textBaseline = "middle";
          ctx.textAlign = "left";
          ctx.fillText(text, (value < 0 ? bar.base : bar.x) + 4, bar.y);
        } else {
          ctx.textBaseline = "bottom";
          ctx.textAlign = "center";
          ctx.fillText(text, bar.x, bar.y - 3);
        }
      });
    });
    ctx.restore();
    chart.canvas.dataset.values = JSON.stringify(written);
  },
};

// A bar chart with titled axes, a value on every bar and the total in its title; an empty series says so.
function barChart(container, spec) {
  const existing = container.querySelector("canvas");
  if (existing && window.Chart) {
    const chart = window.Chart.getChart(existing);
    if (chart) chart.destroy();
  }
  const values = spec.datasets.flatMap((d) => d.data).filter((v) => v !== null && v !== undefined);
  if (!spec.labels.length || values.every((v) => Number(v) === 0)) {
    container.replaceChildren(el("h3", { class: "chart-title" }, spec.title),
      el("p", { class: "empty", "data-empty": "true" }, spec.emptyText || EMPTY_TEXT));
    return;
  }
  const horizontal = Boolean(spec.horizontal);
  const canvas = el("canvas", { role: "img", "aria-label": `${spec.title}. ${spec.summary || ""}`.trim() });
  const frame = el("div", { class: "chart-frame" }, canvas);
  if (horizontal) frame.style.height = `${Math.max(160, 60 + spec.labels.length * 22 * spec.datasets.length)}px`;
  container.replaceChildren(el("h3", { class: "chart-title" }, spec.title), frame);
  const valueAxis = { beginAtZero: true, title: { display: true, text: spec.valueTitle },
    ticks: { callback: (v) => spec.tick(v) }, grace: "12%" };
  const categoryAxis = { title: { display: true, text: spec.categoryTitle }, ticks: { autoSkip: false } };
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: spec.labels,
      datasets: spec.datasets.map((d) => ({ ...d, data: d.data.map((v) => (v === null ? null : Number(v))) })),
    },
    options: {
      indexAxis: horizontal ? "y" : "x",
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      layout: { padding: horizontal ? { right: 90, left: 8 } : { top: 18 } },
      scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
      plugins: {
        legend: { display: spec.datasets.length > 1, position: "bottom" },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${spec.format(item.raw, item.dataset, item.dataIndex)}` } },
        valueLabels: { format: spec.format },
      },
    },
    plugins: [valueLabels],
  });
}

function burnBar(value) {
  const width = 120, height = 14;
  const burn = value === null || value === undefined ? null : Number(value);
  const meter = el("meter", { min: 0, max: 100, low: 90, high: 99.9, optimum: 50,
    value: burn === null ? 0 : Math.min(100, burn), "aria-label": burn === null ? "no not-to-exceed" : `burn ${value}%` });
  meter.style.width = `${width}px`;
  meter.style.height = `${height}px`;
  return meter;
}

// -- panels -------------------------------------------------------------------------------------------------

const chartOf = (name) => document.querySelector(`[data-chart="${name}"]`);
const sumOf = (list, key) => list.reduce((total, row) => total + Number(row[key] || 0), 0);

function renderUtilization(data) {
  const t = data.totals;
  const period = `${data.from_date} to ${data.to_date}`;
  const planAndActual = (rows) => [
    { label: "Planned %", data: rows.map((r) => r.planned_pct), backgroundColor: COLORS.plan },
    { label: "Actual %", data: rows.map((r) => r.actual_pct), backgroundColor: COLORS.actual },
  ];
  const percentAxis = { valueTitle: "% of capacity", tick: (v) => `${v}%`, format: pct };
  barChart(chartOf("utilization"), { ...percentAxis,
    title: `By business unit, ${period}: all units planned ${pct(t.planned_pct)}, actual ${pct(t.actual_pct)}`,
    summary: `${t.actual_hours} hours recorded of ${t.capacity_hours} hours of capacity`,
    categoryTitle: "Business unit", labels: data.business_units.map((u) => u.label),
    datasets: planAndActual(data.business_units) });
  barChart(chartOf("utilization-workers"), { ...percentAxis, horizontal: true,
    title: `By worker, ${period} (furthest below plan first)`, categoryTitle: "Worker",
    labels: data.workers.map((w) => w.label), datasets: planAndActual(data.workers) });
  const row = (u, unit) => el("tr", { "data-key": u.key },
    el("th", { scope: "row" }, u.label), unit ? cell(u.workers, u.workers, true) : cell(u.business_unit_id),
    cell(hours(u.capacity_hours), u.capacity_hours, true), cell(hours(u.planned_hours), u.planned_hours, true),
    cell(hours(u.actual_hours), u.actual_hours, true), cell(pct(u.planned_pct), u.planned_pct, true),
    cell(pct(u.actual_pct), u.actual_pct, true), ...(unit ? [cell(pct(u.billable_pct), u.billable_pct, true)] : []));
  fill("utilization-units", [...data.business_units.map((u) => row(u, true)),
    el("tr", { class: "total", "data-key": "total" }, ...row({ ...t, label: "Total" }, true).children)]);
  fill("utilization-workers", data.workers.map((w) => row(w, false)));
}

function amounts(list) {
  return list.length ? list.map((a) => money(a.amount, a.currency)).join(", ") : "none";
}

function renderAging(data) {
  barChart(chartOf("aging"), {
    title: `Unbilled approved hours by age, as of ${data.as_of}: ${hours(data.total_hours)} in total, worth ${amounts(data.totals)}`,
    categoryTitle: "Age since work date", valueTitle: "Hours", tick: (v) => `${v} h`, format: (v) => hours(v),
    labels: data.buckets.map((b) => b.label),
    datasets: [{ label: "Hours", data: data.buckets.map((b) => b.hours), backgroundColor: COLORS.actual }] });
  fill("aging", [...data.buckets.map((b) => el("tr", { "data-key": b.bucket },
    el("th", { scope: "row" }, b.label), cell(b.entries, b.entries, true), cell(hours(b.hours), b.hours, true),
    cell(b.held_entries, b.held_entries, true), cell(amounts(b.amounts)))),
  el("tr", { class: "total", "data-key": "total" }, el("th", { scope: "row" }, "Total"),
    cell(data.total_entries, data.total_entries, true), cell(hours(data.total_hours), data.total_hours, true),
    cell(sumOf(data.buckets, "held_entries"), undefined, true), cell(amounts(data.totals)))]);
}

function renderBacklog(data) {
  // One chart per currency: amounts in different currencies never share an axis.
  const currencies = [...new Set(data.projects.map((p) => p.currency))].sort();
  const holder = document.querySelector('[data-charts="backlog"]');
  const total = (c) => (data.totals.find((a) => a.currency === c) || { amount: "0" }).amount;
  holder.replaceChildren(...currencies.map((c) => el("div", { class: "chart", "data-chart": `backlog-${c}` })));
  if (!currencies.length) {
    holder.replaceChildren(el("div", { class: "chart", "data-chart": "backlog-none" }));
    barChart(chartOf("backlog-none"), { title: "Ready to invoice", labels: [], datasets: [] });
  }
  for (const c of currencies) {
    const rows = data.projects.filter((p) => p.currency === c);
    barChart(chartOf(`backlog-${c}`), { horizontal: true,
      title: `Ready to invoice in ${c}: ${money(total(c), c)} in total`, categoryTitle: "Project",
      valueTitle: `Amount (${c})`, tick: (v) => `${Number(v).toLocaleString("en-US")}`,
      format: (v, _d, i) => money(rows[i].total_amount, c), labels: rows.map((p) => p.project_name),
      datasets: [{ label: `Total (${c})`, data: rows.map((p) => p.total_amount), backgroundColor: COLORS.actual }] });
  }
  fill("backlog", [...data.projects.map((p) => el("tr", { "data-key": p.project_id },
    el("th", { scope: "row" }, p.project_name), cell(hours(p.posted_hours), p.posted_hours, true),
    cell(money(p.posted_amount, p.currency), p.posted_amount, true),
    cell(money(p.milestone_amount, p.currency), p.milestone_amount, true),
    cell(money(p.total_amount, p.currency), p.total_amount, true), cell(p.oldest_work_date || "n/a"))),
  el("tr", { class: "total", "data-key": "total" }, el("th", { scope: "row" }, "Total"),
    cell(hours(sumOf(data.projects, "posted_hours")), undefined, true), cell(""), cell(""),
    cell(amounts(data.totals), undefined, true), cell(""))]);
}

function renderExceptions(data) {
  const open = document.querySelector('[data-figure="exceptions-open"]');
  open.textContent = data.open_total;
  open.dataset.value = data.open_total;
  const taxHolds = document.querySelector('[data-figure="exceptions-tax-holds"]');
  taxHolds.textContent = data.tax_holds;
  taxHolds.dataset.value = data.tax_holds;
  const counts = (name, title, category, list) => barChart(chartOf(name), { horizontal: true,
    title: `${title}: ${sumOf(list, "count")} open`, categoryTitle: category, valueTitle: "Open exceptions",
    tick: (v) => (Number.isInteger(v) ? String(v) : ""), format: (v) => String(v), labels: list.map((r) => r.label),
    datasets: [{ label: "Open", data: list.map((r) => r.count), backgroundColor: COLORS.bad }] });
  counts("exceptions-units", "By business unit", "Business unit", data.by_business_unit);
  counts("exceptions-reasons", "By reason", "Reason code", data.by_reason);
  counts("exceptions-ages", "By age", "Age", data.by_age);
  const rows = (list) => list.map((r) => el("tr", { "data-key": r.key },
    el("th", { scope: "row" }, r.label), cell(r.count, r.count, true)));
  fill("exceptions-units", rows(data.by_business_unit));
  fill("exceptions-reasons", rows(data.by_reason));
  fill("exceptions-ages", rows(data.by_age));
}

function renderMargins(data) {
  const measured = data.projects.filter((p) => p.margin_pct !== null);
  const losing = measured.filter((p) => Number(p.margin_pct) < 0).length;
  const noRevenue = data.projects.filter((p) => p.margin_pct === null && Number(p.cost || 0) > 0);
  const unearned = noRevenue.length
    ? `; ${noRevenue.length} with cost and no revenue yet (${noRevenue.map((p) => p.project_name).join(", ")})` : "";
  barChart(chartOf("margins"), { horizontal: true,
    title: `Margin by project, planned against actual: ${measured.length - losing} of ${measured.length} projects above cost${unearned}`,
    categoryTitle: "Project", valueTitle: "Margin, % of revenue", tick: (v) => `${v}%`, format: pct,
    labels: measured.map((p) => p.project_name),
    datasets: [
      { label: "Planned margin %", data: measured.map((p) => p.planned_margin_pct), backgroundColor: COLORS.plan },
      { label: "Actual margin %", data: measured.map((p) => p.margin_pct),
        backgroundColor: measured.map((p) => (Number(p.margin_pct) < 0 ? COLORS.bad : COLORS.ok)) }] });
  renderUnitMargins(data);
  renderExpenses(data);
  const flagged = data.projects.filter((p) => p.attention);
  document.querySelector('[data-list="attention"]').replaceChildren(...(flagged.length
    ? flagged.map((p) => el("li", { "data-key": p.project_id }, el("strong", {}, p.project_name), `: ${p.attention}`))
    : [el("li", {}, "No project needs attention.")]));
  const capped = data.projects.filter((p) => p.nte_burn_pct !== null);
  barChart(chartOf("burn"), { horizontal: true,
    title: `Burn against not-to-exceed: ${capped.filter((p) => Number(p.nte_burn_pct) >= 90).length} of ${capped.length} capped contracts at 90% or more`,
    categoryTitle: "Project", valueTitle: "% of not-to-exceed billed", tick: (v) => `${v}%`,
    format: (v, _d, i) => `${pct(v)} of ${money(capped[i].nte_amount, capped[i].currency)}`,
    labels: capped.map((p) => p.project_name),
    datasets: [{ label: "Burn %", data: capped.map((p) => p.nte_burn_pct), backgroundColor: capped.map((p) =>
      Number(p.nte_burn_pct) >= 100 ? COLORS.bad : Number(p.nte_burn_pct) >= 90 ? COLORS.warn : COLORS.ok) }] });
  fill("margins", data.projects.map((p) => {
    const burn = el("td", { "data-value": p.nte_burn_pct === null ? null : p.nte_burn_pct });
    burn.append(burnBar(p.nte_burn_pct), " ", p.nte_burn_pct === null ? "no cap" : `${p.nte_burn_pct}%`);
    return el("tr", { "data-key": p.project_id },
      el("th", { scope: "row" }, p.project_name), cell(money(p.billed_revenue, p.currency), p.billed_revenue, true),
      cell(money(p.unbilled_revenue, p.currency), p.unbilled_revenue, true),
      cell(money(p.cost, p.currency), p.cost, true), cell(money(p.margin, p.currency), p.margin, true),
      cell(pct(p.margin_pct), p.margin_pct, true),
      cell(money(p.planned_margin, p.currency), p.planned_margin, true),
      cell(pct(p.planned_margin_pct), p.planned_margin_pct, true),
      cell(p.nte_amount === null ? "none" : money(p.nte_amount, p.currency), p.nte_amount, true), burn);
  }));
  const converted = [...new Set(data.projects.flatMap((p) => p.cost_converted_from))].sort();
  const rates = Object.entries(data.fx_rates_to_usd).filter(([c]) => c !== "USD")
    .map(([c, rate]) => `1 ${c} = ${rate} USD`).join(", ");
  document.querySelector('[data-figure="fx-note"]').textContent = converted.length
    ? `Cost of people employed in another currency (${converted.join(", ")}) is converted into each project's ` +
      `contract currency at planning rates set on ${data.fx_rates_as_of}: ${rates}.`
    : "Every cost is in its project's contract currency: no exchange rate was used.";
}

// Plan against actual per business unit, in the reporting currency, with the firm's total under them.
function renderUnitMargins(data) {
  const c = data.reporting_currency;
  const units = data.business_units;
  const t = data.totals;
  barChart(chartOf("margins-units"), {
    title: `Margin by business unit to ${data.planned_as_of}, in ${c}: planned ${money(t ? t.planned_margin : null, c)}, actual ${money(t ? t.margin : null, c)}`,
    categoryTitle: "Business unit", valueTitle: `Margin (${c})`, tick: (v) => Number(v).toLocaleString("en-US"),
    format: (v, d, i) => money(units[i][d.key], c), labels: units.map((u) => u.label),
    datasets: [
      { label: "Planned margin", key: "planned_margin", data: units.map((u) => u.planned_margin), backgroundColor: COLORS.plan },
      { label: "Actual margin", key: "margin", data: units.map((u) => u.margin), backgroundColor: COLORS.actual }] });
  const row = (u, key, label) => el("tr", { "data-key": key, class: key === "total" ? "total" : null },
    el("th", { scope: "row" }, label), cell(u.projects, u.projects, true),
    cell(money(u.planned_revenue, c), u.planned_revenue, true), cell(money(u.planned_cost, c), u.planned_cost, true),
    cell(money(u.planned_margin, c), u.planned_margin, true), cell(pct(u.planned_margin_pct), u.planned_margin_pct, true),
    cell(money(u.earned_revenue, c), u.earned_revenue, true), cell(money(u.cost, c), u.cost, true),
    cell(money(u.margin, c), u.margin, true), cell(pct(u.margin_pct), u.margin_pct, true));
  fill("margins-units", [...units.map((u) => row(u, u.business_unit_id, u.label)), ...(t ? [row(t, "total", "Total")] : [])]);
}

// Exact decimal sums for totals: money strings added in integer cents (BigInt), never through floats.
function addMoney(list) {
  const cents = list.reduce((total, amount) => {
    const text = String(amount || "0");
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
    const value = BigInt(whole || "0") * 100n + BigInt((fraction + "00").slice(0, 2));
    return total + (negative ? -value : value);
  }, 0n);
  const negative = cents < 0n;
  const absolute = negative ? -cents : cents;
  return `${negative ? "-" : ""}${absolute / 100n}.${String(absolute % 100n).padStart(2, "0")}`;
}

const negated = (amount) => (String(amount).startsWith("-") ? String(amount).slice(1) : `-${amount}`);
// What invoices recover of expenses less what they cost (negative: the firm bears the difference).
const netOf = (figures) => addMoney([figures.expense_revenue, negated(figures.expense_cost)]);

// Expenses: their cost (every expense the ERP booked) against what invoices recover (billable ones, at cost or
// with the markup), by business unit in the reporting currency and by project in its own currency.
function renderExpenses(data) {
  const c = data.reporting_currency;
  const units = data.business_units;
  const t = data.totals;
  barChart(chartOf("margins-expenses"), {
    title: `Expenses by business unit to ${data.planned_as_of}, in ${c}: cost ${money(t ? t.expense_cost : null, c)}, recovered ${money(t ? t.expense_revenue : null, c)}, net ${t ? money(netOf(t), c) : "n/a"}`,
    emptyText: "No expenses booked on any project yet.",
    categoryTitle: "Business unit", valueTitle: `Amount (${c})`, tick: (v) => Number(v).toLocaleString("en-US"),
    format: (v, d, i) => money(units[i][d.key], c), labels: units.map((u) => u.label),
    datasets: [
      { label: "Expense cost", key: "expense_cost", data: units.map((u) => u.expense_cost), backgroundColor: COLORS.bad },
      { label: "Recovered by invoices", key: "expense_revenue", data: units.map((u) => u.expense_revenue),
        backgroundColor: COLORS.ok }] });
  const spent = data.projects.filter((p) => Number(p.expense_cost) !== 0 || Number(p.expense_revenue) !== 0)
    .sort((a, b) => a.currency.localeCompare(b.currency) || a.project_name.localeCompare(b.project_name));
  const row = (p, key, label, currency, extra) => {
    const netValue = netOf(p);
    return el("tr", { "data-key": key, class: extra },
      el("th", { scope: "row" }, label), cell(money(p.expense_cost, currency), p.expense_cost, true),
      cell(money(p.billed_expenses, currency), p.billed_expenses, true),
      cell(money(p.unbilled_expenses, currency), p.unbilled_expenses, true),
      cell(money(p.expense_revenue, currency), p.expense_revenue, true), cell(money(netValue, currency), netValue, true));
  };
  const currencies = [...new Set(spent.map((p) => p.currency))].sort();
  const totals = currencies.map((currency) => {
    const rows = spent.filter((p) => p.currency === currency);
    const sum = (key) => addMoney(rows.map((p) => p[key]));
    return row({ expense_cost: sum("expense_cost"), billed_expenses: sum("billed_expenses"),
      unbilled_expenses: sum("unbilled_expenses"), expense_revenue: sum("expense_revenue") },
    `total-${currency}`, `Total (${currency})`, currency, "total");
  });
  fill("margins-expenses", spent.length
    ? [...spent.map((p) => row(p, p.project_id, p.project_name, p.currency, null)), ...totals]
    : [el("tr", {}, el("td", { colspan: 6 }, "No expenses booked on any project yet."))]);
}

// The month picked, up to today when it is still running: days not yet worked have no actuals to compare.
function periodOf(month, today) {
  const [year, number] = month.split("-").map(Number);
  const lastDay = new Date(Date.UTC(year, number, 0)).getUTCDate();
  const first = `${month}-01`;
  const last = `${month}-${String(lastDay).padStart(2, "0")}`;
  return { first, last: last > today ? (today < first ? first : today) : last };
}

function loadAll(month) {
  const today = new Date().toISOString().slice(0, 10);
  const { first, last } = periodOf(month, today);
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
  document.getElementById("sign-in-button").disabled = true;
  document.getElementById("sign-in-status").textContent = "Taking you to sign in…";
  await PageSignIn.start({ period: document.getElementById("period").value });
}

// Back from the sign-in page with a code (or a refusal): load the period picked before leaving.
async function completeSignIn() {
  const status = document.getElementById("sign-in-status");
  let signedIn;
  try {
    signedIn = await PageSignIn.complete();
  } catch (error) {
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = `Sign-in failed: ${error.message}.`;
    document.body.dataset.signIn = "failed";
    return;
  }
  if (!signedIn) return;
  session.token = signedIn.token;
  const period = (signedIn.keep && signedIn.keep.period) || document.getElementById("period").value;
  document.getElementById("period").value = period;
  status.textContent = "Signed in.";
  document.getElementById("signed-in").textContent =
    `Signed in as ${signedIn.subject || "you"}. Utilization period: ${period}.`;
  document.getElementById("dashboard").prepend(Pages.signOutButton(session));
  document.getElementById("dashboard").hidden = false;
  await loadAll(period);
  document.body.dataset.loaded = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  // The last complete month: the current one has only its first days recorded, and this week's time is draft.
  const now = new Date();
  const previous = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  document.getElementById("period").value =
    `${previous.getUTCFullYear()}-${String(previous.getUTCMonth() + 1).padStart(2, "0")}`;
  document.getElementById("sign-in-form").addEventListener("submit", signIn);
  completeSignIn();
});
