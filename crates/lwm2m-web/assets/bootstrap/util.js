// Small helpers shared by the Bootstrap UI modules: DOM building, the REST client, formatting.

import { isUnauthorized, requireLogin } from './login.js';

/** Builds an element: h('div', {class: 'x', onclick: fn, dataset: {a: 1}}, child, 'text', [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An API failure: the server's `{"error", "reason"}` (or what went wrong on the way). */
export class ApiError extends Error {
  constructor(status, error, reason) {
    super(`${error}: ${reason}`);
    this.status = status;
    this.error = error;
    this.reason = reason;
  }
}

/** Calls the REST API; resolves to `{status, body}` (body parsed JSON or null), rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network_error', `the Bootstrap-Server did not answer (${e.message})`);
  }
  const text = await resp.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!resp.ok) {
    // The Bootstrap-Server runs with --api-token: log in, then repeat the call.
    if (isUnauthorized(resp.status, json) && path !== '/api/login') {
      await requireLogin(json.reason);
      return api(method, path, body);
    }
    const error = (json && json.error) || `http_${resp.status}`;
    const reason = (json && json.reason) || text || resp.statusText;
    throw new ApiError(resp.status, error, reason);
  }
  return { status: resp.status, body: json };
}

/** The path segment of an endpoint name. */
export const enc = (s) => encodeURIComponent(s);

/** `YYYY-MM-DD HH:MM:SS` local time of a Unix time in seconds. */
export function fmtTime(s) {
  if (s === null || s === undefined) return '—';
  const d = new Date(s * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `HH:MM:SS` today, else `YYYY-MM-DD HH:MM`. */
export function fmtWhen(s) {
  if (s === null || s === undefined) return '—';
  const t = fmtTime(s);
  return t.slice(0, 10) === fmtTime(Date.now() / 1000).slice(0, 10) ? t.slice(11) : t.slice(0, 16);
}

/** `HH:MM:SS` local time. */
export function fmtClock(s) {
  return s === null || s === undefined ? '—' : fmtTime(s).slice(11);
}

/** A badge for a CoAP response code ("2.04" ok, 4.xx/5.xx err, none muted). */
export function codeBadge(code) {
  if (!code) return h('span', { class: 'badge' }, 'no answer');
  const cls = code.startsWith('2.') ? 'ok' : (code.startsWith('4.') || code.startsWith('5.')) ? 'err' : 'info';
  return h('span', { class: `badge ${cls} code` }, code);
}

/** A badge for a session result. */
export function resultBadge(result, active) {
  if (active) return h('span', { class: 'badge info' }, 'running');
  if (result === 'finished') return h('span', { class: 'badge ok' }, 'finished');
  if (result === 'failed') return h('span', { class: 'badge err' }, 'failed');
  return h('span', { class: 'badge' }, 'no session');
}

/** A message box (`ok` or `err`) in `el`; an ApiError shows its code and reason. */
export function showMessage(el, kind, content) {
  if (content instanceof ApiError) {
    replace(el, h('strong', {}, content.error), ' — ', content.reason,
      content.status ? h('span', { class: 'muted' }, `  (HTTP ${content.status})`) : null);
  } else if (content instanceof Error) {
    replace(el, content.message);
  } else {
    replace(el, content);
  }
  el.className = `message ${kind}`;
  el.hidden = false;
}

/** Hides a message box. */
export function clearMessage(el) {
  el.hidden = true;
  el.replaceChildren();
}

/** Random bytes as hex (for new PSK keys). */
export function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
