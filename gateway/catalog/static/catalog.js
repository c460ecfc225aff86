// The catalog's only script: live search filtering, the version switcher, and the try-it console.
"use strict";

function filterRows(query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  document.querySelectorAll("tr.api").forEach((row) => {
    const text = row.textContent.toLowerCase();
    row.hidden = !words.every((w) => text.includes(w));
  });
  document.querySelectorAll("section.layer").forEach((section) => {
    section.hidden = section.querySelectorAll("tr.api:not([hidden])").length === 0;
  });
}

function setUpSearch() {
  const input = document.getElementById("search");
  if (!input || !document.querySelector("tr.api")) return;
  input.addEventListener("input", () => filterRows(input.value));
}

function setUpVersionSwitcher() {
  const select = document.getElementById("version-switcher");
  if (select) select.addEventListener("change", () => { window.location.href = select.value; });
}

async function obtainToken(clientId, subject, signIn) {
  const headers = { "Content-Type": "application/json" };
  if (signIn) headers.Authorization = `Bearer ${signIn}`;  // signed-in mode: a token for this person only
  const response = await fetch("/catalog/try-it/token", {
    method: "POST",
    headers,
    body: JSON.stringify({ client_id: clientId, subject: subject || null }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `token request failed (${response.status})`);
  return body.access_token;
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function curlOf(method, url, token, body) {
  const lines = [`curl -s -i -X ${method} ${shellQuote(url)}`, `-H ${shellQuote(`Authorization: Bearer ${token}`)}`];
  if (body) lines.push("-H 'Content-Type: application/json'", `-d ${shellQuote(body)}`);
  return lines.join(" \\\n  ");
}

// Prefill from the chosen operation (path with its parameters' examples, body from the request example) and
// offer only the clients the layer rule and their scopes let call it.
function prefill(operation, client, path, body) {
  const chosen = operation.selectedOptions[0];
  path.value = chosen.dataset.path;
  body.value = chosen.dataset.body;
  const allowed = chosen.dataset.clients.split(" ").filter(Boolean);
  Array.from(client.options).forEach((option) => { option.disabled = !allowed.includes(option.value); });
  if (!allowed.includes(client.value) && allowed.length) client.value = allowed[0];
}

function showHeaders(table, headers) {
  const body = table.tBodies[0];
  body.replaceChildren();
  Array.from(headers.entries()).sort().forEach(([name, value]) => {
    const row = body.insertRow();
    row.className = "response-header";
    row.insertCell().textContent = name;
    row.insertCell().textContent = value;
  });
}

function setUpTryIt() {
  const form = document.getElementById("try-it-form");
  if (!form) return;
  const operation = document.getElementById("try-operation");
  const client = document.getElementById("try-client");
  const path = document.getElementById("try-path");
  const bodyInput = document.getElementById("try-body");
  prefill(operation, client, path, bodyInput);
  operation.addEventListener("change", () => prefill(operation, client, path, bodyInput));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("try-result");
    const status = document.getElementById("try-status");
    const output = document.getElementById("try-response");
    const correlation = document.getElementById("try-correlation");
    result.hidden = false;
    status.textContent = "…";
    output.textContent = "";
    try {
      const user = client.selectedOptions[0].dataset.user === "yes";
      const subjectInput = document.getElementById("try-subject");
      const signIn = document.getElementById("try-sign-in");
      const token = await obtainToken(client.value, user && subjectInput ? subjectInput.value : null,
                                      signIn ? signIn.value.trim() : null);
      const method = operation.selectedOptions[0].dataset.method;
      const body = method === "GET" ? "" : bodyInput.value.trim();
      const headers = { Authorization: `Bearer ${token}` };
      if (body) headers["Content-Type"] = "application/json";
      const response = await fetch(path.value, { method, headers, body: body || undefined });
      status.textContent = `${response.status} ${response.statusText}`;
      correlation.textContent = `correlation id ${response.headers.get("x-correlation-id") || "-"}`;
      showHeaders(document.getElementById("try-headers"), response.headers);
      document.getElementById("try-curl").textContent = curlOf(method, new URL(path.value, window.location.href).href,
                                                               token, body);
      const text = await response.text();
      try { output.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { output.textContent = text; }
    } catch (error) {
      status.textContent = "error";
      output.textContent = String(error.message || error);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { setUpSearch(); setUpVersionSwitcher(); setUpTryIt(); });
