// What every page does the same way: build elements, say how things went, and call its API through the gateway
// with the signed-in person's token (problem+json answers become readable errors).
"use strict";

const Pages = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function say(id, text, kind) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.className = kind || "";
  }

  class ProblemError extends Error {
    constructor(status, problem) {
      const parts = problem ? [problem.title, problem.detail].filter(Boolean) : [];
      const pointers = problem && Array.isArray(problem.errors)
        ? problem.errors.map((e) => [e.pointer, e.detail].filter(Boolean).join(" ")).filter(Boolean) : [];
      super((parts.length ? parts.join(": ") : `the API answered ${status}`) +
            (pointers.length ? ` (${pointers.join("; ")})` : ""));
      this.status = status;
    }
  }

  // An API under the gateway, called as the signed-in person. status 0: the network or the gateway is unreachable.
  function api(path) {
    const session = { token: null, base: document.querySelector('meta[name="api-base-url"]').content + path };
    async function call(method, route, body, extraHeaders) {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "application/json", ...(extraHeaders || {}) };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let response;
      try {
        response = await fetch(session.base + route, {
          method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        throw new ProblemError(0, { detail: "the gateway cannot be reached" });
      }
      const payload = response.status === 204 ? null : await response.json().catch(() => null);
      if (!response.ok) throw new ProblemError(response.status, payload);
      return payload;
    }
    return { session, call };
  }

  // A fresh id for an idempotent write: sending it twice does it once.
  function freshId(prefix) {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return prefix + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Sign out: the token revoked at the issuer, then a fresh page, so nothing of the person's stays in this one.
  function signOutButton(session) {
    const button = el("button", { type: "button", id: "sign-out-button", class: "sign-out" }, "Sign out");
    button.addEventListener("click", async () => {
      button.disabled = true;
      await PageSignIn.signOut(session.token);
      session.token = null;
      window.location.assign(window.location.pathname);
    });
    return button;
  }

  // The sign-in half every page shares: the button sends the person to sign in; back with a code, `check` proves
  // the token against the page's API once, then `ready(subject)` opens the workspace.
  function signInFlow({ call, session }, check, ready) {
    document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      say("sign-in-status", "Taking you to sign in…");
      await PageSignIn.start();
    });
    (async () => {
      let signedIn;
      try {
        signedIn = await PageSignIn.complete();
        if (!signedIn) return;
        say("sign-in-status", "Signing in…");
        session.token = signedIn.token;
        await check(call);
      } catch (error) {
        session.token = null;
        say("sign-in-status", `Sign-in failed. ${error.message}`, "error");
        document.body.setAttribute("data-sign-in", "failed");
        return;
      }
      document.getElementById("sign-in").hidden = true;
      const workspace = document.getElementById("workspace");
      workspace.prepend(signOutButton(session));
      workspace.hidden = false;
      document.body.setAttribute("data-sign-in", "done");
      await ready(signedIn.subject);
    })();
  }

  return { el, say, ProblemError, api, freshId, signInFlow, signOutButton };
})();
