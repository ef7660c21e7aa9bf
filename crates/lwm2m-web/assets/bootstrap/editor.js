// The configuration editor: a form for the common parts of a BootstrapConfig (device credentials, server
// accounts with the LwM2M 1.1 registration-procedure resources, ACLs, other writes, session options, repair
// policy) and a raw JSON tab for everything. The form edits the configuration object in place, so fields
// the form does not show (e.g. bootstrap_account, ciphersuites) are kept. The server validates on save.

import { h, replace, api, enc, showMessage, clearMessage, randomHex, ApiError } from './util.js';

/** A new configuration with the server's defaults spelled out, so the form shows them. */
function newConfig() {
  return {
    servers: [],
    acls: [],
    generate_acls: true,
    writes: [],
    deletes: [],
    delete_before_write: false,
    read_acls: true,
    set_last_bootstrapped: true,
    repair: {
      rewrite_stale_accounts: true,
      delete_unknown_ssids: true,
      delete_unconfigured_uris: true,
      alert_code_is_stale: true,
      rewrite_differing: true,
    },
    on_finish_rejected: 'fail',
  };
}

function newAccount(cfg) {
  const used = new Set((cfg.servers || []).map((s) => s.ssid));
  let ssid = 1;
  while (used.has(ssid)) ssid += 1;
  return { ssid, uri: '', security: { mode: 'nosec' }, lifetime: 86400, binding: 'U', notification_storing: true };
}

const RIGHTS = [['R', 1, 'Read'], ['W', 2, 'Write'], ['E', 4, 'Execute'], ['D', 8, 'Delete'], ['C', 16, 'Create']];

/** ACL rights (letters or a number) as a bit mask; NaN when unreadable. */
function rightsMask(r) {
  if (typeof r === 'number') return r;
  let m = 0;
  for (const c of String(r || '').toUpperCase()) {
    const e = RIGHTS.find(([l]) => l === c);
    if (!e) return NaN;
    m |= e[1];
  }
  return m;
}

function rightsLetters(mask) {
  return RIGHTS.filter(([, b]) => mask & b).map(([l]) => l).join('');
}

/** The text of a number input: an integer, nothing (→ undefined), or the raw text (the server names it). */
function parseNum(text) {
  const t = text.trim();
  if (t === '') return undefined;
  if (/^-?\d+$/.test(t)) return Number(t);
  return t;
}

const numText = (v) => (v === undefined || v === null ? '' : String(v));

// -------------------------------------------------------------------------------------------------
// Field builders: each binds one key of `obj`; `changed()` is called after every edit.
// -------------------------------------------------------------------------------------------------

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label,
    hint ? h('span', { class: 'hint' }, ` ${hint}`) : null), input);
}

function numInput(obj, key, id, changed, { required = false, placeholder = '' } = {}) {
  return h('input', {
    id, type: 'text', inputmode: 'numeric', class: 'num', value: numText(obj[key]), placeholder,
    oninput: (e) => {
      const v = parseNum(e.target.value);
      if (v === undefined && !required) delete obj[key];
      else obj[key] = v === undefined ? '' : v;
      changed();
    },
  });
}

function textInput(obj, key, id, changed, { optional = false, placeholder = '', cls = '' } = {}) {
  return h('input', {
    id, type: 'text', value: obj[key] ?? '', placeholder, class: cls, spellcheck: 'false',
    oninput: (e) => {
      const v = e.target.value;
      if (v === '' && optional) delete obj[key];
      else obj[key] = v;
      changed();
    },
  });
}

function hexInput(obj, key, id, changed, placeholder = 'hex') {
  return h('textarea', {
    id, class: 'hex', rows: 2, placeholder, spellcheck: 'false', value: obj[key] ?? '',
    oninput: (e) => { obj[key] = e.target.value.trim(); changed(); },
  });
}

/** An Option<bool>: unset (the device's default), true, false. */
function optBool(obj, key, id, changed) {
  const v = obj[key] === true ? 'true' : obj[key] === false ? 'false' : '';
  const sel = h('select', {
    id,
    onchange: (e) => {
      if (e.target.value === '') delete obj[key];
      else obj[key] = e.target.value === 'true';
      changed();
    },
  }, h('option', { value: '' }, '— not written —'), h('option', { value: 'true' }, 'true'),
  h('option', { value: 'false' }, 'false'));
  sel.value = v;
  return sel;
}

function checkbox(obj, key, id, label, changed, dflt = false, hint = '') {
  return h('label', { class: 'check' },
    h('input', {
      id, type: 'checkbox', checked: obj[key] ?? dflt,
      onchange: (e) => { obj[key] = e.target.checked; changed(); },
    }), h('span', {}, label, hint ? h('span', { class: 'hint' }, ` ${hint}`) : null));
}

function select(id, options, value, onchange) {
  const sel = h('select', { id, onchange: (e) => onchange(e.target.value) },
    options.map(([v, label]) => h('option', { value: v }, label)));
  sel.value = value;
  return sel;
}

function section(title, subtitle, ...body) {
  return h('section', { class: 'card' },
    h('div', { class: 'section-head' }, h('h2', {}, title), subtitle ? h('span', { class: 'muted' }, subtitle) : null),
    ...body);
}

// -------------------------------------------------------------------------------------------------
// The editor
// -------------------------------------------------------------------------------------------------

/**
 * Renders the editor of `endpoint` (or of the default configuration when `isDefault`) into `root`.
 * `nav(hash, flash)` navigates (with a message for the next page). Returns a cleanup function.
 */
export function renderEditor(root, { endpoint, isDefault, nav }) {
  const url = isDefault ? '/api/default-config' : `/api/configs/${enc(endpoint)}`;
  let draft = null;
  let exists = false;
  let tab = 'form';
  let dirty = false;
  const jsonErrors = new Map(); // write index → JSON parse error of its value

  const title = isDefault ? 'Default configuration' : endpoint;
  const what = isDefault ? 'the default configuration' : `the configuration of ${endpoint}`;
  const stateBadge = h('span', { id: 'cfg-state', class: 'badge' }, 'loading');
  const dirtyBadge = h('span', { id: 'cfg-dirty', class: 'badge warn', hidden: true }, 'unsaved changes');
  const message = h('div', { id: 'editor-message', class: 'message', role: 'status', hidden: true });
  const body = h('div', { id: 'editor-body' });
  const tabForm = h('button', { id: 'tab-form', testid: 'tab-form', class: 'tab active', onclick: () => switchTab('form') }, 'Form');
  const tabJson = h('button', { id: 'tab-json', testid: 'tab-json', class: 'tab', onclick: () => switchTab('json') }, 'JSON');
  const saveBtn = h('button', { id: 'save', testid: 'save', class: 'primary', onclick: save }, 'Save');
  const revertBtn = h('button', { id: 'revert', testid: 'revert', onclick: load }, 'Revert');
  const deleteBtn = h('button', { id: 'delete', testid: 'delete', class: 'danger', onclick: askDelete }, 'Delete');
  const confirmBtn = h('button', { id: 'delete-confirm', testid: 'delete-confirm', class: 'danger solid', hidden: true, onclick: doDelete }, 'Really delete?');

  replace(root,
    h('div', { class: 'page-head' },
      h('div', {},
        h('div', { class: 'crumbs' }, h('a', { href: '#/configs' }, 'Configurations'), ' / '),
        h('h1', { id: 'cfg-endpoint' }, title, ' ', stateBadge, ' ', dirtyBadge)),
      h('div', { class: 'toolbar' },
        isDefault ? null : h('a', { class: 'button', id: 'to-sessions', href: `#/sessions/${enc(endpoint)}` }, 'Session log'),
        revertBtn, deleteBtn, confirmBtn, saveBtn)),
    isDefault
      ? h('p', { class: 'muted intro' }, 'Used for devices that have no configuration of their own. Such devices can only use plain CoAP (there are no credentials to check them against).')
      : null,
    message,
    h('div', { class: 'tabs' }, tabForm, tabJson),
    body);

  let confirmTimer = null;
  function askDelete() {
    deleteBtn.hidden = true;
    confirmBtn.hidden = false;
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => { confirmBtn.hidden = true; deleteBtn.hidden = false; }, 5000);
  }
  async function doDelete() {
    clearTimeout(confirmTimer);
    try {
      await api('DELETE', url);
      window.dispatchEvent(new Event('bs-config-changed'));
      nav('#/configs', { kind: 'ok', text: `Deleted ${what}.` });
    } catch (e) {
      confirmBtn.hidden = true;
      deleteBtn.hidden = false;
      showMessage(message, 'err', e);
    }
  }

  function setState() {
    stateBadge.textContent = exists ? 'stored' : 'new — not saved yet';
    stateBadge.className = exists ? 'badge ok' : 'badge info';
    deleteBtn.disabled = !exists;
    dirtyBadge.hidden = !dirty;
  }

  function changed() {
    dirty = true;
    dirtyBadge.hidden = false;
    if (message.classList.contains('ok')) clearMessage(message);
  }

  async function load() {
    clearMessage(message);
    try {
      const r = await api('GET', url);
      draft = r.body;
      exists = true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        draft = newConfig();
        exists = false;
      } else {
        showMessage(message, 'err', e);
        draft = draft || newConfig();
      }
    }
    dirty = false;
    jsonErrors.clear();
    setState();
    render();
  }

  function switchTab(t) {
    if (t === tab) return;
    if (t === 'form') {
      const text = document.getElementById('cfg-json').value;
      try {
        draft = JSON.parse(text);
        if (typeof draft !== 'object' || draft === null || Array.isArray(draft)) throw new Error('the configuration must be a JSON object');
      } catch (e) {
        showMessage(message, 'err', `The JSON cannot be shown as a form: ${e.message}`);
        return;
      }
      clearMessage(message);
    }
    tab = t;
    tabForm.classList.toggle('active', t === 'form');
    tabJson.classList.toggle('active', t === 'json');
    render();
  }

  async function save() {
    clearMessage(message);
    let payload;
    if (tab === 'json') {
      // Sent as typed: the server names any syntax or field error.
      payload = document.getElementById('cfg-json').value;
    } else {
      if (jsonErrors.size) {
        const [i, err] = [...jsonErrors.entries()][0];
        showMessage(message, 'err', `Other write #${i + 1}: the value is not JSON (${err}). Fix it or edit the JSON tab.`);
        return;
      }
      payload = draft;
    }
    saveBtn.disabled = true;
    try {
      const r = await api('PUT', url, payload);
      draft = r.body;
      const created = r.status === 201;
      exists = true;
      dirty = false;
      setState();
      render();
      showMessage(message, 'ok', created ? `Created ${what}.` : `Saved ${what}.`);
      window.dispatchEvent(new Event('bs-config-changed'));
    } catch (e) {
      showMessage(message, 'err', e);
      markError(e);
    } finally {
      saveBtn.disabled = false;
    }
  }

  /** Outlines the server account a refusal names ("server account ssid N: ..."). */
  function markError(e) {
    const m = e instanceof ApiError ? /server account ssid (\d+)/.exec(e.reason) : null;
    if (!m || tab !== 'form') return;
    const i = (draft.servers || []).findIndex((s) => String(s.ssid) === m[1]);
    const el = i >= 0 ? body.querySelector(`[data-testid=server-${i}]`) : null;
    if (el) el.classList.add('has-error');
  }

  function render() {
    if (!draft) return;
    if (tab === 'json') {
      replace(body, h('section', { class: 'card' },
        h('p', { class: 'lead' }, 'The configuration exactly as stored (the serde form of BootstrapConfig, see docs/bootstrap.md). Every field can be edited here, including the Bootstrap-Server account rewrite, cipher suites and instance pinning. Save sends it as written; the server checks it.'),
        h('textarea', { id: 'cfg-json', testid: 'cfg-json', class: 'json-editor', spellcheck: 'false', rows: 28, value: JSON.stringify(draft, null, 2), oninput: changed })));
      return;
    }
    const rerender = () => { changed(); render(); };
    replace(body,
      credentialsSection(draft, changed, rerender, isDefault, endpoint),
      serversSection(draft, changed, rerender),
      aclSection(draft, changed, rerender),
      writesSection(draft, changed, rerender, jsonErrors),
      behaviourSection(draft, changed),
      repairSection(draft, changed),
      draft.bootstrap_account
        ? section('Bootstrap-Server account rewrite', '', h('p', { class: 'muted' }, `Rewrites the device's Bootstrap-Server account to ${draft.bootstrap_account.uri}. Edit it in the JSON tab.`))
        : null);
  }

  load();
  return () => clearTimeout(confirmTimer);
}

// -------------------------------------------------------------------------------------------------
// Sections
// -------------------------------------------------------------------------------------------------

function credentialsSection(cfg, changed, rerender, isDefault, endpoint) {
  if (isDefault) {
    return section('Device credentials', 'with this Bootstrap-Server',
      h('p', { class: 'muted' }, 'The default configuration carries no credentials: unknown devices bootstrap over plain CoAP.'));
  }
  const c = cfg.credentials;
  const mode = c ? c.mode : 'none';
  const setMode = (m) => {
    if (m === 'none') delete cfg.credentials;
    else if (m === 'psk') cfg.credentials = { mode: 'psk', identity: (c && c.identity) || endpoint, key: (c && c.key) || '' };
    else if (m === 'rpk') cfg.credentials = { mode: 'rpk', public_key: (c && c.public_key) || '' };
    else cfg.credentials = { mode: 'x509' };
    rerender();
  };
  const fields = [];
  if (mode === 'psk') {
    fields.push(field('PSK identity', textInput(c, 'identity', 'cred-psk-identity', changed)));
    fields.push(h('div', { class: 'field wide' },
      field('PSK key', hexInput(c, 'key', 'cred-psk-key', changed, 'hex, 1 to 64 bytes'), '(hex)'),
      h('button', { class: 'small', id: 'cred-psk-generate', type: 'button', onclick: () => { c.key = randomHex(16); rerender(); } }, 'Generate 16-byte key')));
  } else if (mode === 'rpk') {
    fields.push(h('div', { class: 'field wide' }, field('Device public key', hexInput(c, 'public_key', 'cred-rpk-public-key', changed, 'SubjectPublicKeyInfo, DER, hex'), '(SubjectPublicKeyInfo, hex)')));
  } else if (mode === 'x509') {
    fields.push(h('p', { class: 'muted wide' }, `The device presents a certificate that chains to the Bootstrap-Server's trust store and whose subject CN is "${endpoint}".`));
  } else {
    fields.push(h('p', { class: 'muted wide' }, 'Plain CoAP only: the device is not authenticated. A device with credentials must use DTLS.'));
  }
  return section('Device credentials', 'how the device authenticates to this Bootstrap-Server (DTLS)',
    h('div', { class: 'form-grid' },
      field('Mode', select('cred-mode', [['none', 'None (plain CoAP)'], ['psk', 'Pre-shared key (PSK)'], ['rpk', 'Raw public key (RPK)'], ['x509', 'X.509 certificate']], mode, setMode)),
      ...fields));
}

const SECURITY_MODES = [['nosec', 'NoSec (3)'], ['psk', 'PSK (0)'], ['rpk', 'RPK (1)'], ['x509', 'X.509 (2)']];

function securityFields(acc, i, changed, rerender) {
  const s = acc.security || { mode: 'nosec' };
  acc.security = s;
  const id = (k) => `srv-${i}-sec-${k}`;
  const setMode = (m) => {
    const keep = (k) => (s[k] !== undefined ? s[k] : '');
    if (m === 'nosec') acc.security = { mode: 'nosec' };
    else if (m === 'psk') acc.security = { mode: 'psk', identity: keep('identity'), key: keep('key') };
    else if (m === 'rpk') acc.security = { mode: 'rpk', public_key: keep('public_key'), private_key: keep('private_key'), server_public_key: keep('server_public_key') };
    else acc.security = { mode: 'x509', certificate: keep('certificate'), private_key: keep('private_key'), server_certificate: keep('server_certificate') };
    rerender();
  };
  const out = [field('Security mode', select(id('mode'), SECURITY_MODES, s.mode, setMode), '/0/x/2')];
  if (s.mode === 'psk') {
    out.push(field('PSK identity', textInput(s, 'identity', id('identity'), changed), '/0/x/3'));
    out.push(h('div', { class: 'field wide' },
      field('PSK key', hexInput(s, 'key', id('key'), changed, 'hex, 1 to 64 bytes'), '/0/x/5, hex'),
      h('button', { class: 'small', type: 'button', id: id('generate'), onclick: () => { s.key = randomHex(16); rerender(); } }, 'Generate 16-byte key')));
  } else if (s.mode === 'rpk') {
    out.push(h('div', { class: 'field wide' }, field('Client public key', hexInput(s, 'public_key', id('public_key'), changed, 'SubjectPublicKeyInfo, DER, hex'), '/0/x/3')));
    out.push(h('div', { class: 'field wide' }, field('Client private key', hexInput(s, 'private_key', id('private_key'), changed, 'DER, hex'), '/0/x/5')));
    out.push(h('div', { class: 'field wide' }, field('Server public key', hexInput(s, 'server_public_key', id('server_public_key'), changed, 'DER, hex'), '/0/x/4')));
  } else if (s.mode === 'x509') {
    out.push(h('div', { class: 'field wide' }, field('Client certificate', hexInput(s, 'certificate', id('certificate'), changed, 'DER, hex'), '/0/x/3')));
    out.push(h('div', { class: 'field wide' }, field('Client private key', hexInput(s, 'private_key', id('private_key'), changed, 'PKCS#8 DER, hex'), '/0/x/5')));
    out.push(h('div', { class: 'field wide' }, field('Server certificate / trust anchor', hexInput(s, 'server_certificate', id('server_certificate'), changed, 'DER, hex'), '/0/x/4')));
    const usage = select(id('certificate_usage'), [['', '— not written —'], ['0', '0 CA constraint'], ['1', '1 service certificate constraint'], ['2', '2 trust anchor assertion'], ['3', '3 domain-issued certificate']],
      numText(s.certificate_usage), (v) => { if (v === '') delete s.certificate_usage; else s.certificate_usage = Number(v); changed(); });
    out.push(field('Certificate usage', usage, '/0/x/15'));
    const matching = select(id('matching_type'), [['', '— not written —'], ['0', '0 exact match'], ['1', '1 SHA-256'], ['2', '2 SHA-384'], ['3', '3 SHA-512']],
      numText(s.matching_type), (v) => { if (v === '') delete s.matching_type; else s.matching_type = Number(v); changed(); });
    out.push(field('Matching type', matching, '/0/x/13'));
  }
  return out;
}

function serversSection(cfg, changed, rerender) {
  cfg.servers = cfg.servers || [];
  const accounts = cfg.servers.map((acc, i) => {
    const id = (k) => `srv-${i}-${k}`;
    const n = (k, label, hint, opts) => field(label, numInput(acc, k, id(k), changed, opts), hint);
    const remove = h('button', { class: 'small danger', type: 'button', id: id('remove'), testid: `remove-server-${i}`, onclick: () => { cfg.servers.splice(i, 1); rerender(); } }, 'Remove');
    return h('div', { class: 'account', dataset: { index: i }, testid: `server-${i}` },
      h('div', { class: 'account-head' },
        h('strong', {}, `Server account ${i + 1}`),
        h('span', { class: 'muted mono' }, acc.uri ? ` ${acc.uri}` : ''),
        h('span', { class: 'spacer' }), remove),
      h('h3', {}, 'Account', h('span', { class: 'hint' }, ' Security (0) and Server (1) instances')),
      h('div', { class: 'form-grid' },
        n('ssid', 'Short Server ID', '/1/x/0', { required: true, placeholder: '1..65534' }),
        h('div', { class: 'field wide' }, field('Server URI', textInput(acc, 'uri', id('uri'), changed, { placeholder: 'coap://host:5683', cls: 'mono' }), '/0/x/0')),
        n('lifetime', 'Lifetime (s)', '/1/x/1', { placeholder: '86400' }),
        field('Binding', textInput(acc, 'binding', id('binding'), changed, { placeholder: 'U' }), '/1/x/7'),
        n('default_pmin', 'Default pmin (s)', '/1/x/2'),
        n('default_pmax', 'Default pmax (s)', '/1/x/3'),
        field('Notification storing', (() => {
          const sel = select(id('notification_storing'), [['true', 'true'], ['false', 'false']], String(acc.notification_storing ?? true),
            (v) => { acc.notification_storing = v === 'true'; changed(); });
          return sel;
        })(), '/1/x/6')),
      h('h3', {}, 'Security', h('span', { class: 'hint' }, ' towards this LwM2M Server')),
      h('div', { class: 'form-grid' }, ...securityFields(acc, i, changed, rerender)),
      h('h3', {}, 'Registration procedure', h('span', { class: 'hint' }, ' LwM2M 1.1, /1/x/13–20 (empty = not written)')),
      h('div', { class: 'form-grid' },
        n('registration_priority_order', 'Registration priority order', '/1/x/13'),
        n('initial_registration_delay', 'Initial registration delay (s)', '/1/x/14'),
        field('Registration failure block', optBool(acc, 'registration_failure_block', id('registration_failure_block'), changed), '/1/x/15'),
        field('Bootstrap on registration failure', optBool(acc, 'bootstrap_on_registration_failure', id('bootstrap_on_registration_failure'), changed), '/1/x/16'),
        n('communication_retry_count', 'Communication retry count', '/1/x/17'),
        n('communication_retry_timer', 'Communication retry timer (s)', '/1/x/18'),
        n('communication_sequence_delay_timer', 'Sequence delay timer (s)', '/1/x/19'),
        n('communication_sequence_retry_count', 'Sequence retry count', '/1/x/20')),
      h('details', { class: 'more' },
        h('summary', {}, 'More Server and Security resources'),
        h('div', { class: 'form-grid' },
          n('disable_timeout', 'Disable timeout (s)', '/1/x/5'),
          field('Trigger', optBool(acc, 'trigger', id('trigger'), changed), '/1/x/21'),
          field('Preferred transport', textInput(acc, 'preferred_transport', id('preferred_transport'), changed, { optional: true, placeholder: 'U, T, S or N' }), '/1/x/22'),
          field('Mute send', optBool(acc, 'mute_send', id('mute_send'), changed), '/1/x/23'),
          field('SNI', textInput(acc, 'sni', id('sni'), changed, { optional: true }), '/0/x/14'),
          field('Cipher suites', h('input', {
            id: id('ciphersuites'), type: 'text', placeholder: 'e.g. 49320, 49326', value: (acc.ciphersuites || []).join(', '),
            oninput: (e) => {
              const parts = e.target.value.split(',').map((x) => x.trim()).filter(Boolean);
              if (parts.length === 0) delete acc.ciphersuites;
              else acc.ciphersuites = parts.map((x) => parseNum(x));
              changed();
            },
          }), '/0/x/16, IANA numbers'),
          n('security_instance', 'Security instance id', 'pin /0/x'),
          n('server_instance', 'Server instance id', 'pin /1/x'))));
  });
  return section('LwM2M Server accounts', `${cfg.servers.length} account${cfg.servers.length === 1 ? '' : 's'}`,
    accounts.length ? accounts : h('p', { class: 'note' }, 'No server account: the device gets none from this configuration.'),
    h('div', { class: 'toolbar' },
      h('button', { id: 'add-server', testid: 'add-server', type: 'button', onclick: () => { cfg.servers.push(newAccount(cfg)); rerender(); } }, '+ Add server account')));
}

function aclSection(cfg, changed, rerender) {
  cfg.acls = cfg.acls || [];
  const entries = cfg.acls.map((a, i) => {
    const id = (k) => `acl-${i}-${k}`;
    a.rights = a.rights || [];
    const rows = a.rights.map((r, j) => {
      const mask = rightsMask(r.rights);
      const boxes = RIGHTS.map(([l, bit, name]) => h('td', { class: 'center' }, h('input', {
        type: 'checkbox', id: `${id(`right-${j}`)}-${l}`, title: name, checked: !Number.isNaN(mask) && (mask & bit) !== 0,
        onchange: (e) => {
          let m = rightsMask(r.rights);
          if (Number.isNaN(m)) m = 0;
          m = e.target.checked ? m | bit : m & ~bit;
          r.rights = m & ~31 ? m : rightsLetters(m);
          changed();
        },
      })));
      return h('tr', {},
        h('td', {}, numInput(r, 'ssid', id(`right-${j}-ssid`), changed, { required: true })),
        ...boxes,
        h('td', {}, h('button', { class: 'small danger', type: 'button', id: id(`right-${j}-remove`), onclick: () => { a.rights.splice(j, 1); rerender(); } }, 'Remove')));
    });
    return h('div', { class: 'account', testid: `acl-${i}` },
      h('div', { class: 'account-head' },
        h('strong', {}, `ACL /2 instance for /${a.object_id ?? '?'}/${a.instance_id === 65535 ? '(object)' : a.instance_id ?? '?'}`),
        h('span', { class: 'spacer' }),
        h('button', { class: 'small danger', type: 'button', id: id('remove'), onclick: () => { cfg.acls.splice(i, 1); rerender(); } }, 'Remove')),
      h('div', { class: 'form-grid' },
        field('Object ID', numInput(a, 'object_id', id('object_id'), changed, { required: true }), '/2/x/0'),
        field('Instance ID', numInput(a, 'instance_id', id('instance_id'), changed, { required: true, placeholder: '65535 = object level' }), '/2/x/1'),
        field('Owner (ssid)', numInput(a, 'owner', id('owner'), changed, { placeholder: '65535 = bootstrap only' }), '/2/x/3'),
        field('ACL instance id', numInput(a, 'acl_instance', id('acl_instance'), changed, { placeholder: 'automatic' }), 'pin /2/x')),
      h('table', { class: 'grid rights' },
        h('thead', {}, h('tr', {}, h('th', {}, 'ssid (0 = default)'), RIGHTS.map(([l, , name]) => h('th', { class: 'center', title: name }, `${l} ${name}`)), h('th', {}, ''))),
        h('tbody', {}, rows)),
      h('div', { class: 'toolbar' },
        h('button', { class: 'small', type: 'button', id: id('add-right'), onclick: () => { a.rights.push({ ssid: 0, rights: 'R' }); rerender(); } }, '+ Add rights entry')));
  });
  return section('Access Control', 'Object 2 instances (/2/x/2 rights per ssid: R W E D C)',
    h('div', { class: 'form-grid' },
      h('div', { class: 'wide' }, checkbox(cfg, 'generate_acls', 'generate-acls', 'Generate ACLs', changed, true, '(with several servers and no entries below)'))),
    entries.length ? entries : h('p', { class: 'note' }, 'No ACL entries.'),
    h('div', { class: 'toolbar' },
      h('button', { id: 'add-acl', testid: 'add-acl', type: 'button', onclick: () => { cfg.acls.push({ object_id: 3, instance_id: 0, owner: (cfg.servers[0] && cfg.servers[0].ssid) || 65535, rights: [] }); rerender(); } }, '+ Add ACL entry')));
}

function writesSection(cfg, changed, rerender, jsonErrors) {
  cfg.writes = cfg.writes || [];
  cfg.deletes = cfg.deletes || [];
  const rows = cfg.writes.map((w, i) => {
    const id = (k) => `write-${i}-${k}`;
    const err = h('div', { class: 'field-error', id: id('error'), hidden: !jsonErrors.has(i) }, jsonErrors.get(i) || '');
    return h('tr', {},
      h('td', {}, textInput(w, 'path', id('path'), changed, { placeholder: '/3/0/14', cls: 'mono' })),
      h('td', { class: 'grow' },
        h('textarea', {
          id: id('value'), class: 'hex', rows: 2, spellcheck: 'false', value: JSON.stringify(w.value),
          oninput: (e) => {
            try {
              w.value = JSON.parse(e.target.value);
              jsonErrors.delete(i);
              err.hidden = true;
            } catch (x) {
              jsonErrors.set(i, x.message);
              err.textContent = `not JSON: ${x.message}`;
              err.hidden = false;
            }
            changed();
          },
        }), err),
      h('td', {}, h('button', { class: 'small danger', type: 'button', id: id('remove'), onclick: () => { cfg.writes.splice(i, 1); jsonErrors.clear(); rerender(); } }, 'Remove')));
  });
  return section('Other writes and deletes', 'Bootstrap-Write of any object after the accounts and ACLs',
    cfg.writes.length
      ? h('table', { class: 'grid writes' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Value (JSON)'), h('th', {}, ''))),
        h('tbody', {}, rows))
      : h('p', { class: 'note' }, 'No other writes.'),
    cfg.writes.length ? h('p', { class: 'note' }, 'Values are typed by the object models: Opaque as {"hex": "0102"} or {"base64": "AQI="}, Objlnk as "3:0", Time in seconds, a multiple resource as an array or {"instance id": value}, an instance as {"resource id": value}.') : null,
    h('div', { class: 'toolbar' },
      h('button', { id: 'add-write', testid: 'add-write', type: 'button', onclick: () => { cfg.writes.push({ path: '/3/0/14', value: '+01:00' }); rerender(); } }, '+ Add write')),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field wide' }, field('Bootstrap-Delete paths', h('input', {
        id: 'deletes', type: 'text', class: 'mono', placeholder: 'e.g. /3303, /5/0', value: cfg.deletes.join(', '),
        oninput: (e) => { cfg.deletes = e.target.value.split(',').map((x) => x.trim()).filter(Boolean); changed(); },
      }), '/, /o or /o/i, sent before the writes'))));
}

function behaviourSection(cfg, changed) {
  const fmt = select('content-format', [['', "the device's pct"], ['tlv', 'TLV'], ['senml-cbor', 'SenML CBOR'], ['senml-json', 'SenML JSON'], ['lwm2m-json', 'LwM2M JSON']],
    cfg.content_format || '', (v) => { if (v === '') delete cfg.content_format; else cfg.content_format = v; changed(); });
  const fin = select('on-finish-rejected', [['fail', 'fail the session'], ['rewrite-all', 'rewrite all once (DELETE /, write, Finish)']],
    cfg.on_finish_rejected || 'fail', (v) => { cfg.on_finish_rejected = v; changed(); });
  return section('Session', 'how the Bootstrap-Server runs the session',
    h('div', { class: 'form-grid' },
      field('Content format of the writes', fmt),
      field('On 4.06 at Bootstrap-Finish', fin)),
    h('div', { class: 'form-grid checks' },
      checkbox(cfg, 'read_acls', 'read-acls', 'Read /2 (BsR-1 ACL state)', changed, true),
      checkbox(cfg, 'set_last_bootstrapped', 'set-last-bootstrapped', 'Write /1/x/12 Last Bootstrapped', changed, true),
      checkbox(cfg, 'delete_before_write', 'delete-before-write', 'DELETE / first, write everything', changed, false, '(no BsR-7 analysis)')));
}

function repairSection(cfg, changed) {
  const r = cfg.repair = cfg.repair || {};
  return section('Repair policy', 'BsR-7: how accounts already on the device are judged',
    h('div', { class: 'form-grid' },
      checkbox(r, 'rewrite_stale_accounts', 'repair-rewrite-stale', 'Rewrite stale accounts in place', changed, true),
      checkbox(r, 'delete_unknown_ssids', 'repair-delete-unknown', 'Delete accounts with unknown ssid', changed, true),
      checkbox(r, 'delete_unconfigured_uris', 'repair-delete-uris', 'Delete accounts with unconfigured URI', changed, true),
      checkbox(r, 'alert_code_is_stale', 'repair-alert-stale', 'TLS/DTLS alert code (/1/x/11) makes stale', changed, true),
      checkbox(r, 'rewrite_differing', 'repair-rewrite-differing', 'Rewrite accounts that differ', changed, true)),
    h('div', { class: 'form-grid' },
      field('Stale when last bootstrapped over (s) ago', numInput(r, 'last_bootstrapped_older_than_s', 'repair-older-than', changed, { placeholder: 'never' }), '/1/x/12')));
}
