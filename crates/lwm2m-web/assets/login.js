// Login for an API that runs with --api-token, shared by the server UI and the Bootstrap UI.
//
// On a 401 `unauthorized` answer the UI calls requireLogin(): a card over the page asks for the token and
// POSTs it to /api/login, which sets an HttpOnly session cookie (also what lets EventSource open
// /api/events). The promise resolves once logged in, so the failed call is simply repeated and the page
// continues where it was. Concurrent 401s share one card.

let pending = null;

/** Whether an answer is the API's "log in first" refusal. */
export function isUnauthorized(status, json) {
  return status === 401 && !!json && json.error === 'unauthorized';
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** Shows the login card (once) and resolves when the user has logged in. `reason`: the API's words. */
export function requireLogin(reason) {
  if (pending) return pending;
  pending = new Promise((resolve) => {
    const token = el('input', {
      id: 'login-token', type: 'password', autocomplete: 'current-password', spellcheck: 'false',
      placeholder: 'API token', 'aria-label': 'API token',
    });
    const error = el('div', { id: 'login-error', class: 'message err', hidden: '' });
    const submit = el('button', { id: 'login-submit', type: 'submit', class: 'primary' }, 'Log in');
    const form = el('form', { class: 'card login-card', id: 'login-card' },
      el('h2', {}, 'Log in'),
      el('p', { class: 'muted' },
        'This API needs its token (the --api-token the server was started with). ',
        'Logging in keeps a session cookie in this browser for 12 hours.'),
      el('p', { class: 'muted small', id: 'login-reason' }, reason || ''),
      el('div', { class: 'toolbar' }, token, submit),
      error);
    const backdrop = el('div', { class: 'login-backdrop', id: 'login' }, form);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const resp = await fetch('/api/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token: token.value.trim() }),
        });
        let body = null;
        try { body = await resp.json(); } catch { body = null; }
        if (!resp.ok) {
          error.textContent = resp.status === 401
            ? 'That token is wrong. It is the value of --api-token (or of the --api-token-file) of the server.'
            : `Login failed: ${(body && body.reason) || resp.statusText}`;
          error.hidden = false;
          token.select();
          return;
        }
        backdrop.remove();
        pending = null;
        window.dispatchEvent(new Event('api-login'));
        resolve();
      } catch (err) {
        error.textContent = `The server did not answer (${err.message}).`;
        error.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(backdrop);
    token.focus();
  });
  return pending;
}

/** Ends the session and reloads the page (which then asks for the token again). */
export async function logout() {
  try {
    await fetch('/api/logout', { method: 'POST' });
  } finally {
    location.reload();
  }
}

/** A "Log out" link for the top bar (id `logout`). */
export function logoutLink() {
  return el('a', {
    href: '#', id: 'logout', class: 'logout', title: 'End this browser session (POST /api/logout)',
    onclick: (e) => { e.preventDefault(); logout(); },
  }, 'Log out');
}
