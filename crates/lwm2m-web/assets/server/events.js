// The live event stream (GET /api/events, Server-Sent Events) and the event log panel.

import { h, clock, showValue } from './util.js';
import { requireLogin } from './login.js';

/**
 * The event kinds listened to. SSE events are named by kind, and EventSource only delivers named events to
 * listeners of that name, so the list must name every kind; unknown kinds are rendered generically.
 */
export const KINDS = [
  'registered', 'updated', 'deregistered', 'expired', 'sleeping', 'awake', 'notification',
  'observation-ended', 'send', 'on-registration-result', 'queued-request-done', 'lagged',
];

/** One EventSource for the whole page; views subscribe to it. */
export class EventStream {
  constructor() {
    this.handlers = new Set();
    this.statusHandlers = new Set();
    this.state = 'connecting';
    this.opened = 0;
    this.source = null;
  }

  start() {
    if (typeof EventSource === 'undefined') {
      this.setState('unsupported');
      return;
    }
    const src = new EventSource('/api/events');
    this.source = src;
    src.addEventListener('open', () => {
      this.opened += 1;
      this.setState('live');
      // After a reconnect events may have been missed: views refresh.
      if (this.opened > 1) this.emit({ kind: 'reconnected', time_ms: Date.now() });
    });
    src.addEventListener('error', () => {
      if (src.readyState === 2) this.closed();
      else this.setState('reconnecting');
    });
    const deliver = (msg) => {
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch {
        ev = { kind: msg.type || 'message', raw: msg.data };
      }
      if (!ev.kind) ev.kind = msg.type || 'message';
      if (!ev.time_ms) ev.time_ms = Date.now();
      this.emit(ev);
    };
    for (const k of KINDS) src.addEventListener(k, deliver);
    src.onmessage = deliver;
  }

  /**
   * The browser gave up on the stream (it does after an HTTP error such as 401): when the API wants a login,
   * ask for it and open the stream again.
   */
  async closed() {
    this.setState('closed');
    try {
      const hl = await (await fetch('/api/health')).json();
      if (!hl.auth || hl.authenticated) return;
    } catch {
      return;
    }
    this.setState('login');
    await requireLogin('The event stream (GET /api/events) needs a login.');
    this.start();
  }

  setState(s) {
    this.state = s;
    for (const f of this.statusHandlers) f(s);
  }

  emit(ev) {
    for (const f of [...this.handlers]) {
      try {
        f(ev);
      } catch (e) {
        console.error('event handler failed', e);
      }
    }
  }

  /** Calls `f(event)` for every event; returns the unsubscribe function. */
  subscribe(f) {
    this.handlers.add(f);
    return () => this.handlers.delete(f);
  }

  /** Calls `f(state)` now and on every change of the connection state. */
  onStatus(f) {
    this.statusHandlers.add(f);
    f(this.state);
    return () => this.statusHandlers.delete(f);
  }
}

function summary(ev) {
  switch (ev.kind) {
    case 'registered':
    case 'updated': {
      const r = ev.registration || {};
      const bits = [`lifetime ${r.lifetime_s} s`, `binding ${r.binding}`, `LwM2M ${r.version}`];
      if (r.queue_mode) bits.push('queue mode');
      if (ev.replaced) bits.push('replaced an older registration');
      return `${r.address || ''} ${bits.join(', ')}`.trim();
    }
    case 'deregistered':
    case 'expired':
      return `registration ${ev.registration_id || ''}`;
    case 'notification':
    case 'on-registration-result': {
      const head = ev.kind === 'notification' ? `observation ${ev.observation}` : ev.operation || '';
      if (ev.error) return `${head} ${(ev.paths || []).join(' ')} error: ${ev.error}`;
      return `${head} ${ev.code || ''} ${valuesText(ev)}`;
    }
    case 'send':
      return valuesText(ev);
    case 'queued-request-done': {
      const head = `${ev.operation || 'request'} ${(ev.paths || []).join(' ')} (held request ${ev.id})`;
      if (ev.error) return `${head} failed: ${ev.error}`;
      return `${head} → ${ev.code || ''} ${valuesText(ev)}`.trim();
    }
    case 'observation-ended':
      return `observation ${ev.observation}: ${ev.reason}`;
    case 'lagged':
      return `the stream fell behind and missed ${ev.missed} events; views were refreshed`;
    case 'reconnected':
      return 'the event stream reconnected; views were refreshed';
    default: {
      const rest = { ...ev };
      for (const k of ['kind', 'endpoint', 'time_ms']) delete rest[k];
      return Object.keys(rest).length ? JSON.stringify(rest) : '';
    }
  }
}

function valuesText(ev) {
  if (ev.values) {
    return Object.entries(ev.values)
      .map(([p, v]) => `${p}=${showValue(v)}`)
      .join(' ');
  }
  if (ev.records) {
    return ev.records.map((r) => `${r.path}=${showValue(r.value)}${r.time ? `@${r.time}` : ''}`).join(' ');
  }
  return '';
}

const KIND_CLASS = {
  registered: 'ok', updated: 'info', deregistered: 'warn', expired: 'err', sleeping: 'warn', awake: 'ok',
  notification: 'info', send: 'info', 'observation-ended': 'warn', lagged: 'err', request: 'req',
  'request-failed': 'err', reconnected: 'warn', 'queued-request-done': 'info',
};

/** The event log panel: newest first, at most `max` lines, pausable, clearable. */
export class EventLog {
  constructor({ id = 'event-log', max = 500, showEndpoint = true } = {}) {
    this.max = max;
    this.showEndpoint = showEndpoint;
    this.paused = false;
    this.count = 0;
    this.list = h('div', { class: 'log', id, 'data-testid': id, 'aria-live': 'polite' });
    this.counter = h('span', { class: 'muted small' }, '0 events');
    const pause = h('button', {
      class: 'small', id: `${id}-pause`, type: 'button',
      onclick: () => {
        this.paused = !this.paused;
        pause.textContent = this.paused ? 'Resume' : 'Pause';
      },
    }, 'Pause');
    const clear = h('button', {
      class: 'small', id: `${id}-clear`, type: 'button',
      onclick: () => {
        this.list.replaceChildren();
        this.count = 0;
        this.counter.textContent = '0 events';
      },
    }, 'Clear');
    this.tools = h('span', { class: 'card-tools' }, this.counter, pause, clear);
  }

  /** Adds one event (`{kind, endpoint, time_ms, ...}`) or a local line (`{kind: 'request', text}`). */
  add(ev) {
    if (this.paused) return;
    const kind = ev.kind || 'message';
    const line = h('div', { class: `log-line kind-${KIND_CLASS[kind] || 'other'}`, 'data-kind': kind },
      h('span', { class: 'log-time' }, clock(ev.time_ms || Date.now())),
      h('span', { class: 'log-kind' }, kind),
      this.showEndpoint && ev.endpoint ? h('span', { class: 'log-ep' }, ev.endpoint) : null,
      h('span', { class: 'log-text' }, ev.text !== undefined ? ev.text : summary(ev)));
    this.list.prepend(line);
    while (this.list.childElementCount > this.max) this.list.lastElementChild.remove();
    this.count += 1;
    this.counter.textContent = `${this.count} event${this.count === 1 ? '' : 's'}`;
  }
}
