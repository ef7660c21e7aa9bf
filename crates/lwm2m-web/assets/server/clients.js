// #/clients: the registered clients, searchable, paged, kept current by the event stream.

import { h, setChildren, badge, ago, seconds, dateTime, debounce } from './util.js';
import { get, query } from './api.js';
import { EventLog } from './events.js';

const PAGE = 50;

/** The state badge of a client summary: registered, awake or sleeping. */
export function stateBadge(c) {
  if (c.presence === 'sleeping') return badge('sleeping', 'warn', { 'data-testid': 'state' });
  if (c.queue_mode) return badge('awake', 'ok', { 'data-testid': 'state' });
  return badge('registered', 'ok', { 'data-testid': 'state' });
}

export function clientsView(stream) {
  let q = '';
  let offset = 0;
  let rows = new Map();
  let loading = null;
  // Signature of every client seen since the page opened: rows that are new or changed flash once.
  const seen = new Map();
  let firstLoad = true;

  const onSearch = debounce(() => {
    if (search.value.trim() === q) return;
    q = search.value.trim();
    offset = 0;
    load();
  }, 200);
  const search = h('input', {
    id: 'client-search', type: 'search', placeholder: 'Search endpoint name…', 'aria-label': 'Search clients',
    autocomplete: 'off', spellcheck: 'false', oninput: onSearch, onchange: onSearch, onsearch: onSearch,
  });
  const count = h('span', { id: 'client-count', class: 'muted' }, '');
  const error = h('div', { id: 'clients-error' });
  const prev = h('button', { id: 'clients-prev', type: 'button', class: 'small', onclick: () => page(-1) }, '‹ Prev');
  const next = h('button', { id: 'clients-next', type: 'button', class: 'small', onclick: () => page(1) }, 'Next ›');
  const pager = h('span', { class: 'pager', hidden: true }, prev, next);
  const tbody = h('tbody', { id: 'clients-body' });
  const table = h('table', { class: 'grid clients', id: 'clients-table' },
    h('thead', {}, h('tr', {},
      ['Endpoint', 'State', 'Last seen', 'Lifetime', 'Binding', 'LwM2M', 'Queue mode', 'Address', 'Registered']
        .map((t) => h('th', {}, t)))),
    tbody);
  const empty = h('div', { class: 'empty', id: 'clients-empty', hidden: true });
  const log = new EventLog({ id: 'event-log', max: 300 });

  const el = h('div', { class: 'view-clients' },
    h('div', { class: 'page-head' },
      h('h1', {}, 'Clients'),
      count),
    h('div', { class: 'card' },
      h('div', { class: 'toolbar' },
        search,
        h('button', { id: 'clients-refresh', type: 'button', onclick: () => load() }, 'Refresh'),
        h('span', { class: 'spacer' }),
        pager),
      error,
      h('div', { class: 'table-wrap' }, table),
      empty),
    h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Server events'), log.tools),
      log.list));

  function page(d) {
    offset = Math.max(0, offset + d * PAGE);
    load();
  }

  function row(c) {
    const tr = h('tr', { 'data-endpoint': c.endpoint, 'data-testid': `client-row-${c.endpoint}` },
      h('td', {}, h('a', { href: `#/clients/${encodeURIComponent(c.endpoint)}`, class: 'ep-link' }, c.endpoint),
        c.secure ? h('span', { class: 'lock', title: 'registered over DTLS' }, ' 🔒') : null),
      h('td', {}, stateBadge(c)),
      h('td', { class: 'last-seen', title: dateTime(c.last_seen_ms), 'data-ms': c.last_seen_ms }, ago(c.last_seen_ms)),
      h('td', { class: 'num' }, seconds(c.lifetime_s)),
      h('td', {}, h('code', {}, c.binding)),
      h('td', {}, c.version),
      h('td', {}, c.queue_mode ? badge('Q', 'info', { title: 'queue mode' }) : h('span', { class: 'muted' }, 'no')),
      h('td', { class: 'mono' }, c.address),
      h('td', { title: dateTime(c.registered_at_ms) }, ago(c.registered_at_ms)));
    return tr;
  }

  async function load() {
    const mine = {};
    loading = mine;
    try {
      const r = await get(`/api/clients${query({ q, offset, limit: PAGE })}`);
      if (loading !== mine) return;
      setChildren(error);
      rows = new Map();
      const trs = r.clients.map((c) => {
        const tr = row(c);
        if (!firstLoad && seen.get(c.endpoint) !== sig(c)) tr.classList.add('flash');
        seen.set(c.endpoint, sig(c));
        rows.set(c.endpoint, tr);
        return tr;
      });
      firstLoad = false;
      setChildren(tbody, trs);
      const shown = r.clients.length;
      count.textContent = q
        ? `${r.total} matching “${q}”`
        : `${r.total} registered`;
      pager.hidden = r.total <= PAGE;
      prev.disabled = offset === 0;
      next.disabled = offset + shown >= r.total;
      if (!pager.hidden) count.textContent += ` · showing ${offset + 1}–${offset + shown}`;
      table.hidden = shown === 0;
      empty.hidden = shown !== 0;
      if (shown === 0) {
        setChildren(empty, q
          ? h('p', {}, `No registered client matches “${q}”.`)
          : [h('p', {}, 'No client is registered yet. Devices appear here as soon as they register.'),
            h('p', { class: 'muted' }, 'Try the demo device: ',
              h('code', {}, 'lwm2m client --server coap://127.0.0.1:5683 --endpoint dev1'))]);
      }
    } catch (e) {
      if (loading !== mine) return;
      setChildren(error, h('div', { class: 'message err' }, `Cannot list the clients: ${e.reason || e.message}`));
    }
  }

  function sig(c) {
    return [c.presence, c.lifetime_s, c.binding, c.registration_id, c.address, c.last_update_ms].join('|');
  }

  const reload = debounce(load, 150);
  const unsubscribe = stream.subscribe((ev) => {
    log.add(ev);
    if (['registered', 'updated', 'deregistered', 'expired', 'sleeping', 'awake', 'lagged', 'reconnected']
      .includes(ev.kind)) {
      reload();
      return;
    }
    const tr = ev.endpoint && rows.get(ev.endpoint);
    if (tr && ['notification', 'send', 'on-registration-result', 'queued-request-done'].includes(ev.kind)) {
      const cell = tr.querySelector('.last-seen');
      cell.dataset.ms = ev.time_ms;
      cell.textContent = ago(ev.time_ms);
      cell.title = dateTime(ev.time_ms);
    }
  });
  const ticker = setInterval(() => {
    for (const cell of tbody.querySelectorAll('.last-seen')) cell.textContent = ago(Number(cell.dataset.ms));
  }, 5000);

  load();
  setTimeout(() => search.focus(), 0);
  return {
    el,
    dispose() {
      unsubscribe();
      clearInterval(ticker);
    },
  };
}
