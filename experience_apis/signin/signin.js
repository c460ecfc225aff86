// Sign-in for the pages: OAuth 2.0 authorization code with PKCE (RFC 7636, S256 through crypto.subtle).
// The page holds no secret. The access token stays in memory (gone when the tab closes or reloads); only the
// PKCE verifier and the state live in sessionStorage, for the round trip to the sign-in page and back.
"use strict";

const PageSignIn = (() => {
  const KEY = "psgw.sign-in";
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const settings = () => ({
    authorize: meta("authorization-endpoint"), token: meta("token-endpoint"), clientId: meta("client-id"),
    scope: meta("scope"), redirectUri: window.location.origin + window.location.pathname,
  });

  function base64url(bytes) {
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function random(length) {
    const bytes = new Uint8Array(length);
    crypto.getRandomValues(bytes);
    return base64url(bytes);
  }
  async function challengeOf(verifier) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return base64url(new Uint8Array(digest));
  }

  // Who a JWT access token speaks for, for display only: the API checks the token itself on every call.
  function subjectOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).sub || null;
    } catch (error) {
      return null;
    }
  }

  // Off to the sign-in page; `keep` (e.g. the period picked) comes back with the token.
  async function start(keep) {
    const s = settings();
    const verifier = random(48);
    const state = random(16);
    sessionStorage.setItem(KEY, JSON.stringify({ verifier, state, keep: keep || null }));
    const params = new URLSearchParams({
      response_type: "code", client_id: s.clientId, redirect_uri: s.redirectUri, scope: s.scope, state,
      code_challenge: await challengeOf(verifier), code_challenge_method: "S256",
    });
    window.location.assign(`${s.authorize}?${params}`);
  }

  // Back from the sign-in page: null when this load is not a return from it, else the person's token (or an Error
  // saying why not). The code leaves the address bar and history at once; a state this tab did not send is refused.
  async function complete() {
    const params = new URLSearchParams(window.location.search);
    if (!params.has("code") && !params.has("error")) return null;
    const s = settings();
    const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    sessionStorage.removeItem(KEY);
    window.history.replaceState(null, "", window.location.pathname);
    if (!saved || params.get("state") !== saved.state) {
      throw new Error("this answer does not belong to a sign-in started here (state mismatch)");
    }
    if (params.has("error")) {
      throw new Error(`${params.get("error")}: ${params.get("error_description") || "no reason given"}`);
    }
    let response;
    try {
      response = await fetch(s.token, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams({
          grant_type: "authorization_code", code: params.get("code"), redirect_uri: s.redirectUri,
          client_id: s.clientId, code_verifier: saved.verifier,
        }),
      });
    } catch (error) {
      throw new Error("the token endpoint cannot be reached");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !body.access_token) {
      throw new Error(body && body.error ? `${body.error}: ${body.error_description || ""}` : `the token endpoint answered ${response.status}`);
    }
    return { token: body.access_token, scope: body.scope || "", subject: subjectOf(body.access_token), keep: saved.keep };
  }

  // Signing out: the issuer revokes the token (RFC 7009; a public client names itself by client_id), so a copy
  // of it left anywhere stops working too. The answer is not readable cross-origin and not needed: the page
  // forgets the token either way.
  async function signOut(token) {
    const url = meta("revocation-endpoint");
    if (!url || !token) return;
    const body = new URLSearchParams({ token, token_type_hint: "access_token", client_id: meta("client-id") });
    await fetch(url, { method: "POST", mode: "no-cors", body }).catch(() => null);
  }

  return { start, complete, signOut };
})();
