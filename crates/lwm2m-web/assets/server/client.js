// #/clients/{endpoint}: one client — registration facts, the object tree with live values, every
// device-management operation on any path, composite operations, observations, held requests, event log.

import {
  h, setChildren, badge, ago, until, seconds, dateTime, showValue, pretty, comparePaths, parsePath, debounce,
} from './util.js';
import { call, get, clientUrl, query } from './api.js';
import { EventLog } from './events.js';
import { modelFor, resourceOf } from './models.js';
import { stateBadge } from './clients.js';

/** Content formats the API takes in `?format=` (empty: the server picks). */
const FORMATS = [
  ['', 'auto'], ['senml-cbor', 'SenML CBOR'], ['senml-json', 'SenML JSON'], ['tlv', 'TLV'], ['cbor', 'CBOR'],
  ['text', 'Plain text'], ['opaque', 'Opaque'], ['lwm2m-json', 'LwM2M JSON (1.0)'],
];
const COMPOSITE_FORMATS = [['', 'auto'], ['senml-cbor', 'SenML CBOR'], ['senml-json', 'SenML JSON']];
const ATTRIBUTES = [
  ['pmin', 'Minimum period (s)'], ['pmax', 'Maximum period (s)'], ['gt', 'Greater than'], ['lt', 'Less than'],
  ['st', 'Step'], ['epmin', 'Min. evaluation period (s)'], ['epmax', 'Max. evaluation period (s)'],
];

const pathText = (ids) => `/${ids.join('/')}`;
const idsOf = (p) => p.split('/').filter(Boolean).map(Number);
const under = (p, root) => p === root || p.startsWith(`${root}/`);

function select(id, options, value) {
  return h('select', { id }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

export function clientView(ep, stream) {
  const st = {
    detail: null,
    gone: null, // {kind, time_ms} once deregistered / expired
    models: new Map(), // object id -> model (the registered version)
    values: new Map(), // path -> JSON value
    attrs: new Map(), // path -> attributes from Discover
    observations: [],
    observed: new Map(), // path -> observation ids
    selected: null, // path string
    composite: new Set(),
    open: new Set(['/3']), // expanded objects
    closed: new Set(), // collapsed instances and multiple resources
    seq: 0,
    tab: 'read',
  };
  const valueEls = new Map();
  const disposers = [];

  // ---- skeleton ------------------------------------------------------------------------------------------
  const title = h('h1', { id: 'client-title' }, ep);
  const headBadges = h('span', { class: 'head-badges', id: 'client-badges' });
  const gone = h('div', { id: 'client-gone' });
  const facts = h('dl', { class: 'facts', id: 'client-facts' });
  const loadError = h('div', { id: 'client-error' });
  const treeList = h('ul', { class: 'tree', id: 'object-tree', 'data-testid': 'object-tree' });
  const pathInput = h('input', {
    id: 'path-input', placeholder: '/3/0/11/0', 'aria-label': 'Go to path', autocomplete: 'off', spellcheck: 'false',
    onkeydown: (e) => { if (e.key === 'Enter') goPath(); },
  });
  const panel = h('div', { class: 'card op-panel', id: 'op-panel' });
  const obsBox = h('div', { id: 'observations' });
  const obsActive = h('input', { type: 'checkbox', id: 'obs-active' });
  const queueBox = h('div', { id: 'queue' });
  const compositeBox = h('div', { id: 'composite' });
  const log = new EventLog({ id: 'client-log', max: 500, showEndpoint: false });

  const el = h('div', { class: 'view-client' },
    h('div', { class: 'crumbs' }, h('a', { href: '#/clients', id: 'back-to-clients' }, '← Clients')),
    h('div', { class: 'page-head' }, title, headBadges, h('span', { class: 'spacer' }),
      h('button', { id: 'client-refresh', type: 'button', onclick: () => reloadAll() }, 'Refresh'),
      h('button', { id: 'client-remove', type: 'button', class: 'danger', onclick: removeRegistration },
        'Remove registration')),
    gone, loadError,
    h('div', { class: 'card' }, facts),
    h('div', { class: 'row client-main' },
      h('div', { class: 'grow' },
        h('div', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Objects'),
            h('span', { class: 'card-tools' },
              pathInput,
              h('button', { id: 'path-go', type: 'button', class: 'small', onclick: goPath }, 'Select path'),
              h('button', { id: 'tree-expand', type: 'button', class: 'small', onclick: () => expandAll(true) }, 'Expand all'),
              h('button', { id: 'tree-collapse', type: 'button', class: 'small', onclick: () => expandAll(false) }, 'Collapse'))),
          treeList)),
      h('div', { class: 'side' }, panel)),
    h('div', { class: 'cols-3' },
      h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Observations'),
          h('span', { class: 'card-tools' },
            h('label', { class: 'inline', title: 'Ask the device to stop (Observe 1) instead of forgetting it' },
              obsActive, 'active cancel'),
            h('button', { id: 'obs-refresh', type: 'button', class: 'small', onclick: () => loadObservations() }, 'Refresh'))),
        obsBox),
      h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Composite'),
          h('span', { class: 'card-tools muted small' }, 'tick paths in the tree')),
        compositeBox),
      h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Queued requests'),
          h('span', { class: 'card-tools' },
            h('button', { id: 'queue-refresh', type: 'button', class: 'small', onclick: () => loadQueue() }, 'Refresh'))),
        queueBox)),
    h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Event log'), log.tools),
      log.list));

  // ---- registration --------------------------------------------------------------------------------------
  async function loadDetail() {
    try {
      const d = await get(clientUrl(ep));
      st.detail = d;
      st.gone = null;
      setChildren(loadError);
      const models = await Promise.all(d.objects.map((o) => modelFor(o.id, o.version).catch(() => null)));
      st.models = new Map(d.objects.map((o, i) => [o.id, models[i]]));
    } catch (e) {
      if (e.error === 'unknown_endpoint') {
        st.detail = st.detail || null;
        st.gone = st.gone || { kind: 'not registered', time_ms: Date.now() };
      } else {
        setChildren(loadError, errorMessage('Cannot load the registration', e));
      }
    }
    renderHead();
    renderTree();
    renderPanel();
    renderComposite();
  }

  function renderHead() {
    const d = st.detail;
    setChildren(headBadges,
      d && !st.gone ? stateBadge(d) : badge(st.gone ? st.gone.kind : '…', 'err', { 'data-testid': 'state' }),
      d ? badge(`LwM2M ${d.version}`, 'info') : null,
      d && d.secure ? badge(`DTLS ${d.identity.mode.toUpperCase()}`, 'ok') : null,
      d && !d.secure ? badge('no security', null) : null);
    setChildren(gone, st.gone
      ? h('div', { class: 'message err' },
        `${ep} is ${st.gone.kind === 'not registered' ? 'not registered' : `${st.gone.kind} (${dateTime(st.gone.time_ms)})`}. `,
        'This page updates when it registers again.')
      : null);
    if (!d) {
      setChildren(facts, h('p', { class: 'muted' }, st.gone ? 'No registration.' : 'Loading…'));
      return;
    }
    const fact = (k, v, id) => [h('dt', {}, k), h('dd', { id }, v)];
    const identity = d.identity.mode === 'psk' ? `PSK identity ${d.identity.psk_identity}`
      : d.identity.mode === 'rpk' ? `RPK ${d.identity.public_key.slice(0, 24)}…`
        : d.identity.mode === 'x509' ? `X.509 CN=${d.identity.common_name || '?'}` : 'none (plain CoAP)';
    setChildren(facts,
      fact('Address', h('code', {}, d.address), 'fact-address'),
      fact('Binding', h('code', {}, d.binding), 'fact-binding'),
      fact('Queue mode', d.queue_mode ? `yes (${d.presence}${d.awake_until_ms ? `, awake until ${dateTime(d.awake_until_ms)}` : ''})` : 'no', 'fact-queue'),
      fact('Lifetime', seconds(d.lifetime_s), 'fact-lifetime'),
      fact('Last seen', h('span', { title: dateTime(d.last_seen_ms), class: 'ticking', 'data-ms': d.last_seen_ms }, ago(d.last_seen_ms)), 'fact-last-seen'),
      fact('Expires', h('span', { title: dateTime(d.expires_at_ms) }, until(d.expires_at_ms)), 'fact-expires'),
      fact('Registered', dateTime(d.registered_at_ms), 'fact-registered'),
      fact('Location', h('code', {}, d.location), 'fact-location'),
      fact('Security', identity, 'fact-identity'),
      fact('Content formats', d.content_formats.length ? d.content_formats.join(', ') : '–', 'fact-formats'),
      d.sms ? fact('SMS', d.sms, 'fact-sms') : null,
      d.root_path && d.root_path !== '/' ? fact('Root path', h('code', {}, d.root_path), 'fact-root') : null,
      fact('Observations', String(d.observations), 'fact-observations'),
      d.queue_mode ? fact('Queued requests', String(d.queued_requests), 'fact-queued') : null,
      Object.keys(d.additional || {}).length
        ? fact('Attributes', Object.entries(d.additional).map(([k, v]) => `${k}=${v ?? ''}`).join(' '), 'fact-additional')
        : null);
  }

  async function removeRegistration() {
    if (!window.confirm(`Remove the registration of ${ep}? The device learns it at its next Update.`)) return;
    try {
      await call('DELETE', clientUrl(ep));
      log.add({ kind: 'request', text: 'registration removed' });
    } catch (e) {
      showResult(null, errorMessage('Remove registration', e));
    }
  }

  // ---- object tree -----------------------------------------------------------------------------------------
  function objectModel(oid) {
    return st.models.get(oid) || null;
  }

  /** Model facts of a path: {object, resource} (either may be null). */
  function modelOf(path) {
    const ids = idsOf(path);
    const object = objectModel(ids[0]);
    return { object, resource: ids.length >= 3 ? resourceOf(object, ids[2]) : null };
  }

  function nameOf(path) {
    const ids = idsOf(path);
    const { object, resource } = modelOf(path);
    if (ids.length === 1) return object ? object.name : `Object ${ids[0]}`;
    if (ids.length === 2) return `Instance ${ids[1]}`;
    if (ids.length === 3) return resource ? resource.name : `Resource ${ids[2]}`;
    return `[${ids[3]}]`;
  }

  function node(path, { depth, children, hasChildren }) {
    const ids = idsOf(path);
    const { resource } = modelOf(path);
    const isOpen = depth === 1 ? st.open.has(path) : !st.closed.has(path);
    const toggle = hasChildren
      ? h('button', {
        class: `caret${isOpen ? ' open' : ''}`, type: 'button', 'data-testid': `toggle-${path}`,
        'aria-label': isOpen ? 'Collapse' : 'Expand',
        onclick: (e) => {
          e.stopPropagation();
          setOpen(path, depth, !isOpen);
          renderTree();
        },
      }, '▸')
      : h('span', { class: 'caret-space' });
    const check = h('input', {
      type: 'checkbox', class: 'pick', title: 'Add to the composite selection', 'data-testid': `pick-${path}`,
      checked: st.composite.has(path),
      onclick: (e) => e.stopPropagation(),
      onchange: (e) => {
        if (e.target.checked) st.composite.add(path);
        else st.composite.delete(path);
        renderComposite();
      },
    });
    const row = h('div', {
      class: `node depth-${depth}${st.selected === path ? ' selected' : ''}`,
      'data-path': path, 'data-testid': `node-${path}`, tabindex: '0',
      onclick: () => selectPath(path, true),
      onkeydown: (e) => { if (e.key === 'Enter') selectPath(path, true); },
    },
    toggle, check,
    h('span', { class: 'id' }, path),
    h('span', { class: 'name' }, nameOf(path)));
    if (depth === 1) {
      const o = st.detail.objects.find((x) => x.id === ids[0]);
      const m = objectModel(ids[0]);
      row.append(h('span', { class: 'meta' },
        `v${o.version || (m ? m.version : '1.0')} · ${o.instances.length} instance${o.instances.length === 1 ? '' : 's'}`,
        m ? null : ' · no model'));
    }
    if (depth === 3 && resource) {
      row.append(h('span', { class: 'ops', title: 'operations' }, resource.operations || '–'),
        h('span', { class: 'type' }, resource.multiple ? `${resource.type}[]` : resource.type));
    }
    const a = st.attrs.get(path);
    if (a && Object.keys(a).length) {
      row.append(h('span', { class: 'attrs', title: 'attributes (from Discover)' },
        Object.entries(a).map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(' ')));
    }
    if (st.observed.has(path)) {
      row.append(badge('observed', 'info', { 'data-testid': `observed-${path}`, title: `observation ${st.observed.get(path).join(', ')}` }));
    }
    if (depth >= 3) {
      const v = h('span', { class: 'value', 'data-testid': `value-${path}` });
      fillValue(v, path);
      valueEls.set(path, v);
      row.append(v);
    }
    row.append(h('span', { class: 'node-actions' },
      h('button', {
        type: 'button', class: 'small', title: `Read ${path}`, 'data-testid': `read-${path}`,
        onclick: (e) => { e.stopPropagation(); selectPath(path, false); doRead(path); },
      }, 'Read'),
      h('button', {
        type: 'button', class: 'small', title: `Observe ${path}`, 'data-testid': `observe-${path}`,
        onclick: (e) => { e.stopPropagation(); selectPath(path, false); doObserve(path); },
      }, 'Observe')));
    return h('li', { 'data-path': path }, row, hasChildren && isOpen ? h('ul', {}, children()) : null);
  }

  function fillValue(elv, path) {
    const { resource } = modelOf(path);
    const ids = idsOf(path);
    if (ids.length === 3 && resource && resource.multiple) {
      const n = [...st.values.keys()].filter((p) => p.startsWith(`${path}/`)).length;
      elv.textContent = n ? `${n} instance${n === 1 ? '' : 's'}` : '';
      elv.classList.add('muted');
      return;
    }
    if (!st.values.has(path)) {
      elv.textContent = '';
      return;
    }
    const type = resource ? resource.type : undefined;
    elv.textContent = showValue(st.values.get(path), type);
    elv.title = JSON.stringify(st.values.get(path));
    if (resource && resource.units) elv.append(h('span', { class: 'units' }, ` ${resource.units}`));
  }

  function setOpen(path, depth, open) {
    if (depth === 1) {
      if (open) st.open.add(path);
      else st.open.delete(path);
    } else if (open) st.closed.delete(path);
    else st.closed.add(path);
  }

  function expandAll(open) {
    if (!st.detail) return;
    for (const o of st.detail.objects) setOpen(`/${o.id}`, 1, open);
    if (open) st.closed.clear();
    renderTree();
  }

  function resourcePaths(inst) {
    const [oid] = idsOf(inst);
    const m = objectModel(oid);
    const set = new Set(m ? m.resources.map((r) => `${inst}/${r.id}`) : []);
    for (const p of st.values.keys()) {
      const ids = idsOf(p);
      if (under(p, inst) && ids.length >= 3) set.add(pathText(ids.slice(0, 3)));
    }
    return [...set].sort(comparePaths);
  }

  function renderTree() {
    valueEls.clear();
    const d = st.detail;
    if (!d) {
      setChildren(treeList, h('li', { class: 'muted' }, st.gone ? 'The client is not registered.' : 'Loading…'));
      return;
    }
    const objects = [...d.objects].sort((a, b) => a.id - b.id);
    setChildren(treeList, objects.map((o) => {
      const op = `/${o.id}`;
      return node(op, {
        depth: 1,
        hasChildren: o.instances.length > 0,
        children: () => o.instances.map((i) => {
          const ip = `${op}/${i}`;
          const rps = resourcePaths(ip);
          return node(ip, {
            depth: 2,
            hasChildren: rps.length > 0,
            children: () => rps.map((rp) => {
              const { resource } = modelOf(rp);
              const ris = [...st.values.keys()].filter((p) => p.startsWith(`${rp}/`)).sort(comparePaths);
              const multiple = (resource && resource.multiple) || ris.length > 0;
              return node(rp, {
                depth: 3,
                hasChildren: multiple && ris.length > 0,
                children: () => ris.map((rip) => node(rip, { depth: 4, hasChildren: false })),
              });
            }),
          });
        }),
      });
    }));
  }

  /** Applies values: `replace` (a Read or notification of `root`) drops stored values under it first. */
  function applyValues(values, root) {
    if (!values) return;
    let structural = false;
    if (root) {
      for (const p of [...st.values.keys()]) {
        if (under(p, root) && !(p in values)) {
          st.values.delete(p);
          structural = true;
        }
      }
    }
    const changed = [];
    const flash = new Set(); // known values that changed (a first value fills in quietly)
    for (const [p, v] of Object.entries(values)) {
      const known = st.values.has(p);
      const before = st.values.get(p);
      if (!known) structural = true;
      st.values.set(p, v);
      if (JSON.stringify(before) !== JSON.stringify(v)) {
        changed.push(p);
        if (known) flash.add(p);
      }
      if (!valueEls.has(p)) structural = true;
    }
    if (structural) renderTree();
    for (const p of changed) {
      const v = valueEls.get(p);
      if (!v) continue;
      fillValue(v, p);
      if (!flash.has(p)) continue;
      v.classList.remove('changed');
      void v.offsetWidth; // restart the highlight
      v.classList.add('changed');
      setTimeout(() => v.classList.remove('changed'), 1500);
    }
    if (st.selected && changed.some((p) => under(p, st.selected))) renderPanelValue();
  }

  function recordsToValues(records) {
    const out = {};
    const times = {};
    for (const r of records || []) {
      const t = r.time ?? 0;
      if (!(r.path in out) || t >= times[r.path]) {
        out[r.path] = r.value;
        times[r.path] = t;
      }
    }
    return out;
  }

  function goPath() {
    const ids = parsePath(pathInput.value);
    if (!ids) {
      showResult(null, h('div', { class: 'message err' }, `“${pathInput.value}” is not an LwM2M path; write e.g. /3/0/11/0.`));
      return;
    }
    selectPath(pathText(ids), true);
  }

  function selectPath(path, reveal) {
    st.selected = path;
    pathInput.value = path;
    if (reveal) {
      const ids = idsOf(path);
      st.open.add(`/${ids[0]}`);
      for (let i = 2; i < ids.length; i++) st.closed.delete(pathText(ids.slice(0, i)));
    }
    renderTree();
    renderPanel();
  }

  // ---- operation panel -----------------------------------------------------------------------------------
  const formatSel = select('op-format', FORMATS, '');
  const timeoutIn = h('input', { id: 'op-timeout', placeholder: 'default', size: 8, title: 'e.g. 30s, 500ms, 300' });
  const resultBox = h('div', { id: 'op-result', 'aria-live': 'polite' });
  let panelValueEl = null;

  function options(extra) {
    return query({ format: formatSel.value, timeout: timeoutIn.value.trim(), ...(extra || {}) });
  }

  function tabsFor(path) {
    const ids = idsOf(path);
    const { resource } = modelOf(path);
    const tabs = [['read', 'Read / Observe']];
    if (ids.length >= 2) tabs.push(['write', 'Write']);
    if (ids.length === 3 && (!resource || resource.operations.includes('E'))) tabs.push(['execute', 'Execute']);
    tabs.push(['attributes', 'Attributes']);
    if (ids.length === 1) tabs.push(['create', 'Create']);
    if (ids.length === 2) tabs.push(['delete', 'Delete']);
    return tabs;
  }

  function renderPanel() {
    const path = st.selected;
    if (!path) {
      setChildren(panel, h('h2', {}, 'Operations'),
        h('p', { class: 'muted' }, 'Select an object, instance, resource or resource instance in the tree, or type a path.'),
        resultBox);
      return;
    }
    const ids = idsOf(path);
    const { object, resource } = modelOf(path);
    const tabs = tabsFor(path);
    if (!tabs.some(([k]) => k === st.tab)) st.tab = 'read';
    const kind = ['object', 'instance', 'resource', 'resource instance'][ids.length - 1];
    const info = [];
    if (resource) {
      info.push(h('div', { class: 'model-facts' },
        badge(resource.type, null), badge(resource.operations || 'no ops', null),
        badge(resource.multiple ? 'multiple' : 'single', null),
        resource.mandatory ? badge('mandatory', null) : null,
        resource.units ? badge(resource.units, null) : null,
        resource.range ? badge(`range ${resource.range}`, null) : null));
      if (resource.description) info.push(h('p', { class: 'desc', title: resource.description }, resource.description));
    } else if (ids.length <= 2 && object) {
      info.push(h('div', { class: 'model-facts' }, badge(`object ${object.id} v${object.version}`, null),
        badge(object.multiple ? 'multiple instances' : 'single instance', null),
        object.mandatory ? badge('mandatory', null) : null));
      if (object.description && ids.length === 1) info.push(h('p', { class: 'desc', title: object.description }, object.description));
    } else if (!object) {
      info.push(h('p', { class: 'muted small' }, 'The server has no model of this object: values are untyped.'));
    }
    panelValueEl = ids.length >= 3 ? h('div', { class: 'current', id: 'op-current' }) : null;
    const body = h('div', { class: 'tab-body', id: `tab-body-${st.tab}` });
    setChildren(panel,
      h('div', { class: 'op-head' },
        h('h2', { id: 'op-path' }, h('code', {}, path), ' ', h('span', { class: 'op-name' }, nameOf(path))),
        h('span', { class: 'muted small' }, kind)),
      info,
      panelValueEl,
      h('div', { class: 'op-options' },
        h('label', {}, 'Content format', formatSel),
        h('label', {}, 'Timeout', timeoutIn)),
      h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([k, t]) => h('button', {
        type: 'button', role: 'tab', id: `tab-${k}`, class: k === st.tab ? 'tab active' : 'tab',
        onclick: () => { st.tab = k; renderPanel(); },
      }, t))),
      body,
      resultBox);
    renderPanelValue();
    const render = { read: tabRead, write: tabWrite, execute: tabExecute, attributes: tabAttributes, create: tabCreate, delete: tabDelete }[st.tab];
    render(body, path);
  }

  function renderPanelValue() {
    if (!panelValueEl || !st.selected) return;
    const path = st.selected;
    const { resource } = modelOf(path);
    const ris = [...st.values.entries()].filter(([p]) => p.startsWith(`${path}/`));
    if (st.values.has(path)) {
      setChildren(panelValueEl, h('span', { class: 'muted small' }, 'Current value '),
        h('code', { 'data-testid': 'current-value' }, showValue(st.values.get(path), resource && resource.type)),
        resource && resource.units ? h('span', { class: 'muted' }, ` ${resource.units}`) : null);
    } else if (ris.length) {
      setChildren(panelValueEl, h('span', { class: 'muted small' }, 'Current values '),
        h('code', { 'data-testid': 'current-value' }, ris.map(([p, v]) => `[${idsOf(p)[3]}] ${showValue(v, resource && resource.type)}`).join('  ')));
    } else {
      setChildren(panelValueEl, h('span', { class: 'muted small' }, 'Value not read yet'));
    }
  }

  function tabRead(body, path) {
    const ids = idsOf(path);
    const activeCancel = h('input', { type: 'checkbox', id: 'op-cancel-active' });
    setChildren(body,
      h('div', { class: 'toolbar' },
        h('button', { id: 'op-read', type: 'button', class: 'primary', onclick: () => doRead(path) }, 'Read'),
        h('button', { id: 'op-observe', type: 'button', onclick: () => doObserve(path) }, 'Observe'),
        h('button', { id: 'op-cancel-observe', type: 'button', onclick: () => doCancelObserve(path, activeCancel.checked) }, 'Cancel observation'),
        ids.length <= 3 ? h('button', { id: 'op-discover', type: 'button', onclick: () => doDiscover(path) }, 'Discover') : null),
      h('label', { class: 'inline' }, activeCancel, 'cancel actively (ask the device)'));
  }

  /** A typed value input for `type`; returns {el, read() -> JSON text (throws a message)}. */
  function valueInput(type, current, idBase) {
    const cur = current === undefined ? undefined : current;
    if (type === 'boolean') {
      const s = h('select', { id: idBase },
        h('option', { value: 'true', selected: cur === true }, 'true'),
        h('option', { value: 'false', selected: cur === false }, 'false'));
      return { el: s, read: () => s.value };
    }
    if (type === 'integer' || type === 'unsigned' || type === 'float') {
      const i = h('input', { id: idBase, inputmode: 'decimal', value: cur === undefined ? '' : String(cur), placeholder: type === 'float' ? '21.5' : '42' });
      return {
        el: i,
        read: () => {
          const t = i.value.trim();
          const ok = type === 'float' ? t !== '' && Number.isFinite(Number(t)) : type === 'unsigned' ? /^\d+$/.test(t) : /^-?\d+$/.test(t);
          if (!ok) throw new Error(`“${t}” is not ${type === 'float' ? 'a number' : type === 'unsigned' ? 'an unsigned integer' : 'an integer'}`);
          return type === 'float' ? String(Number(t)) : t.replace(/^(-?)0+(?=\d)/, '$1');
        },
      };
    }
    if (type === 'time') {
      const i = h('input', { id: idBase, value: cur === undefined ? '' : String(cur), placeholder: 'Unix seconds or 2025-01-31T12:00:00Z' });
      const now = h('button', { type: 'button', class: 'small', onclick: () => { i.value = String(Math.floor(Date.now() / 1000)); } }, 'Now');
      return {
        el: h('span', { class: 'inline-input' }, i, now),
        read: () => {
          const t = i.value.trim();
          if (/^-?\d+$/.test(t)) return t;
          const ms = Date.parse(t);
          if (Number.isNaN(ms)) throw new Error(`“${t}” is neither Unix seconds nor a date`);
          return String(Math.floor(ms / 1000));
        },
      };
    }
    if (type === 'opaque') {
      const enc = h('select', { id: `${idBase}-encoding` }, ['hex', 'base64', 'text'].map((x) => h('option', { value: x }, x)));
      let initial = '';
      if (cur && typeof cur.base64 === 'string') {
        try {
          initial = Array.from(atob(cur.base64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
        } catch { initial = ''; }
      }
      const i = h('input', { id: idBase, value: initial, placeholder: '0a1b2c…' });
      return {
        el: h('span', { class: 'inline-input' }, i, enc),
        read: () => {
          const t = i.value.trim();
          let b64;
          if (enc.value === 'hex') {
            const clean = t.replace(/[\s:]/g, '');
            if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error('not an even number of hex digits');
            b64 = btoa(clean.match(/../g)?.map((x) => String.fromCharCode(parseInt(x, 16))).join('') || '');
          } else if (enc.value === 'base64') {
            try { atob(t); } catch { throw new Error('not base64'); }
            b64 = t;
          } else {
            b64 = btoa(String.fromCharCode(...new TextEncoder().encode(t)));
          }
          return JSON.stringify({ base64: b64 });
        },
      };
    }
    if (type === 'objlnk') {
      const i = h('input', { id: idBase, value: cur === undefined ? '' : String(cur), placeholder: '3:0' });
      return {
        el: i,
        read: () => {
          const t = i.value.trim();
          if (!/^\d+:\d+$/.test(t)) throw new Error(`“${t}” is not an object link OBJECT:INSTANCE`);
          return JSON.stringify(t);
        },
      };
    }
    if (type === 'string' || type === 'corelnk') {
      const i = h('input', { id: idBase, value: cur === undefined ? '' : String(cur) });
      return { el: i, read: () => JSON.stringify(i.value) };
    }
    // No model: JSON if it parses, else a string.
    const i = h('input', { id: idBase, value: cur === undefined ? '' : JSON.stringify(cur), placeholder: '42, "text", true' });
    return {
      el: i,
      read: () => {
        const t = i.value.trim();
        try { JSON.parse(t); return t; } catch { return JSON.stringify(t); }
      },
    };
  }

  function tabWrite(body, path) {
    const ids = idsOf(path);
    const { object, resource } = modelOf(path);
    const mode = select('write-mode', [['replace', 'Replace (PUT)'], ['partial', 'Partial update (POST)']], 'replace');
    const warn = resource && !resource.operations.includes('W')
      ? h('p', { class: 'message warn' }, `The model says ${resource.name} is not writable (${resource.operations || 'no operations'}): the device will probably refuse.`)
      : null;
    let build; // () -> body text (throws)
    let editor;
    const type = resource ? resource.type : undefined;
    if (ids.length === 4 || (ids.length === 3 && !(resource && resource.multiple))) {
      const vi = valueInput(type, st.values.get(path), 'write-value');
      editor = h('label', {}, `Value${type ? ` (${type})` : ''}`, vi.el);
      build = () => vi.read();
    } else if (ids.length === 3) {
      // A multiple resource: one row per resource instance.
      const rows = h('div', { class: 'ri-rows', id: 'write-instances' });
      const addRow = (ri, v) => {
        const vi = valueInput(type, v, `write-ri-${rows.childElementCount}`);
        const idIn = h('input', { class: 'ri-id', type: 'number', min: 0, max: 65535, value: ri, 'aria-label': 'instance id' });
        const r = h('div', { class: 'ri-row' }, h('span', { class: 'muted' }, '['), idIn, h('span', { class: 'muted' }, ']'), vi.el,
          h('button', { type: 'button', class: 'small danger', title: 'remove', onclick: () => r.remove() }, '✕'));
        r.readValue = () => {
          if (!/^\d+$/.test(idIn.value)) throw new Error('an instance id is missing');
          return [`${path}/${idIn.value}`, vi.read()];
        };
        rows.append(r);
      };
      const known = [...st.values.entries()].filter(([p]) => p.startsWith(`${path}/`)).sort((a, b) => comparePaths(a[0], b[0]));
      if (known.length) for (const [p, v] of known) addRow(idsOf(p)[3], v);
      else addRow(0, undefined);
      editor = h('div', {}, h('div', { class: 'muted small' }, 'Resource instances'), rows,
        h('button', {
          id: 'write-add-instance', type: 'button', class: 'small',
          onclick: () => {
            const used = [...rows.querySelectorAll('.ri-id')].map((i) => Number(i.value));
            addRow(used.length ? Math.max(...used) + 1 : 0, undefined);
          },
        }, '+ Add instance'));
      build = () => {
        const parts = [...rows.children].map((r) => r.readValue());
        if (!parts.length) throw new Error('give at least one resource instance');
        return `{${parts.map(([p, v]) => `${JSON.stringify(p)}: ${v}`).join(', ')}}`;
      };
    } else {
      // An instance: a JSON object of resource paths.
      const writable = object ? object.resources.filter((r) => r.operations.includes('W')) : [];
      const prefill = {};
      for (const [p, v] of st.values) {
        const pid = idsOf(p);
        const rm = resourceOf(object, pid[2]);
        if (under(p, path) && (!rm || rm.operations.includes('W'))) prefill[p] = v;
      }
      const ta = h('textarea', { id: 'write-json', spellcheck: 'false', rows: 8 },
        Object.keys(prefill).length ? pretty(prefill) : pretty(Object.fromEntries(writable.slice(0, 2).map((r) => [`${path}/${r.id}`, sample(r.type)]))));
      editor = h('div', {},
        h('label', {}, 'Values (JSON: path → value)', ta),
        writable.length ? h('p', { class: 'muted small' }, 'Writable: ', writable.map((r) => `${r.id} ${r.name} (${r.type}${r.multiple ? '[]' : ''})`).join(', ')) : null);
      build = () => {
        const t = ta.value.trim();
        try { JSON.parse(t); } catch (e) { throw new Error(`not valid JSON: ${e.message}`); }
        return t;
      };
    }
    setChildren(body, warn, h('div', { class: 'form-stack' },
      h('label', {}, 'Mode', mode), editor,
      h('div', { class: 'toolbar' }, h('button', {
        id: 'op-write', type: 'button', class: 'primary',
        onclick: () => {
          let text;
          try { text = build(); } catch (e) { showResult(null, h('div', { class: 'message err', id: 'op-error' }, `Write ${path}: ${e.message}`)); return; }
          const method = mode.value === 'partial' ? 'POST' : 'PUT';
          run(`Write ${path}`, () => call(method, clientUrl(ep, `${path}${options()}`), text), (r) => {
            // Keep the tree in step with what was written (the device accepted it).
            try { applyWritten(path, JSON.parse(text), mode.value === 'replace'); } catch { /* shown as sent */ }
            return r;
          });
        },
      }, 'Write'))));
  }

  function applyWritten(path, j, replace) {
    const ids = idsOf(path);
    const values = j !== null && typeof j === 'object' && !('base64' in j) ? j : { [path]: j };
    if (ids.length === 3 && replace) applyValues(values, path);
    else applyValues(values, null);
  }

  function sample(type) {
    return { string: '', integer: 0, unsigned: 0, float: 0.0, boolean: false, time: Math.floor(Date.now() / 1000), objlnk: '0:0', opaque: { base64: '' }, corelnk: '' }[type] ?? '';
  }

  function tabExecute(body, path) {
    const args = h('input', { id: 'exec-args', placeholder: "0='value',1", spellcheck: 'false' });
    setChildren(body, h('div', { class: 'form-stack' },
      h('label', {}, 'Arguments (optional)', args),
      h('div', { class: 'toolbar' },
        h('button', {
          id: 'op-execute', type: 'button', class: 'primary',
          onclick: () => run(`Execute ${path}`, () => call('POST', clientUrl(ep, `${path}/execute${query({ timeout: timeoutIn.value.trim() })}`), args.value)),
        }, 'Execute'))));
  }

  function tabAttributes(body, path) {
    const known = st.attrs.get(path) || {};
    const rows = ATTRIBUTES.map(([k, label]) => {
      const v = h('input', { id: `attr-${k}`, value: known[k] ?? '', placeholder: '', size: 8, inputmode: 'decimal' });
      const clear = h('input', { type: 'checkbox', id: `attr-${k}-clear`, title: `remove ${k}` });
      return { k, v, clear, el: h('tr', {}, h('td', {}, h('code', {}, k)), h('td', { class: 'muted small' }, label), h('td', {}, v), h('td', {}, h('label', { class: 'inline' }, clear, 'remove'))) };
    });
    setChildren(body,
      h('p', { class: 'muted small' }, 'Empty fields stay as they are; “remove” unsets an attribute. Discover shows the current ones.'),
      h('table', { class: 'grid attrs-table' }, h('tbody', {}, rows.map((r) => r.el))),
      h('div', { class: 'toolbar' },
        h('button', {
          id: 'op-attributes', type: 'button', class: 'primary',
          onclick: () => {
            const parts = [];
            for (const r of rows) {
              if (r.clear.checked) parts.push(r.k);
              else if (r.v.value.trim() !== '') parts.push(`${r.k}=${encodeURIComponent(r.v.value.trim())}`);
            }
            if (!parts.length) {
              showResult(null, h('div', { class: 'message err', id: 'op-error' }, 'Give at least one attribute value or tick “remove”.'));
              return;
            }
            const t = timeoutIn.value.trim();
            if (t) parts.push(`timeout=${encodeURIComponent(t)}`);
            run(`Write-Attributes ${path}`, () => call('PUT', clientUrl(ep, `${path}/attributes?${parts.join('&')}`)));
          },
        }, 'Write attributes'),
        h('button', { id: 'op-discover-attrs', type: 'button', onclick: () => doDiscover(path) }, 'Discover')));
  }

  function tabCreate(body, path) {
    const [oid] = idsOf(path);
    const m = objectModel(oid);
    const inst = h('input', { id: 'create-instance', type: 'number', min: 0, max: 65534, placeholder: 'device picks', size: 10 });
    const template = {};
    if (m) for (const r of m.resources) if (r.mandatory && r.operations.includes('W') && !r.multiple) template[r.id] = sample(r.type);
    const ta = h('textarea', { id: 'create-body', rows: 6, spellcheck: 'false' }, pretty(template));
    setChildren(body, h('div', { class: 'form-stack' },
      h('label', {}, 'Instance id', inst),
      h('label', {}, 'Resources (JSON: resource id → value, "r/ri" for a resource instance)', ta),
      m ? h('p', { class: 'muted small' }, 'Resources: ', m.resources.filter((r) => r.operations.includes('W')).map((r) => `${r.id} ${r.name} (${r.type})`).join(', ') || 'none writable') : null,
      h('div', { class: 'toolbar' },
        h('button', {
          id: 'op-create', type: 'button', class: 'primary',
          onclick: () => {
            let j;
            try { j = JSON.parse(ta.value.trim() || '{}'); } catch (e) { showResult(null, h('div', { class: 'message err', id: 'op-error' }, `Create: not valid JSON: ${e.message}`)); return; }
            const i = inst.value.trim();
            let payload = j;
            if (i !== '') {
              payload = {};
              for (const [k, v] of Object.entries(j)) payload[k.startsWith('/') ? k : `${path}/${i}/${k}`] = v;
              if (!Object.keys(payload).length) {
                showResult(null, h('div', { class: 'message err', id: 'op-error' }, 'Give at least one resource for a Create with an instance id.'));
                return;
              }
            }
            run(`Create ${path}`, () => call('POST', clientUrl(ep, `${path}${options()}`), payload), (r) => { loadDetail(); return r; });
          },
        }, 'Create instance'))));
  }

  function tabDelete(body, path) {
    setChildren(body,
      h('p', {}, `Delete object instance ${path} on the device.`),
      h('div', { class: 'toolbar' },
        h('button', {
          id: 'op-delete', type: 'button', class: 'danger',
          onclick: () => {
            if (!window.confirm(`Delete ${path} on ${ep}?`)) return;
            run(`Delete ${path}`, () => call('DELETE', clientUrl(ep, `${path}${query({ timeout: timeoutIn.value.trim() })}`)), (r) => {
              for (const p of [...st.values.keys()]) if (under(p, path)) st.values.delete(p);
              loadDetail();
              return r;
            });
          },
        }, 'Delete instance')));
  }

  // ---- requests --------------------------------------------------------------------------------------------
  function errorMessage(what, e) {
    const code = e.body && e.body.coap_code ? ` (CoAP ${e.body.coap_code})` : '';
    return h('div', { class: 'message err', id: 'op-error', 'data-error': e.error || '' },
      h('strong', {}, `${what} failed`), ` — ${e.error || 'error'}${code}: ${e.reason || e.message}`,
      e.status ? h('span', { class: 'muted small' }, ` · HTTP ${e.status}`) : null);
  }

  function showResult(seq, content) {
    if (seq !== null && seq !== st.seq) return;
    setChildren(resultBox, content);
  }

  /** Runs one API request: pending state, result panel, log line. `then(r)` post-processes a success. */
  async function run(what, request, then) {
    st.seq += 1;
    const seq = st.seq;
    const sleeping = st.detail && st.detail.presence === 'sleeping';
    showResult(seq, h('div', { class: 'message pending', id: 'op-pending' }, h('span', { class: 'spinner' }),
      `${what} … ${sleeping ? 'the client sleeps: the request is queued until it wakes up' : 'waiting for the device'}`));
    log.add({ kind: 'request', text: `→ ${what}` });
    if (sleeping) setTimeout(loadQueue, 300);
    try {
      let r = await request();
      if (then) r = then(r) || r;
      log.add({ kind: 'request', text: `← ${what}: ${r.code || 'ok'}${r.values ? ` ${Object.entries(r.values).map(([p, v]) => `${p}=${showValue(v)}`).join(' ')}` : ''}` });
      showResult(seq, resultView(what, r));
      return r;
    } catch (e) {
      log.add({ kind: 'request-failed', text: `✕ ${what}: ${e.error || 'error'} ${e.reason || e.message}` });
      showResult(seq, errorMessage(what, e));
      return null;
    }
  }

  function resultView(what, r) {
    const head = h('div', { class: 'message ok', id: 'op-ok' },
      h('strong', {}, what), ` → ${r.code || 'done'}`, r.format ? ` · ${r.format}` : '',
      r.location ? ` · created ${r.location}` : '', r.observation !== undefined ? ` · observation ${r.observation}` : '');
    const parts = [head];
    const values = r.values;
    if (values && Object.keys(values).length) {
      parts.push(h('table', { class: 'grid values', id: 'op-values' }, h('tbody', {},
        Object.entries(values).sort((a, b) => comparePaths(a[0], b[0])).map(([p, v]) => {
          const { resource } = modelOf(p);
          return h('tr', {}, h('td', { class: 'mono' }, p), h('td', { class: 'muted' }, nameOf(p)),
            h('td', { class: 'mono', 'data-testid': `result-${p}` }, showValue(v, resource && resource.type), resource && resource.units ? ` ${resource.units}` : ''));
        }))));
    }
    if (r.records) {
      parts.push(h('table', { class: 'grid values', id: 'op-values' }, h('tbody', {},
        r.records.map((x) => h('tr', {}, h('td', { class: 'mono' }, x.path), h('td', { class: 'mono' }, showValue(x.value)),
          h('td', { class: 'muted' }, x.time ? dateTime(x.time * 1000) : ''))))));
    }
    if (r.links) {
      parts.push(h('table', { class: 'grid values', id: 'op-links' }, h('tbody', {},
        r.links.map((l) => h('tr', {}, h('td', { class: 'mono' }, l.path), h('td', { class: 'muted' }, nameOf(l.path)),
          h('td', { class: 'mono' }, Object.entries(l.attributes).map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(' ')))))));
    }
    parts.push(h('details', { class: 'raw' }, h('summary', {}, 'Raw answer'), h('pre', {}, pretty(r))));
    return parts;
  }

  async function doRead(path) {
    const r = await run(`Read ${path}`, () => get(clientUrl(ep, `${path}${options()}`)));
    if (r) {
      if (r.values) applyValues(r.values, path);
      else if (r.records) applyValues(recordsToValues(r.records), null);
    }
  }

  async function doObserve(path) {
    const r = await run(`Observe ${path}`, () => call('POST', clientUrl(ep, `${path}/observe${options()}`)));
    if (r) {
      if (r.values) applyValues(r.values, path);
      else if (r.records) applyValues(recordsToValues(r.records), null);
    }
    loadObservations();
  }

  async function doCancelObserve(path, active) {
    await run(`Cancel observation ${path}`, () => call('DELETE', clientUrl(ep, `${path}/observe${query({ active, timeout: timeoutIn.value.trim() })}`)));
    loadObservations();
  }

  async function doDiscover(path) {
    const r = await run(`Discover ${path}`, () => get(clientUrl(ep, `/discover${path}${query({ timeout: timeoutIn.value.trim() })}`)));
    if (r && r.links) {
      for (const p of [...st.attrs.keys()]) if (under(p, path)) st.attrs.delete(p);
      for (const l of r.links) st.attrs.set(l.path, l.attributes);
      renderTree();
      if (st.tab === 'attributes') renderPanel();
    }
  }

  // ---- composite -----------------------------------------------------------------------------------------
  const compFormat = select('composite-format', COMPOSITE_FORMATS, '');
  const compInput = h('input', {
    id: 'composite-path', placeholder: '/3303/0/5700', size: 14, spellcheck: 'false',
    onkeydown: (e) => { if (e.key === 'Enter') addCompositePath(); },
  });

  function addCompositePath() {
    const ids = parsePath(compInput.value);
    if (!ids) return;
    st.composite.add(pathText(ids));
    compInput.value = '';
    renderComposite();
    renderTree();
  }

  function renderComposite() {
    const paths = [...st.composite].sort(comparePaths);
    const list = paths.length
      ? h('ul', { class: 'chips', id: 'composite-paths' }, paths.map((p) => h('li', { class: 'chip' }, h('code', {}, p),
        h('button', {
          type: 'button', class: 'chip-x', title: `remove ${p}`,
          onclick: () => { st.composite.delete(p); renderComposite(); renderTree(); },
        }, '✕'))))
      : h('p', { class: 'muted small', id: 'composite-paths' }, 'No paths selected.');
    const opts = () => query({ format: compFormat.value, timeout: timeoutIn.value.trim() });
    const none = paths.length === 0;
    setChildren(compositeBox, list,
      h('div', { class: 'toolbar' }, compInput,
        h('button', { type: 'button', class: 'small', id: 'composite-add', onclick: addCompositePath }, 'Add'),
        h('label', { class: 'inline' }, 'Format', compFormat)),
      h('div', { class: 'toolbar' },
        h('button', {
          id: 'composite-read', type: 'button', class: 'primary', disabled: none,
          onclick: async () => {
            const r = await run(`Read-Composite ${paths.join(' ')}`, () => call('POST', clientUrl(ep, `/composite/read${opts()}`), { paths }));
            if (r && r.values) applyValues(r.values, null);
            else if (r && r.records) applyValues(recordsToValues(r.records), null);
          },
        }, 'Read'),
        h('button', {
          id: 'composite-observe', type: 'button', disabled: none,
          onclick: async () => {
            const r = await run(`Observe-Composite ${paths.join(' ')}`, () => call('POST', clientUrl(ep, `/composite/observe${opts()}`), { paths }));
            if (r && r.values) applyValues(r.values, null);
            loadObservations();
          },
        }, 'Observe'),
        h('button', {
          id: 'composite-cancel', type: 'button', disabled: none,
          onclick: async () => {
            await run('Cancel composite observation', () => call('DELETE', clientUrl(ep, `/composite/observe${query({ active: obsActive.checked })}`), { paths }));
            loadObservations();
          },
        }, 'Cancel observation'),
        h('button', {
          id: 'composite-clear', type: 'button', class: 'small', disabled: none,
          onclick: () => { st.composite.clear(); renderComposite(); renderTree(); },
        }, 'Clear')));
  }

  // ---- observations and queue ----------------------------------------------------------------------------
  async function loadObservations() {
    try {
      const r = await get(clientUrl(ep, '/observations'));
      st.observations = r.observations;
    } catch (e) {
      if (e.error !== 'unknown_endpoint') setChildren(obsBox, errorMessage('Listing observations', e));
      st.observations = [];
      if (e.error !== 'unknown_endpoint') return;
    }
    const observed = new Map();
    for (const o of st.observations) for (const p of o.paths) observed.set(p, [...(observed.get(p) || []), o.id]);
    const changed = JSON.stringify([...observed]) !== JSON.stringify([...st.observed]);
    st.observed = observed;
    if (st.detail) {
      st.detail.observations = st.observations.length;
      const f = facts.querySelector('#fact-observations');
      if (f) f.textContent = String(st.observations.length);
    }
    if (changed) renderTree();
    if (!st.observations.length) {
      setChildren(obsBox, h('p', { class: 'muted small', id: 'observations-empty' }, 'No active observation.'));
      return;
    }
    setChildren(obsBox, h('table', { class: 'grid compact', id: 'observations-table' },
      h('thead', {}, h('tr', {}, ['Id', 'Paths', 'Format', 'Since', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, st.observations.map((o) => h('tr', { 'data-testid': `observation-${o.id}` },
        h('td', { class: 'mono' }, String(o.id)),
        h('td', {}, o.paths.map((p) => h('div', {}, h('code', {}, p), ' ', h('span', { class: 'muted small' }, nameOf(p)))),
          o.operation === 'Observe-Composite' ? badge('composite', 'info') : null),
        h('td', { class: 'muted' }, o.format || 'auto'),
        h('td', { class: 'muted nowrap', title: dateTime(o.created_at_ms) }, ago(o.created_at_ms)),
        h('td', {}, h('button', {
          type: 'button', class: 'small danger', 'data-testid': `cancel-observation-${o.id}`,
          onclick: async () => {
            await run(`Cancel observation ${o.id}`, () => call('DELETE', clientUrl(ep, `/observations/${o.id}${query({ active: obsActive.checked })}`)));
            loadObservations();
          },
        }, 'Cancel')))))));
  }

  async function loadQueue() {
    try {
      const q = await get(clientUrl(ep, '/queue'));
      if (st.detail) {
        st.detail.queued_requests = q.requests.length;
        const f = facts.querySelector('#fact-queued');
        if (f) f.textContent = String(q.requests.length);
      }
      const head = h('p', { class: 'small' },
        q.queue_mode ? [badge(q.presence, q.presence === 'sleeping' ? 'warn' : 'ok'),
          q.awake_until_ms ? h('span', { class: 'muted' }, ` awake until ${dateTime(q.awake_until_ms)}`) : null]
          : h('span', { class: 'muted' }, 'Not in queue mode: requests go out at once.'));
      if (!q.requests.length) {
        setChildren(queueBox, head, q.queue_mode ? h('p', { class: 'muted small', id: 'queue-empty' }, 'No request is waiting.') : null);
        return;
      }
      setChildren(queueBox, head, h('table', { class: 'grid compact', id: 'queue-table' },
        h('thead', {}, h('tr', {}, ['Id', 'Operation', 'Paths', 'Queued', 'Deadline'].map((t) => h('th', {}, t)))),
        h('tbody', {}, q.requests.map((r) => h('tr', { 'data-testid': `queued-${r.id}` },
          h('td', { class: 'mono' }, String(r.id)), h('td', {}, r.operation),
          h('td', {}, r.paths.map((p) => h('code', {}, `${p} `))),
          h('td', { class: 'muted nowrap', title: dateTime(r.queued_at_ms) }, ago(r.queued_at_ms)),
          h('td', { class: 'muted nowrap', title: dateTime(r.deadline_ms) }, until(r.deadline_ms)))))));
    } catch (e) {
      if (e.error === 'unknown_endpoint') setChildren(queueBox, h('p', { class: 'muted small' }, 'Not registered.'));
      else setChildren(queueBox, errorMessage('Listing queued requests', e));
    }
  }

  // ---- live events -------------------------------------------------------------------------------------
  const refreshDetail = debounce(() => loadDetail(), 100);
  disposers.push(stream.subscribe((ev) => {
    if (ev.kind === 'lagged' || ev.kind === 'reconnected') {
      log.add(ev);
      reloadAll();
      return;
    }
    if (ev.endpoint !== ep) return;
    log.add(ev);
    switch (ev.kind) {
      case 'registered':
        st.values.clear();
        st.attrs.clear();
        refreshDetail();
        loadObservations();
        loadQueue();
        break;
      case 'updated':
        refreshDetail();
        loadQueue();
        break;
      case 'deregistered':
      case 'expired':
        st.gone = { kind: ev.kind, time_ms: ev.time_ms };
        renderHead();
        loadObservations();
        loadQueue();
        break;
      case 'sleeping':
      case 'awake':
        if (st.detail) st.detail.presence = ev.kind;
        refreshDetail();
        loadQueue();
        break;
      case 'notification':
        if (ev.values) applyValues(ev.values, ev.paths && ev.paths.length === 1 ? ev.paths[0] : null);
        else if (ev.records) applyValues(recordsToValues(ev.records), null);
        break;
      case 'send':
        applyValues(recordsToValues(ev.records), null);
        break;
      case 'observation-ended':
        loadObservations();
        break;
      case 'queued-request-done':
        if (ev.operation === 'Read' && ev.values) applyValues(ev.values, null);
        loadQueue();
        break;
      default:
        break;
    }
    if (st.detail && ev.time_ms && ['notification', 'send', 'updated', 'awake'].includes(ev.kind)) {
      st.detail.last_seen_ms = Math.max(st.detail.last_seen_ms || 0, ev.time_ms);
      const ls = facts.querySelector('#fact-last-seen .ticking');
      if (ls) { ls.dataset.ms = st.detail.last_seen_ms; ls.textContent = ago(st.detail.last_seen_ms); }
    }
  }));
  const ticker = setInterval(() => {
    for (const t of el.querySelectorAll('.ticking')) t.textContent = ago(Number(t.dataset.ms));
    if (st.detail && st.detail.queue_mode) loadQueue();
  }, 5000);

  function reloadAll() {
    loadDetail();
    loadObservations();
    loadQueue();
  }

  renderPanel();
  renderComposite();
  reloadAll();
  return {
    el,
    dispose() {
      for (const d of disposers) d();
      clearInterval(ticker);
    },
  };
}
