// lwm2m-rs server UI: the shell (top bar, hash router, live event stream). Views live in their own modules.
// Routes: #/clients, #/clients/{endpoint}, #/security, #/models.

import { h, setChildren } from './util.js';
import { get } from './api.js';
import { EventStream } from './events.js';
import { logoutLink } from './login.js';
import { clientsView } from './clients.js';
import { clientView } from './client.js';
import { securityView } from './security.js';
import { modelsView } from './modelsview.js';

const stream = new EventStream();
const app = document.getElementById('app');

const nav = {
  clients: h('a', { href: '#/clients', id: 'nav-clients' }, 'Clients'),
  security: h('a', { href: '#/security', id: 'nav-security' }, 'Security'),
  models: h('a', { href: '#/models', id: 'nav-models' }, 'Object models'),
};
const liveDot = h('span', { class: 'live-dot', id: 'sse-status', 'data-state': 'connecting' }, 'connecting');
const serverInfo = h('span', { id: 'server-info' });
const account = h('span', { id: 'account' });
const main = h('main', { id: 'view' });

setChildren(app,
  h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/clients' }, h('span', { class: 'brand-mark' }, 'LwM2M'), ' lwm2m-rs server'),
    h('nav', {}, nav.clients, nav.security, nav.models),
    h('span', { class: 'status' }, serverInfo, liveDot, account)),
  main);

stream.onStatus((s) => {
  liveDot.dataset.state = s;
  liveDot.textContent = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', login: 'log in…' }[s] || s;
  liveDot.title = s === 'live' ? 'Receiving server events (GET /api/events)' : 'Event stream not connected';
});

async function refreshHealth() {
  try {
    const hl = await get('/api/health');
    serverInfo.textContent = `v${hl.version} · ${hl.registrations} registered · CoAP ${hl.coap.join(', ')}`;
    // With --api-token: a way to end the session.
    if (hl.auth && !account.firstChild) account.append(logoutLink());
  } catch (e) {
    serverInfo.textContent = `server unreachable (${e.reason || e.message})`;
  }
}

// The current view: { el, dispose() }.
let current = null;

function route() {
  const hash = location.hash || '#/clients';
  const parts = hash.replace(/^#\/?/, '').split('/');
  if (current && current.dispose) current.dispose();
  current = null;
  for (const a of Object.values(nav)) a.classList.remove('active');
  let view;
  if (parts[0] === 'clients' && parts.length > 1 && parts[1] !== '') {
    nav.clients.classList.add('active');
    view = clientView(decodeURIComponent(parts[1]), stream);
  } else if (parts[0] === 'security') {
    nav.security.classList.add('active');
    view = securityView(stream);
  } else if (parts[0] === 'models') {
    nav.models.classList.add('active');
    view = modelsView(parts[1] ? Number(parts[1]) : null);
  } else {
    nav.clients.classList.add('active');
    view = clientsView(stream);
  }
  current = view;
  setChildren(main, view.el);
  window.scrollTo(0, 0);
}

// Unexpected script errors are shown (a UI bug should not fail silently).
const uiErrors = h('div', { id: 'ui-errors', class: 'ui-errors' });
document.body.append(uiErrors);
function uiError(text) {
  uiErrors.append(h('div', { class: 'message err ui-error' }, `Unexpected UI error: ${text}`,
    h('button', { type: 'button', class: 'small', onclick: (e) => e.target.parentElement.remove() }, 'Dismiss')));
}
window.addEventListener('error', (e) => uiError(e.message || String(e.error)));
window.addEventListener('unhandledrejection', (e) => uiError(e.reason && (e.reason.reason || e.reason.message) || String(e.reason)));

window.addEventListener('hashchange', route);
window.addEventListener('api-login', refreshHealth);
stream.subscribe((ev) => {
  if (['registered', 'deregistered', 'expired', 'lagged', 'reconnected'].includes(ev.kind)) refreshHealth();
});
stream.start();
refreshHealth();
route();
