// #/models[/{id}]: the object models the server knows (GET /api/models), with their resources.

import { h, setChildren, badge, debounce } from './util.js';
import { get } from './api.js';

export function modelsView(selected) {
  const listBox = h('div', { id: 'models-list' });
  const detailBox = h('div', { id: 'model-detail' });
  const filter = h('input', {
    id: 'models-search', type: 'search', placeholder: 'Filter by id or name…', autocomplete: 'off',
    oninput: debounce(() => renderList(), 100),
  });
  const count = h('span', { class: 'muted', id: 'models-count' });
  let models = [];

  const el = h('div', { class: 'view-models' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Object models'), count),
    h('div', { class: 'row' },
      h('div', { class: 'models-side' }, h('div', { class: 'card' }, h('div', { class: 'toolbar' }, filter), listBox)),
      h('div', { class: 'grow' }, detailBox)));

  function renderList() {
    const f = filter.value.trim().toLowerCase();
    const shown = models.filter((m) => !f || String(m.id).startsWith(f) || m.name.toLowerCase().includes(f));
    setChildren(listBox, h('ul', { class: 'model-list' }, shown.map((m) => h('li', {},
      h('a', { href: `#/models/${m.id}`, class: m.id === selected ? 'active' : '' },
        h('span', { class: 'id' }, String(m.id)), ' ', m.name,
        h('span', { class: 'muted small' }, ` v${m.version}`))))));
  }

  function renderDetail() {
    const m = models.find((x) => x.id === selected);
    if (!m) {
      setChildren(detailBox, h('div', { class: 'card' }, h('p', { class: 'muted' },
        selected === null ? 'Choose an object model.' : `No model of object ${selected}.`)));
      return;
    }
    setChildren(detailBox, h('div', { class: 'card' },
      h('h2', {}, `${m.name} `, h('span', { class: 'muted' }, `/${m.id}`)),
      h('div', { class: 'model-facts' },
        badge(`version ${m.version}`, 'info'),
        m.versions.length > 1 ? badge(`loaded: ${m.versions.join(', ')}`, null) : null,
        badge(`LwM2M ${m.lwm2m_version}`, null),
        badge(m.multiple ? 'multiple instances' : 'single instance', null),
        m.mandatory ? badge('mandatory', 'warn') : null,
        h('code', { class: 'muted' }, m.urn)),
      m.description ? h('p', { class: 'desc-full' }, m.description) : null,
      h('table', { class: 'grid compact', id: 'model-resources' },
        h('thead', {}, h('tr', {}, ['Id', 'Name', 'Ops', 'Type', 'Instances', 'Mandatory', 'Units', 'Range', 'Description'].map((t) => h('th', {}, t)))),
        h('tbody', {}, m.resources.map((r) => h('tr', {},
          h('td', { class: 'mono' }, String(r.id)),
          h('td', { class: 'nowrap' }, r.name),
          h('td', { class: 'mono' }, r.operations || '–'),
          h('td', {}, r.type),
          h('td', {}, r.multiple ? 'multiple' : 'single'),
          h('td', {}, r.mandatory ? 'yes' : 'no'),
          h('td', {}, r.units),
          h('td', { class: 'mono small' }, r.range),
          h('td', { class: 'desc-cell', title: r.description }, h('div', {}, r.description))))))));
  }

  get('/api/models').then((r) => {
    models = r.models;
    count.textContent = `${r.total} objects`;
    renderList();
    renderDetail();
  }).catch((e) => setChildren(listBox, h('div', { class: 'message err' }, `Cannot load the models: ${e.error}: ${e.reason}`)));

  return { el, dispose() {} };
}
