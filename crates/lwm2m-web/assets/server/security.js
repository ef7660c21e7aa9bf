// #/security: the credentials each endpoint must present (GET/PUT/DELETE /api/security/{ep}).

import { h, setChildren, badge, randomHex } from './util.js';
import { call, get } from './api.js';

const HEX = /^([0-9a-fA-F]{2})+$/;

export function securityView() {
  const listBox = h('div', { id: 'security-list' });
  const message = h('div', { id: 'sec-message', 'aria-live': 'polite' });
  const count = h('span', { class: 'muted', id: 'security-count' });

  const endpoint = h('input', { id: 'sec-endpoint', placeholder: 'dev2', autocomplete: 'off', spellcheck: 'false' });
  const mode = h('select', { id: 'sec-mode', onchange: () => showMode() },
    h('option', { value: 'psk' }, 'Pre-shared key (PSK)'),
    h('option', { value: 'rpk' }, 'Raw public key (RPK)'),
    h('option', { value: 'x509' }, 'X.509 certificate'));
  const identity = h('input', { id: 'sec-identity', placeholder: 'PSK identity', autocomplete: 'off', spellcheck: 'false' });
  const keyBytes = h('span', { class: 'muted small', id: 'sec-key-bytes' });
  const key = h('input', {
    id: 'sec-key', placeholder: '000102030405060708090a0b0c0d0e0f', autocomplete: 'off', spellcheck: 'false',
    class: 'mono', oninput: () => countKey(),
  });
  const generate = h('button', {
    id: 'sec-generate', type: 'button', class: 'small',
    onclick: () => { key.value = randomHex(16); countKey(); },
  }, 'Generate 16 bytes');
  const pubFormat = h('select', { id: 'sec-key-format' }, h('option', { value: 'hex' }, 'hex'), h('option', { value: 'base64' }, 'base64'));
  const pub = h('textarea', { id: 'sec-public-key', rows: 4, spellcheck: 'false', placeholder: 'SubjectPublicKeyInfo DER (3059301306072a8648ce3d0201…)' });

  const pskFields = h('div', { class: 'form-grid', id: 'sec-psk-fields' },
    h('label', {}, 'PSK identity', identity),
    h('label', { class: 'wide' }, h('span', {}, 'Key (hex) ', keyBytes), h('span', { class: 'inline-input' }, key, generate)));
  const rpkFields = h('div', { id: 'sec-rpk-fields' },
    h('label', { class: 'block' }, h('span', {}, 'Public key ', pubFormat), pub));
  const x509Fields = h('p', { id: 'sec-x509-fields', class: 'muted' },
    'The device authenticates with a certificate whose Common Name is its endpoint name; nothing else to enter.');

  const save = h('button', { id: 'sec-save', type: 'submit', class: 'primary' }, 'Save credentials');
  const formTitle = h('h2', { id: 'sec-form-title' }, 'Add credentials');
  const form = h('form', {
    id: 'sec-form', autocomplete: 'off',
    onsubmit: (e) => { e.preventDefault(); submit(); },
  },
  h('div', { class: 'form-grid' },
    h('label', {}, 'Endpoint', endpoint),
    h('label', {}, 'Mode', mode)),
  pskFields, rpkFields, x509Fields,
  h('div', { class: 'toolbar form-actions' }, save,
    h('button', { id: 'sec-reset', type: 'button', onclick: () => reset() }, 'New entry')));

  const el = h('div', { class: 'view-security' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Security'), count),
    h('p', { class: 'muted intro' },
      'An endpoint with credentials must register over CoAPS (DTLS) with them; an endpoint without may use plain CoAP. ',
      'Changes apply at once, also to DTLS handshakes in progress.'),
    h('div', { class: 'row' },
      h('div', { class: 'grow' }, h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Credentials'),
          h('span', { class: 'card-tools' }, h('button', { id: 'security-refresh', type: 'button', class: 'small', onclick: () => load() }, 'Refresh'))),
        listBox)),
      h('div', { class: 'side' }, h('div', { class: 'card' }, formTitle, form, message))));

  function countKey() {
    const clean = key.value.replace(/[\s:]/g, '');
    keyBytes.textContent = clean && HEX.test(clean) ? `(${clean.length / 2} bytes)` : clean ? '(not hex)' : '';
  }

  function showMode() {
    pskFields.hidden = mode.value !== 'psk';
    rpkFields.hidden = mode.value !== 'rpk';
    x509Fields.hidden = mode.value !== 'x509';
  }

  function reset() {
    endpoint.value = '';
    endpoint.readOnly = false;
    mode.value = 'psk';
    identity.value = '';
    key.value = '';
    pub.value = '';
    formTitle.textContent = 'Add credentials';
    save.textContent = 'Save credentials';
    countKey();
    showMode();
  }

  function say(kind, ...text) {
    setChildren(message, h('div', { class: `message ${kind}` }, ...text));
  }

  async function edit(ep) {
    try {
      const e = await get(`/api/security/${encodeURIComponent(ep)}`);
      reset();
      endpoint.value = e.endpoint;
      mode.value = e.mode;
      if (e.mode === 'psk') {
        identity.value = e.identity;
        key.value = e.key;
      } else if (e.mode === 'rpk') {
        pubFormat.value = 'hex';
        pub.value = e.public_key;
      }
      formTitle.textContent = `Edit ${e.endpoint}`;
      save.textContent = 'Replace credentials';
      countKey();
      showMode();
      setChildren(message);
      identity.focus();
    } catch (e) {
      say('err', `Cannot load ${ep}: ${e.error}: ${e.reason}`);
    }
  }

  async function remove(ep) {
    if (!window.confirm(`Remove the credentials of ${ep}? It may then register over plain CoAP.`)) return;
    try {
      await call('DELETE', `/api/security/${encodeURIComponent(ep)}`);
      say('ok', `Removed the credentials of ${ep}.`);
      if (endpoint.value === ep) reset();
      load();
    } catch (e) {
      say('err', `Cannot remove ${ep}: ${e.error}: ${e.reason}`);
    }
  }

  async function submit() {
    const ep = endpoint.value.trim();
    if (!ep) {
      say('err', 'Give the endpoint name.');
      return;
    }
    let body;
    if (mode.value === 'psk') {
      const k = key.value.replace(/[\s:]/g, '');
      if (!identity.value) return say('err', 'Give the PSK identity.');
      if (!HEX.test(k)) return say('err', 'The key must be hexadecimal (an even number of 0-9, a-f).');
      body = { mode: 'psk', identity: identity.value, key: k };
    } else if (mode.value === 'rpk') {
      const t = pub.value.trim();
      if (!t) return say('err', 'Give the public key.');
      body = pubFormat.value === 'hex' ? { mode: 'rpk', public_key: t.replace(/[\s:]/g, '') } : { mode: 'rpk', public_key_base64: t.replace(/\s/g, '') };
    } else {
      body = { mode: 'x509' };
    }
    save.disabled = true;
    try {
      await call('PUT', `/api/security/${encodeURIComponent(ep)}`, body);
      say('ok', `Saved the ${body.mode.toUpperCase()} credentials of ${ep}.`);
      reset();
      load();
    } catch (e) {
      say('err', `Not saved — ${e.error}: ${e.reason}`);
    } finally {
      save.disabled = false;
    }
  }

  async function load() {
    try {
      const r = await get('/api/security');
      count.textContent = `${r.total} endpoint${r.total === 1 ? '' : 's'} with credentials`;
      if (!r.entries.length) {
        setChildren(listBox, h('p', { class: 'muted', id: 'security-empty' }, 'No credentials are stored: every endpoint may register over plain CoAP.'));
        return;
      }
      setChildren(listBox, h('table', { class: 'grid', id: 'security-table' },
        h('thead', {}, h('tr', {}, ['Endpoint', 'Mode', 'Credential', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, r.entries.map((e) => h('tr', { 'data-testid': `security-row-${e.endpoint}`, 'data-endpoint': e.endpoint },
          h('td', {}, h('a', { href: `#/clients/${encodeURIComponent(e.endpoint)}` }, e.endpoint)),
          h('td', {}, badge(e.mode.toUpperCase(), 'info')),
          h('td', { class: 'mono' }, e.mode === 'psk' ? [`identity ${e.identity}`, h('span', { class: 'muted' }, ` · key ${e.key_bytes} bytes`)]
            : e.mode === 'rpk' ? h('span', { title: e.public_key }, `${e.public_key.slice(0, 40)}…`) : h('span', { class: 'muted' }, 'certificate CN = endpoint')),
          h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'small', 'data-testid': `security-edit-${e.endpoint}`, onclick: () => edit(e.endpoint) }, 'Edit'),
            h('button', { type: 'button', class: 'small danger', 'data-testid': `security-delete-${e.endpoint}`, onclick: () => remove(e.endpoint) }, 'Delete')))))));
    } catch (e) {
      setChildren(listBox, h('div', { class: 'message err' }, `Cannot list the credentials: ${e.error}: ${e.reason}`));
    }
  }

  reset();
  load();
  return { el, dispose() {} };
}
