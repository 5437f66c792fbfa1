/* The dashboard's shared script: JSON API calls with the session cookie and its CSRF header, error display,
   sign-out. Pages add their own small script on top. No framework, no build step. */
"use strict";

const Outrider = (() => {
  function csrfToken() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("outrider_csrf="));
    return found ? decodeURIComponent(found.slice("outrider_csrf=".length)) : "";
  }

  /** The message of an error response in any of the three envelopes (native, OpenAI, Anthropic). */
  function errorMessage(body, status) {
    if (body && typeof body === "object") {
      const detail = body.detail;
      if (typeof detail === "string") return detail;
      if (Array.isArray(detail)) {
        return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
      }
      if (body.error && typeof body.error.message === "string") return body.error.message;
    }
    return `request failed (HTTP ${status})`;
  }

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function headers(extra, hasJson) {
    const sent = { "X-CSRF-Token": csrfToken(), ...(extra || {}) };
    if (hasJson) sent["Content-Type"] = "application/json";
    return sent;
  }

  /** fetch() against the JSON API; throws ApiError with the server's message. 401 goes to sign-in. */
  async function request(method, path, { json, body, headers: extra } = {}) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: headers(extra, json !== undefined),
      body: json !== undefined ? JSON.stringify(json) : body,
    });
    if (response.status === 401 && !path.startsWith("/auth/login")) {
      window.location.assign("/ui/login");
      throw new ApiError("your session has ended; sign in again", 401);
    }
    if (!response.ok) {
      let parsed = null;
      try {
        parsed = await response.json();
      } catch (_) {
        parsed = null;
      }
      throw new ApiError(errorMessage(parsed, response.status), response.status);
    }
    return response;
  }

  async function json(method, path, payload) {
    const response = await request(method, path, payload === undefined ? {} : { json: payload });
    return response.status === 204 ? null : response.json();
  }

  /** The pieces of a streamed response body between ``separator``s, as they arrive (SSE events, log lines). */
  async function* pieces(response, separator) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf(separator)) >= 0) {
        yield buffer.slice(0, cut);
        buffer = buffer.slice(cut + separator.length);
      }
    }
    if (buffer) yield buffer;
  }

  function showError(element, error) {
    const el = typeof element === "string" ? document.getElementById(element) : element;
    if (!el) return;
    if (!error) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.textContent = error.message || String(error);
    el.hidden = false;
  }

  /** Disable a form's submit button while ``work`` runs; errors land in ``errorId``. */
  function onSubmit(form, errorId, work) {
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      showError(errorId, null);
      if (button) button.disabled = true;
      try {
        await work(event);
      } catch (error) {
        showError(errorId, error);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  /** A button that asks ``question`` first (a cancel does nothing), then runs ``work`` disabled; errors land
      in ``errorId``. For every change that cannot be undone or stops something. */
  function onConfirmedClick(button, question, errorId, work) {
    if (!button) return;
    button.addEventListener("click", async () => {
      if (!window.confirm(question)) return;
      button.disabled = true;
      showError(errorId, null);
      try {
        await work();
      } catch (error) {
        showError(errorId, error);
      } finally {
        button.disabled = false;
      }
    });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function usd(value) {
    if (value === null || value === undefined) return "-";
    const [whole, cents] = value.toFixed(6).replace(/0+$/, "").split(".");
    return `$${whole}.${(cents || "").padEnd(2, "0")}`;
  }

  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      try {
        await request("POST", "/auth/logout");
      } catch (error) {
        showError("page-error", error);
        return;
      }
      window.location.assign("/ui/login");
    });
  }

  return { request, json, pieces, showError, onSubmit, onConfirmedClick, el, usd, ApiError };
})();
