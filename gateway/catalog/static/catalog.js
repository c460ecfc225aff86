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

function setUpTryIt() {
  const form = document.getElementById("try-it-form");
  if (!form) return;
  const operation = document.getElementById("try-operation");
  const path = document.getElementById("try-path");
  operation.addEventListener("change", () => { path.value = operation.value.split(" ")[1]; });
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
      const client = document.getElementById("try-client");
      const user = client.selectedOptions[0].dataset.user === "yes";
      const subjectInput = document.getElementById("try-subject");
      const signIn = document.getElementById("try-sign-in");
      const token = await obtainToken(client.value, user && subjectInput ? subjectInput.value : null,
                                      signIn ? signIn.value.trim() : null);
      const method = operation.value.split(" ")[0];
      const body = document.getElementById("try-body").value.trim();
      const headers = { Authorization: `Bearer ${token}` };
      if (body) headers["Content-Type"] = "application/json";
      const response = await fetch(path.value, { method, headers, body: body && method !== "GET" ? body : undefined });
      status.textContent = `${response.status} ${response.statusText}`;
      correlation.textContent = `correlation id ${response.headers.get("x-correlation-id") || "-"}`;
      const text = await response.text();
      try { output.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { output.textContent = text; }
    } catch (error) {
      status.textContent = "error";
      output.textContent = String(error.message || error);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { setUpSearch(); setUpVersionSwitcher(); setUpTryIt(); });
