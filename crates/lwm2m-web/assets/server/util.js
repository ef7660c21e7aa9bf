// Small DOM and formatting helpers shared by the views. No framework: h() builds elements.

/**
 * Creates an element. `attrs`: class, text, data-*, on* handlers (functions), boolean properties
 * (disabled, checked, selected, hidden), anything else as an attribute. Children: nodes, strings, arrays,
 * null/undefined/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (['disabled', 'checked', 'selected', 'hidden', 'open'].includes(k)) el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces every child of `el`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A badge: kind ok|warn|err|info or none. */
export function badge(text, kind, attrs) {
  return h('span', { class: kind ? `badge ${kind}` : 'badge', ...(attrs || {}) }, text);
}

/** `12 s ago`, `3 min ago`, ... for a server time in ms since the Unix epoch. */
export function ago(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** `in 4 min` / `3 s ago` for a future or past time. */
export function until(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = Math.round((ms - Date.now()) / 1000);
  if (s < 0) return ago(ms);
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.floor(s / 60)} min`;
  return `in ${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A local date-time string of a time in ms. */
export function dateTime(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `hh:mm:ss.mmm` of a time in ms (event log). */
export function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A duration in seconds as `300 s (5 min)`. */
export function seconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${s} s (${Math.round(s / 60)} min)`;
  if (s < 172800) return `${s} s (${Math.round(s / 3600)} h)`;
  return `${s} s (${Math.round(s / 86400)} d)`;
}

function b64ToHex(b64) {
  try {
    return Array.from(atob(b64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return b64;
  }
}

/** A value of the API's JSON form as display text (`type` from the model when known). */
export function showValue(v, type) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object' && typeof v.base64 === 'string') {
    const hex = b64ToHex(v.base64);
    const bytes = hex.length / 2;
    return bytes > 24 ? `0x${hex.slice(0, 48)}… (${bytes} bytes)` : `0x${hex}`;
  }
  if (type === 'time' && typeof v === 'number') {
    if (v <= 0) return String(v);
    return `${new Date(v * 1000).toISOString().replace('.000Z', 'Z')}`;
  }
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Pretty JSON text. */
export function pretty(j) {
  return JSON.stringify(j, null, 2);
}

/** Debounces `fn` by `ms`. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Hex of `n` random bytes (a fresh PSK key). */
export function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Compares LwM2M path strings numerically (`/3/0/2` before `/3/0/10`). */
export function comparePaths(a, b) {
  const x = a.split('/').filter(Boolean).map(Number);
  const y = b.split('/').filter(Boolean).map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The numeric ids of an LwM2M path string, or null when it is not one. */
export function parsePath(text) {
  const t = String(text).trim();
  if (!/^\/?\d+(\/\d+){0,3}$/.test(t)) return null;
  const ids = t.split('/').filter(Boolean).map(Number);
  if (ids.some((n) => n > 65535)) return null;
  return ids;
}
