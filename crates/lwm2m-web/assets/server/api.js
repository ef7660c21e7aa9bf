// The REST API (docs/openapi.yaml): fetch wrappers that turn `{"error", "reason"}` answers into ApiError.
// A 401 `unauthorized` (the server runs with --api-token) shows the login card, then repeats the call.

import { isUnauthorized, requireLogin } from './login.js';

/** A failed API call: HTTP status, the API's error code and reason (and the whole body). */
export class ApiError extends Error {
  constructor(status, error, reason, body) {
    super(`${error}: ${reason}`);
    this.status = status;
    this.error = error;
    this.reason = reason;
    this.body = body || {};
  }
}

/** The URL of an endpoint's resources: `/api/clients/{ep}` plus `suffix`. */
export function clientUrl(ep, suffix = '') {
  return `/api/clients/${encodeURIComponent(ep)}${suffix}`;
}

/** A query string of the defined members of `params` (`?a=1&b`); `true` gives a bare name. */
export function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    parts.push(v === true ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * Calls the API. `body`: a string is sent as is, anything else as JSON. Resolves to the parsed JSON answer;
 * rejects with ApiError (also for network failures: status 0, error `network`).
 */
export async function call(method, url, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, 'network', `the server did not answer (${e.message}); is it running?`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = null;
  }
  if (!resp.ok) {
    if (isUnauthorized(resp.status, json) && url !== '/api/login') {
      await requireLogin(json.reason);
      return call(method, url, body);
    }
    if (json && json.error) throw new ApiError(resp.status, json.error, json.reason || '', json);
    throw new ApiError(resp.status, `http_${resp.status}`, text || resp.statusText);
  }
  if (json === null) throw new ApiError(resp.status, 'bad_answer', `not JSON: ${text.slice(0, 200)}`);
  return json;
}

export const get = (url) => call('GET', url);
