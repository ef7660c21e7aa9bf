// The Bootstrap-Server UI: hash routes #/configs, #/configs/{ep}, #/default, #/sessions, #/sessions/{ep}.
// Talks to the REST API of `lwm2m bootstrap` (docs/bootstrap.md) and follows its Server-Sent Events.

import { h, replace, api, enc, fmtTime, fmtClock, fmtWhen, codeBadge, resultBadge, showMessage, ApiError } from './util.js';
import { renderEditor } from './editor.js';
import { requireLogin, logoutLink } from './login.js';

const EVENT_KINDS = ['session-started', 'refused', 'operation', 'accounts-found', 'acl-state', 'repaired', 'finished', 'failed', 'lagged'];

// -------------------------------------------------------------------------------------------------
// Live events: one EventSource for the whole page; pages subscribe while shown.
// -------------------------------------------------------------------------------------------------

const listeners = new Set();
/** What the events told since the page loaded, per endpoint: session meta and the accounts found (BsR-7). */
const live = new Map();

function liveOf(ep) {
  if (!live.has(ep)) live.set(ep, { sessions: new Map(), found: null, repaired: null });
  return live.get(ep);
}

function record(ev) {
  if (!ev.endpoint) return;
  const l = liveOf(ev.endpoint);
  const s = l.sessions.get(ev.session) || {};
  l.sessions.set(ev.session, s);
  switch (ev.kind) {
    case 'session-started':
      Object.assign(s, { peer: ev.peer, secure: ev.secure, pct: ev.pct, default_config: ev.default_config, started: ev.time_unix_s });
      break;
    case 'accounts-found': l.found = ev; break;
    case 'repaired': l.repaired = ev; break;
    case 'finished': s.result = 'finished'; break;
    case 'failed': s.result = 'failed'; s.reason = ev.reason; break;
    default: break;
  }
}

function setLive(state) {
  const el = document.getElementById('live');
  el.textContent = { live: 'live', connecting: 'connecting', login: 'log in…' }[state] || 'events offline';
  el.dataset.state = state;
}

function startEvents() {
  setLive('connecting');
  const es = new EventSource('/api/events');
  let opened = false;
  es.onopen = () => {
    setLive('live');
    // After a reconnection, events may have been missed: pages re-read what they show.
    if (opened) for (const f of listeners) f({ kind: 'reconnected' });
    opened = true;
  };
  es.onerror = async () => {
    if (es.readyState !== EventSource.CLOSED) { setLive('connecting'); return; }
    setLive('offline');
    // The browser gives up after an HTTP error such as 401: with --api-token, log in and open it again.
    try {
      const hl = await (await fetch('/api/health')).json();
      if (!hl.auth || hl.authenticated) return;
    } catch { return; }
    setLive('login');
    await requireLogin('The event stream (GET /api/events) needs a login.');
    startEvents();
  };
  for (const kind of EVENT_KINDS) {
    es.addEventListener(kind, (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      record(ev);
      for (const f of listeners) f(ev);
    });
  }
}

function subscribe(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Calls `f` at most once per `ms`, and again after a call in flight when asked meanwhile. */
function coalesce(f, ms = 120) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) { again = true; return; }
    running = true;
    try { await f(); } finally {
      running = false;
      if (again) { again = false; kick(); }
    }
  };
  const kick = () => { if (!timer) timer = setTimeout(run, ms); };
  kick.cancel = () => clearTimeout(timer);
  return kick;
}

// -------------------------------------------------------------------------------------------------
// Shell and router
// -------------------------------------------------------------------------------------------------

let flash = null;
let cleanup = null;

function nav(hash, message) {
  flash = message || null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function takeFlash(el) {
  if (flash) showMessage(el, flash.kind, flash.text);
  flash = null;
}

function shell() {
  replace(document.getElementById('app'),
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/configs' }, h('span', { class: 'brand-mark' }, 'LwM2M'), ' lwm2m-rs bootstrap server'),
      h('nav', {},
        h('a', { href: '#/configs', id: 'nav-configs', dataset: { section: 'configs' } }, 'Configurations'),
        h('a', { href: '#/sessions', id: 'nav-sessions', dataset: { section: 'sessions' } }, 'Sessions')),
      h('span', { class: 'status' }, h('span', { id: 'health' }, ''), ' ', h('span', { id: 'live', class: 'live-dot', dataset: { state: 'connecting' } }, 'connecting'), h('span', { id: 'account' }))),
    h('main', { id: 'view' }));
}

async function health() {
  try {
    const r = await api('GET', '/api/health');
    const b = r.body;
    document.getElementById('health').textContent =
      `v${b.version} · CoAP ${b.coap.join(', ') || 'off'} · ${b.configs} configuration${b.configs === 1 ? '' : 's'} · ${b.active_sessions} running`;
    // With --api-token: a way to end the session.
    const account = document.getElementById('account');
    if (b.auth && !account.firstChild) account.append(logoutLink());
  } catch (e) {
    document.getElementById('health').textContent = `health: ${e.message}`;
  }
}
const healthSoon = coalesce(health, 150);

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const view = document.getElementById('view');
  const hash = location.hash.replace(/^#/, '') || '/configs';
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('.topbar nav a')) a.classList.toggle('active', a.dataset.section === (parts[0] === 'default' ? 'configs' : parts[0]));
  view.replaceChildren();
  window.scrollTo(0, 0);
  if (parts[0] === 'configs' && parts.length > 1) {
    cleanup = renderEditor(view, { endpoint: parts.slice(1).join('/'), isDefault: false, nav });
    document.title = `${parts.slice(1).join('/')} · lwm2m-rs bootstrap`;
  } else if (parts[0] === 'default') {
    cleanup = renderEditor(view, { endpoint: null, isDefault: true, nav });
    document.title = 'Default configuration · lwm2m-rs bootstrap';
  } else if (parts[0] === 'sessions' && parts.length > 1) {
    cleanup = sessionPage(view, parts.slice(1).join('/'));
    document.title = `Session log ${parts.slice(1).join('/')} · lwm2m-rs bootstrap`;
  } else if (parts[0] === 'sessions') {
    cleanup = sessionsPage(view);
    document.title = 'Sessions · lwm2m-rs bootstrap';
  } else {
    cleanup = configsPage(view);
    document.title = 'Configurations · lwm2m-rs bootstrap';
  }
}

// -------------------------------------------------------------------------------------------------
// #/configs
// -------------------------------------------------------------------------------------------------

function credBadge(c) {
  if (!c) return h('span', { class: 'badge' }, 'none');
  const label = { psk: 'PSK', rpk: 'RPK', x509: 'X.509' }[c.mode] || c.mode;
  return [h('span', { class: 'badge info' }, label),
    c.mode === 'psk' && c.identity ? h('div', { class: 'mono small muted ident' }, c.identity) : null];
}

function serversCell(cfg) {
  const servers = cfg.servers || [];
  if (!servers.length) return h('span', { class: 'muted' }, 'none');
  return servers.map((s) => h('div', { class: 'server-line' },
    h('span', { class: 'badge' }, `ssid ${s.ssid}`), ' ', h('span', { class: 'mono' }, s.uri),
    h('span', { class: 'muted' }, ` · ${s.security ? s.security.mode : 'nosec'} · lifetime ${s.lifetime} s${s.registration_priority_order !== undefined ? ` · order ${s.registration_priority_order}` : ''}`)));
}

function aclCell(cfg) {
  const n = (cfg.acls || []).length;
  if (n) return `${n} entr${n === 1 ? 'y' : 'ies'}`;
  return h('span', { class: 'muted' }, cfg.generate_acls === false ? 'none' : 'generated');
}

function configsPage(view) {
  const message = h('div', { id: 'list-message', class: 'message', hidden: true });
  const newEp = h('input', { id: 'new-endpoint', testid: 'new-endpoint', type: 'text', placeholder: 'new endpoint, e.g. urn:dev:os:0023C7-1234', spellcheck: 'false', size: 40,
    onkeydown: (e) => { if (e.key === 'Enter') add(); } });
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'Filter…', oninput: () => draw() });
  const tbody = h('tbody', { id: 'configs-body' });
  const defaultBox = h('div', { id: 'default-config' });
  const count = h('span', { class: 'muted', id: 'configs-count' });
  let data = null;
  let sessions = new Map();

  function add() {
    const ep = newEp.value.trim();
    if (!ep) { showMessage(message, 'err', 'Type the endpoint name of the device first.'); newEp.focus(); return; }
    if (data && data.endpoints.some((e) => e.endpoint === ep)) { nav(`#/configs/${enc(ep)}`); return; }
    nav(`#/configs/${enc(ep)}`);
  }

  replace(view,
    h('div', { class: 'page-head' },
      h('h1', {}, 'Endpoint configurations'),
      h('div', { class: 'toolbar' }, newEp, h('button', { id: 'add-config', testid: 'add-config', class: 'primary', onclick: add }, 'Add configuration'))),
    message,
    h('section', { class: 'card' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Devices'), count, h('span', { class: 'spacer' }), filter),
      h('table', { class: 'grid', id: 'configs-table' },
        h('thead', {}, h('tr', {}, ['Endpoint', 'Device credentials', 'LwM2M Server accounts', 'ACLs', 'Last session', ''].map((t) => h('th', {}, t)))),
        tbody)),
    h('section', { class: 'card' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Default configuration'), h('span', { class: 'muted' }, 'for devices without a configuration of their own')),
      defaultBox));
  takeFlash(message);

  function deleteButton(ep) {
    const b = h('button', { class: 'small danger', testid: 'row-delete', onclick: async () => {
      if (b.dataset.armed !== '1') {
        b.dataset.armed = '1';
        b.textContent = 'Really delete?';
        b.classList.add('solid');
        setTimeout(() => { b.dataset.armed = ''; b.textContent = 'Delete'; b.classList.remove('solid'); }, 5000);
        return;
      }
      try {
        await api('DELETE', `/api/configs/${enc(ep)}`);
        window.dispatchEvent(new Event('bs-config-changed'));
        showMessage(message, 'ok', `Deleted the configuration of ${ep}.`);
        await load();
      } catch (e) { showMessage(message, 'err', e); }
    } }, 'Delete');
    return b;
  }

  function draw() {
    if (!data) return;
    const f = filter.value.trim().toLowerCase();
    const rows = data.endpoints.filter((e) => !f || e.endpoint.toLowerCase().includes(f) || JSON.stringify(e.config).toLowerCase().includes(f));
    count.textContent = `${data.endpoints.length} endpoint${data.endpoints.length === 1 ? '' : 's'}`;
    replace(tbody, rows.length ? rows.map(({ endpoint, config }) => {
      const s = sessions.get(endpoint);
      return h('tr', { dataset: { endpoint } },
        h('td', {}, h('a', { class: 'mono ep', href: `#/configs/${enc(endpoint)}` }, endpoint)),
        h('td', {}, credBadge(config.credentials)),
        h('td', {}, serversCell(config)),
        h('td', {}, aclCell(config)),
        h('td', { class: 'nowrap' }, s ? [resultBadge(s.last_result, s.active), ' ', h('a', { href: `#/sessions/${enc(endpoint)}`, class: 'muted', title: fmtTime(s.last_at_unix_s) }, fmtWhen(s.last_at_unix_s))] : h('span', { class: 'muted' }, 'never')),
        h('td', { class: 'actions' },
          h('a', { class: 'button small', href: `#/configs/${enc(endpoint)}` }, 'Edit'), ' ',
          h('a', { class: 'button small', href: `#/sessions/${enc(endpoint)}` }, 'Log'), ' ',
          deleteButton(endpoint)));
    }) : h('tr', {}, h('td', { colspan: 6, class: 'muted empty' },
      data.endpoints.length ? 'No endpoint matches the filter.' : 'No endpoint configuration yet. Type an endpoint name above and press "Add configuration".')));
    const d = data.default;
    if (d) {
      replace(defaultBox, h('div', { class: 'default-row' },
        h('div', { class: 'grow' }, serversCell(d)),
        h('div', { class: 'actions' },
          h('a', { class: 'button small', id: 'edit-default', href: '#/default' }, 'Edit'))));
    } else {
      replace(defaultBox, h('div', { class: 'default-row' },
        h('p', { class: 'muted grow' }, 'None: a device without a configuration of its own is refused with 4.00 Bad Request.'),
        h('a', { class: 'button small', id: 'create-default', href: '#/default' }, 'Create default configuration')));
    }
  }

  async function load() {
    try {
      const [c, s] = await Promise.all([api('GET', '/api/configs'), api('GET', '/api/sessions')]);
      data = c.body;
      sessions = new Map(s.body.map((x) => [x.endpoint, x]));
      draw();
    } catch (e) { showMessage(message, 'err', e); }
  }
  const reload = coalesce(load, 200);
  load();
  const off = subscribe((ev) => { if (['session-started', 'finished', 'failed', 'refused', 'lagged', 'reconnected'].includes(ev.kind)) reload(); });
  return () => { off(); reload.cancel(); };
}

// -------------------------------------------------------------------------------------------------
// #/sessions
// -------------------------------------------------------------------------------------------------

function sessionsPage(view) {
  const message = h('div', { class: 'message', hidden: true });
  const tbody = h('tbody', { id: 'sessions-body' });
  replace(view,
    h('div', { class: 'page-head' }, h('h1', {}, 'Bootstrap sessions')),
    message,
    h('section', { class: 'card' },
      h('table', { class: 'grid', id: 'sessions-table' },
        h('thead', {}, h('tr', {}, ['Endpoint', 'State', 'Log entries', 'Last activity', ''].map((t) => h('th', {}, t)))),
        tbody)));
  async function load() {
    try {
      const r = await api('GET', '/api/sessions');
      replace(tbody, r.body.length ? r.body.map((s) => h('tr', { dataset: { endpoint: s.endpoint } },
        h('td', {}, h('a', { class: 'mono ep', href: `#/sessions/${enc(s.endpoint)}` }, s.endpoint)),
        h('td', {}, resultBadge(s.last_result, s.active)),
        h('td', {}, String(s.entries)),
        h('td', {}, fmtTime(s.last_at_unix_s)),
        h('td', { class: 'actions' }, h('a', { class: 'button small', href: `#/sessions/${enc(s.endpoint)}` }, 'Log'), ' ',
          h('a', { class: 'button small', href: `#/configs/${enc(s.endpoint)}` }, 'Configuration'))))
        : h('tr', {}, h('td', { colspan: 5, class: 'muted empty' }, 'No device has talked to this Bootstrap-Server yet.')));
    } catch (e) { showMessage(message, 'err', e); }
  }
  const reload = coalesce(load, 200);
  load();
  const off = subscribe(() => reload());
  return () => { off(); reload.cancel(); };
}

// -------------------------------------------------------------------------------------------------
// #/sessions/{ep}
// -------------------------------------------------------------------------------------------------

function aclRights(rights) {
  if (!rights || !rights.length) return h('span', { class: 'muted' }, 'none');
  return rights.map((r) => h('span', { class: 'badge' }, `${r.ssid === 0 ? 'default' : `ssid ${r.ssid}`}: ${r.rights === '' ? '—' : r.rights}`));
}

function sessionPage(view, ep) {
  const message = h('div', { id: 'session-message', class: 'message', hidden: true });
  const status = h('span', { id: 'session-status' });
  const lastReason = h('div', { id: 'last-reason' });
  const logBox = h('div', { id: 'session-log' });
  const accountsBox = h('div', { id: 'accounts' });
  const aclBox = h('div', { id: 'acl-state' });
  const foundBox = h('div', { id: 'accounts-found' });
  let detail = { endpoint: ep, active: false, log: [], accounts: null, acl: null, last_result: null, last_reason: null };
  let known = false;

  const trigAddr = h('input', { id: 'trigger-address', type: 'text', class: 'mono', placeholder: 'e.g. 192.0.2.7:56830', size: 26 });
  const trigIid = h('input', { id: 'trigger-instance', type: 'text', inputmode: 'numeric', placeholder: 'last known', size: 8 });
  const trigMsg = h('div', { id: 'trigger-message', class: 'message', hidden: true });
  async function trigger() {
    const body = { address: trigAddr.value.trim() };
    if (trigIid.value.trim()) body.server_instance = Number(trigIid.value.trim());
    try {
      await api('POST', `/api/sessions/${enc(ep)}/trigger`, body);
      showMessage(trigMsg, 'ok', 'The device accepted the Bootstrap-Request Trigger; its new session appears above.');
    } catch (e) { showMessage(trigMsg, 'err', e); }
  }

  replace(view,
    h('div', { class: 'page-head' },
      h('div', {},
        h('div', { class: 'crumbs' }, h('a', { href: '#/sessions' }, 'Sessions'), ' / '),
        h('h1', { id: 'session-endpoint' }, ep, ' ', status)),
      h('div', { class: 'toolbar' }, h('a', { class: 'button', id: 'to-config', href: `#/configs/${enc(ep)}` }, 'Configuration'))),
    message, lastReason,
    h('section', { class: 'card' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Operations'), h('span', { class: 'muted' }, 'newest session first; updated live')),
      logBox),
    h('div', { class: 'cols' },
      h('section', { class: 'card' },
        h('div', { class: 'section-head' }, h('h2', {}, 'Accounts'), h('span', { class: 'muted' }, 'left by the last finished session')),
        accountsBox),
      h('section', { class: 'card' },
        h('div', { class: 'section-head' }, h('h2', {}, 'Accounts found on the device'), h('span', { class: 'muted' }, 'BsR-7, last session seen live')),
        foundBox)),
    h('section', { class: 'card' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Access Control state'), h('span', { class: 'muted' }, 'BsR-1: Object 2 as the last Bootstrap-Read of /2 returned it')),
      aclBox),
    h('section', { class: 'card' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Trigger a new bootstrap'), h('span', { class: 'muted' }, 'BsR-2: Execute /1/x/9 from the Bootstrap-Server’s CoAP socket')),
      h('div', { class: 'toolbar trigger-bar' },
        h('label', {}, 'Device address', trigAddr),
        h('label', {}, 'Server instance', trigIid),
        h('button', { id: 'trigger', class: 'trigger-btn', onclick: trigger }, 'Send trigger')),
      h('p', { class: 'muted small' }, 'Devices accept the trigger only from their LwM2M Server’s address; otherwise execute /1/x/9 through the LwM2M Server’s API.'),
      trigMsg));

  function drawLog() {
    const l = liveOf(ep);
    const bySession = new Map();
    for (const e of detail.log) {
      if (!bySession.has(e.session)) bySession.set(e.session, []);
      bySession.get(e.session).push(e);
    }
    const ids = [...bySession.keys()].sort((a, b) => b - a);
    const lastId = ids.find((i) => i !== 0);
    if (!ids.length) {
      replace(logBox, h('p', { class: 'note', id: 'no-sessions' }, known
        ? 'No session yet. The log fills in as soon as the device sends its Bootstrap-Request.'
        : 'This endpoint has neither a configuration nor a session log yet. Waiting for its Bootstrap-Request…'));
      return;
    }
    replace(logBox, ids.map((id) => {
      const entries = bySession.get(id);
      const meta = l.sessions.get(id) || {};
      let badge;
      if (id === 0) badge = h('span', { class: 'badge err' }, 'refused');
      else if (entries.some((e) => e.op === 'finish' && e.code && e.code.startsWith('2.'))) badge = h('span', { class: 'badge ok' }, 'finished');
      else if (meta.result === 'failed' || (id === lastId && detail.last_result === 'failed' && !detail.active)) badge = h('span', { class: 'badge err' }, 'failed');
      else if (id === lastId && detail.active) badge = h('span', { class: 'badge info' }, 'running');
      else badge = h('span', { class: 'badge warn' }, 'ended without finish');
      const reason = meta.reason || (id === lastId && detail.last_result === 'failed' ? detail.last_reason : null);
      return h('div', { class: 'session', dataset: { session: id }, testid: `session-${id}` },
        h('div', { class: 'session-head' },
          h('strong', {}, id === 0 ? 'Refused requests' : `Session #${id}`), ' ', badge,
          h('span', { class: 'muted' }, ` ${fmtTime(entries[0].at_unix_s)}`),
          meta.peer ? h('span', { class: 'muted' }, ` · from ${meta.peer}${meta.secure ? ' (DTLS)' : ' (plain CoAP)'}${meta.pct ? ` · pct ${meta.pct}` : ''}${meta.default_config ? ' · default configuration' : ''}`) : null),
        reason && badge.textContent === 'failed' ? h('div', { class: 'message err' }, reason) : null,
        h('table', { class: 'grid log-table' },
          h('thead', {}, h('tr', {}, ['Time', 'Operation', 'Path', 'Result', 'Detail'].map((t) => h('th', {}, t)))),
          h('tbody', {}, entries.map((e) => h('tr', { class: 'op', dataset: { op: e.op } },
            h('td', { class: 'mono muted' }, fmtClock(e.at_unix_s)),
            h('td', { class: 'mono' }, e.op),
            h('td', { class: 'mono' }, e.path),
            h('td', {}, codeBadge(e.code)),
            h('td', { class: 'detail' }, e.detail || ''))))));
    }));
  }

  function drawState() {
    const peers = [...liveOf(ep).sessions.values()].filter((m) => m.peer);
    if (!trigAddr.value && peers.length) trigAddr.value = peers[peers.length - 1].peer;
    replace(status, resultBadge(detail.last_result, detail.active));
    status.dataset.state = detail.active ? 'running' : detail.last_result || 'none';
    if (detail.last_result === 'failed' && detail.last_reason) {
      replace(lastReason, h('div', { class: 'message err' }, h('strong', {}, 'Last session failed: '), detail.last_reason));
    } else lastReason.replaceChildren();
    const acc = detail.accounts;
    replace(accountsBox, acc && acc.length
      ? h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ['ssid', 'URI', 'Security', 'Server'].map((t) => h('th', {}, t)))),
        h('tbody', {}, acc.map((a) => h('tr', {}, h('td', {}, String(a.ssid)), h('td', { class: 'mono' }, a.uri),
          h('td', { class: 'mono' }, `/0/${a.security_instance}`), h('td', { class: 'mono' }, `/1/${a.server_instance}`)))))
      : h('p', { class: 'note' }, 'No finished session yet.'));
    const acl = detail.acl;
    replace(aclBox, acl === null || acl === undefined
      ? h('p', { class: 'note' }, 'Not read yet (the device has not bootstrapped, or read_acls is off).')
      : acl.length
        ? h('table', { class: 'grid' },
          h('thead', {}, h('tr', {}, ['ACL instance', 'Target', 'Owner', 'Rights'].map((t) => h('th', {}, t)))),
          h('tbody', {}, acl.map((a) => h('tr', {},
            h('td', { class: 'mono' }, a.acl_instance !== undefined ? `/2/${a.acl_instance}` : '—'),
            h('td', { class: 'mono' }, a.instance_id === 65535 ? `/${a.object_id} (object)` : `/${a.object_id}/${a.instance_id}`),
            h('td', {}, a.owner === 65535 ? 'bootstrap only' : `ssid ${a.owner}`),
            h('td', { class: 'rights-cell' }, aclRights(a.rights))))))
        : h('p', { class: 'note' }, 'The device has no Access Control instances.'));
    const l = liveOf(ep);
    if (l.found) {
      const f = l.found;
      replace(foundBox,
        h('p', { class: 'muted' }, `Session #${f.session}: LwM2M ${f.lwm2m_version || '?'}, Bootstrap-Server account /0/${f.bootstrap_instance ?? '?'}; objects ${(f.objects || []).join(' ')}`),
        f.accounts.length
          ? h('table', { class: 'grid' },
            h('thead', {}, h('tr', {}, ['ssid', 'URI', 'Instances', 'Alert code', 'Last bootstrapped'].map((t) => h('th', {}, t)))),
            h('tbody', {}, f.accounts.map((a) => h('tr', {}, h('td', {}, String(a.ssid ?? '—')), h('td', { class: 'mono' }, a.uri || '—'),
              h('td', { class: 'mono' }, `/0/${a.security_instance ?? '—'} /1/${a.server_instance ?? '—'}`),
              h('td', {}, a.tls_alert_code ? String(a.tls_alert_code) : '—'), h('td', { class: 'nowrap' }, a.last_bootstrapped ? fmtTime(a.last_bootstrapped) : '—')))))
          : h('p', { class: 'muted' }, 'No LwM2M Server account on the device.'),
        l.repaired ? h('p', { class: 'muted', id: 'repaired' },
          `Decision: created ${l.repaired.created.length ? l.repaired.created.map((s) => `ssid ${s}`).join(', ') : 'none'}; kept ${l.repaired.kept.length ? l.repaired.kept.map((s) => `ssid ${s}`).join(', ') : 'none'}; rewritten ${l.repaired.rewritten.length ? l.repaired.rewritten.map((a) => `ssid ${a.ssid} (${(a.reasons || []).join(', ')})`).join(', ') : 'none'}; deleted ${l.repaired.deleted.length ? l.repaired.deleted.map((a) => `ssid ${a.ssid ?? '?'} (${(a.reasons || []).join(', ')})`).join(', ') : 'none'}.`) : null);
    } else {
      replace(foundBox, h('p', { class: 'note' }, 'Shown when a session runs while this page is open (from the accounts-found event).'));
    }
  }

  async function load() {
    try {
      const r = await api('GET', `/api/sessions/${enc(ep)}`);
      detail = r.body;
      known = true;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) showMessage(message, 'err', e);
      known = false;
    }
    drawState();
    drawLog();
  }
  const reload = coalesce(load, 150);

  // Live: show each event at once, then re-read the authoritative log.
  const off = subscribe((ev) => {
    if (ev.kind === 'lagged' || ev.kind === 'reconnected') { reload(); return; }
    if (ev.endpoint !== ep) return;
    if (ev.kind === 'operation') {
      detail.log.push({ session: ev.session, at_unix_s: ev.time_unix_s, op: ev.op, path: ev.path, code: ev.code, detail: ev.detail });
    } else if (ev.kind === 'session-started') {
      detail.active = true;
      detail.log.push({ session: ev.session, at_unix_s: ev.time_unix_s, op: 'bootstrap-request', path: '/bs', code: '2.04', detail: null });
    } else if (ev.kind === 'refused') {
      detail.log.push({ session: 0, at_unix_s: ev.time_unix_s, op: 'bootstrap-request', path: '/bs', code: ev.code, detail: ev.reason });
    } else if (ev.kind === 'finished' || ev.kind === 'failed') {
      detail.active = false;
      detail.last_result = ev.kind;
      detail.last_reason = ev.reason || null;
    }
    drawState();
    drawLog();
    reload();
  });
  load();
  return () => { off(); reload.cancel(); };
}

// -------------------------------------------------------------------------------------------------

shell();
startEvents();
health();
subscribe(() => healthSoon());
window.addEventListener('bs-config-changed', () => healthSoon());
window.addEventListener('api-login', () => healthSoon());
window.addEventListener('hashchange', () => { healthSoon(); route(); });
route();
