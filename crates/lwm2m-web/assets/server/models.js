// Object models (GET /api/models): names, resource types and operations, cached for the page's life.

import { get } from './api.js';

let all = null;
const byVersion = new Map();

/** Every model (preferred versions), by object id. Loaded once. */
export async function loadModels() {
  if (!all) {
    all = get('/api/models').then((r) => new Map(r.models.map((m) => [m.id, m])));
    all.catch(() => {
      all = null;
    });
  }
  return all;
}

/**
 * The model of object `id` in `version` (the version a client registered), falling back to the preferred
 * version; null when the server knows no model of the object.
 */
export async function modelFor(id, version) {
  const models = await loadModels();
  const m = models.get(id);
  if (!m) return null;
  if (!version || m.version === version || !m.versions.includes(version)) return m;
  const key = `${id}@${version}`;
  if (!byVersion.has(key)) {
    byVersion.set(key, get(`/api/models/${id}?version=${encodeURIComponent(version)}`).catch(() => m));
  }
  return byVersion.get(key);
}

/** The resource model `rid` of an object model (or null). */
export function resourceOf(model, rid) {
  if (!model) return null;
  return model.resources.find((r) => r.id === rid) || null;
}
