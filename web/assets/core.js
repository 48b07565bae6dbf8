// Core of the console: state, translations, DOM helpers, the API client with readable errors,
// toasts and dialogs, the hash router and the page frame (top bar).
'use strict';

const LANG_KEY = 'llmage.lang';

const S = {
  user: null,
  csrf: null,
  balance: null,
  lang: localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh',
  models: null,
  page: null, // the current page context (timers, aborts)
};

function t(key, vars) {
  const dict = window.LLMAGE_I18N[S.lang] || {};
  let s = dict[key];
  if (s === undefined) s = window.LLMAGE_I18N.zh[key];
  if (s === undefined) s = key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k])));
  return s;
}

function setLang(lang) {
  S.lang = lang === 'en' ? 'en' : 'zh';
  localStorage.setItem(LANG_KEY, S.lang);
  document.documentElement.lang = S.lang === 'en' ? 'en' : 'zh-CN';
  route();
}

// ------------------------------------------------------------------ DOM

// h('div.card#x', {onclick: f, title: 'x'}, child, 'text', [children]) builds an element; text
// always goes through text nodes (never innerHTML).
function h(sel, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(sel);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

function $(sel, root) {
  return (root || document).querySelector(sel);
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function spinner(text) {
  return h('div.loading', h('span.spin'), text || t('app.loading'));
}

function fmtNum(n) {
  if (n === null || n === undefined || n === '') return '–';
  const x = Number(n);
  if (!Number.isFinite(x)) return String(n);
  // Chat calls cost fractions of a credit: up to 4 decimal places, as the server counts.
  return x.toLocaleString(S.lang === 'en' ? 'en-US' : 'zh-CN', { maximumFractionDigits: 4 });
}

function fmtTime(secs) {
  if (secs === null || secs === undefined || secs === '') return '–';
  let x = Number(secs);
  if (!Number.isFinite(x)) return String(secs);
  if (x > 1e12) x = x / 1000; // milliseconds
  const d = new Date(x * 1000);
  const p = (v) => String(v).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, message, body, headers) {
    super(message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
  get code() {
    return (this.body && (this.body.code || (this.body.error && this.body.error.code))) || null;
  }
  get insufficient() {
    return this.code === 'insufficient_quota';
  }
}

// The readable message of an error answer: the JSON body's `error` (a string, or an object with
// `message`), never the raw body.
function errorMessage(status, body) {
  if (body && typeof body === 'object') {
    // The server's stable code, translated here; bilingual messages ("中文 / English") are
    // shown in the current language as they are.
    const code = body.code || (body.error && body.error.code);
    const text = typeof body.error === 'string' ? body.error : body.error && body.error.message;
    if (code && !(text && text.includes(' / '))) {
      const key = 'errcode.' + code;
      const s = t(key, { detail: body.detail === undefined ? '' : body.detail });
      if (s !== key) return s;
    }
    const e = body.error;
    if (typeof e === 'string' && e) return localizeError(e);
    if (e && typeof e === 'object' && typeof e.message === 'string') return localizeError(e.message);
    if (typeof body.message === 'string' && body.message) return localizeError(body.message);
  }
  return t('err.http', { status });
}

const CJK = /[\u4e00-\u9fff]/;

// "中文 / English" messages show the half in the current language.
function localizeError(msg) {
  const at = msg.indexOf(' / ');
  if (at > 0) {
    const zh = msg.slice(0, at);
    const en = msg.slice(at + 3);
    if (CJK.test(zh) && !CJK.test(en)) return S.lang === 'en' ? en : zh;
  }
  return msg;
}

async function api(method, path, body, opts) {
  opts = opts || {};
  const headers = { Accept: 'application/json' };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (S.csrf) headers['X-CSRF-Token'] = S.csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, t('err.network'), null, null);
  }
  if (opts.raw) {
    if (!resp.ok) throw await errorFrom(resp);
    return resp;
  }
  const text = await resp.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, errorMessage(resp.status, data), data, resp.headers);
    if (resp.status === 401 && !opts.no401 && S.user) {
      S.user = null;
      S.csrf = null;
      toast(t('err.session'), 'error');
      go('#/login');
    }
    throw err;
  }
  return data;
}

async function errorFrom(resp) {
  const text = await resp.text().catch(() => '');
  let data = null;
  try {
    data = JSON.parse(text);
  } catch (e) {
    data = null;
  }
  return new ApiError(resp.status, errorMessage(resp.status, data), data, resp.headers);
}

const get = (p, o) => api('GET', p, null, o);
const post = (p, b, o) => api('POST', p, b === undefined ? {} : b, o);

async function refreshMe() {
  try {
    const me = await api('GET', '/api/me', null, { no401: true });
    S.user = me.user;
    S.csrf = me.csrf_token;
    S.balance = me.balance !== undefined ? me.balance : me.user.balance;
    S.lowBalance = me.low_balance ?? null;
    S.lowBalanceSms = !!me.low_balance_sms;
  } catch (e) {
    if (e.status === 401) {
      S.user = null;
      S.csrf = null;
    } else throw e;
  }
  updateBalance();
  return S.user;
}

async function refreshBalance() {
  try {
    await refreshMe();
  } catch (e) {
    /* the balance chip keeps its old value */
  }
}

function updateBalance() {
  for (const el of document.querySelectorAll('[data-balance]')) {
    el.textContent = fmtNum(S.balance);
  }
  const notice = $('#low-balance-notice');
  if (notice) {
    const low = S.user && S.lowBalance && S.balance !== null && S.balance < S.lowBalance;
    notice.hidden = !low;
    if (low) {
      clear(notice).append(
        t('alert.low_notice', { balance: fmtNum(S.balance), threshold: fmtNum(S.lowBalance) }),
        ' ',
        h('a', { href: '#/recharge' }, t('err.insufficient_link'), ' →'),
      );
    }
  }
}

// An inline error box for `err` (ApiError or Error): the readable message, and for an
// insufficient balance "余额不足" with a link to the recharge page.
function errorBox(err) {
  if (err && err.insufficient) {
    return h(
      'div.alert.alert-error.insufficient',
      { role: 'alert' },
      h('strong', t('err.insufficient')),
      ' ',
      h('a', { href: '#/recharge' }, t('err.insufficient_link'), ' →'),
    );
  }
  const msg = err && err.message ? err.message : String(err);
  return h('div.alert.alert-error', { role: 'alert' }, msg);
}

function showError(slot, err) {
  clear(slot);
  if (err) slot.appendChild(errorBox(err));
}

// ------------------------------------------------------------------ toasts and dialogs

function toast(msg, kind) {
  let box = $('#toasts');
  if (!box) {
    box = h('div#toasts', { 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  const el = h('div.toast', { class: 'toast-' + (kind || 'info') }, msg);
  box.appendChild(el);
  setTimeout(() => el.classList.add('leaving'), 3500);
  setTimeout(() => el.remove(), 4000);
}

function toastError(err) {
  toast(err && err.insufficient ? t('err.insufficient') : err.message || String(err), 'error');
}

// A modal dialog; returns {el, close}. `buttons`: [{label, kind, onclick(close)}].
function dialog(title, body, buttons, opts) {
  opts = opts || {};
  const back = h('div.modal-back');
  const close = () => {
    back.remove();
    document.removeEventListener('keydown', onKey);
    if (opts.onclose) opts.onclose();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') close();
  };
  document.addEventListener('keydown', onKey);
  const foot = h('div.modal-foot');
  for (const b of buttons || [{ label: t('common.close'), kind: 'primary' }]) {
    foot.appendChild(
      h(
        'button.btn',
        {
          class: 'btn-' + (b.kind || 'ghost'),
          type: 'button',
          id: b.id,
          onclick: () => (b.onclick ? b.onclick(close) : close()),
        },
        b.label,
      ),
    );
  }
  const box = h(
    'div.modal',
    { role: 'dialog', 'aria-modal': 'true', id: opts.id },
    h(
      'div.modal-head',
      h('h3', title),
      h('button.icon-btn.modal-x', { type: 'button', 'aria-label': t('common.close'), onclick: close }, '×'),
    ),
    h('div.modal-body', body),
    foot,
  );
  back.appendChild(box);
  back.addEventListener('mousedown', (e) => {
    if (e.target === back && !opts.sticky) close();
  });
  document.body.appendChild(back);
  const first = box.querySelector('input, textarea, select');
  if (first) first.focus();
  return { el: box, close };
}

function confirmDialog(title, text, okLabel, kind) {
  return new Promise((resolve) => {
    let done = false;
    dialog(
      title,
      h('p', text),
      [
        {
          label: t('common.cancel'),
          onclick: (c) => {
            c();
          },
        },
        {
          label: okLabel || t('common.confirm'),
          kind: kind || 'danger',
          id: 'confirm-ok',
          onclick: (c) => {
            done = true;
            c();
            resolve(true);
          },
        },
      ],
      {
        onclose: () => {
          if (!done) resolve(false);
        },
      },
    );
  });
}

async function copyText(text, sourceEl) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      toast(t('common.copied'), 'ok');
      return true;
    }
  } catch (e) {
    /* fall back below */
  }
  // Fallback: select the text so the person can copy it, and try the old command.
  try {
    if (sourceEl) {
      const range = document.createRange();
      range.selectNodeContents(sourceEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    const ta = h('textarea', { style: { position: 'fixed', opacity: '0', top: '0' } });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand && document.execCommand('copy');
    ta.remove();
    if (sourceEl) {
      const range = document.createRange();
      range.selectNodeContents(sourceEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    toast(ok ? t('common.copied') : t('common.copy_failed'), ok ? 'ok' : 'error');
    return !!ok;
  } catch (e) {
    toast(t('common.copy_failed'), 'error');
    return false;
  }
}

// A code block with a copy button.
function codeBlock(text, opts) {
  opts = opts || {};
  const pre = h('pre.code', { id: opts.id }, h('code', text));
  return h(
    'div.codebox',
    pre,
    h('button.btn.btn-small.btn-ghost.copy-btn', { type: 'button', onclick: () => copyText(text, pre) }, t('common.copy')),
  );
}

function badge(text, kind) {
  return h('span.badge', { class: 'badge-' + (kind || 'neutral') }, text);
}

function statusBadge(status, prefix) {
  const kind =
    status === 'SUCCEEDED' ? 'ok' : status === 'FAILED' || status === 'CLOSED' ? 'bad' : 'warn';
  return badge(t((prefix || 'status') + '.' + status), kind);
}

// A table: columns [{label, get(row) -> node|text, cls}].
function table(columns, rows, opts) {
  opts = opts || {};
  if (!rows || !rows.length) return h('div.empty', opts.empty || t('common.none'));
  return h(
    'div.table-wrap',
    h(
      'table.table',
      { id: opts.id },
      h('thead', h('tr', columns.map((c) => h('th', { class: c.cls }, c.label)))),
      h(
        'tbody',
        rows.map((r) =>
          h(
            'tr',
            columns.map((c) => h('td', { class: c.cls, 'data-label': c.label }, h('div.cell', c.get(r)))),
          ),
        ),
      ),
    ),
  );
}

function card(title, ...body) {
  return h('section.card', title ? h('div.card-head', typeof title === 'string' ? h('h2', title) : title) : null, body);
}

function field(label, input, hint) {
  return h('label.field', h('span.field-label', label), input, hint ? h('span.field-hint', hint) : null);
}

// Wraps an async button action: disables the button with a spinner while it runs.
async function busy(btn, fn) {
  if (btn.disabled) return undefined;
  btn.disabled = true;
  btn.classList.add('is-busy');
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.classList.remove('is-busy');
  }
}

// ------------------------------------------------------------------ router

const ROUTES = {};
function page(path, render, opts) {
  ROUTES[path] = { render, opts: opts || {} };
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { path: path || '/', params };
}

// The page context: timers and fetches that end when the person leaves the page.
function newContext() {
  const ctx = {
    alive: true,
    timers: [],
    aborts: [],
    cleanups: [],
    interval(fn, ms) {
      const id = setInterval(fn, ms);
      this.timers.push(() => clearInterval(id));
      return id;
    },
    timeout(fn, ms) {
      const id = setTimeout(fn, ms);
      this.timers.push(() => clearTimeout(id));
      return id;
    },
    abort() {
      const c = new AbortController();
      this.aborts.push(c);
      return c;
    },
    end() {
      this.alive = false;
      this.timers.forEach((f) => f());
      this.aborts.forEach((c) => c.abort());
      this.cleanups.forEach((f) => f());
    },
  };
  return ctx;
}

let routing = 0;
let booted = false;
async function route() {
  const my = ++routing;
  if (S.page) S.page.end();
  const ctx = newContext();
  S.page = ctx;
  const { path, params } = parseHash();
  document.documentElement.lang = S.lang === 'en' ? 'en' : 'zh-CN';
  const app = $('#app');
  if (!S.user && (path !== '/login' || !booted)) {
    if (!booted) clear(app).appendChild(spinner());
    try {
      await refreshMe();
      booted = true;
    } catch (e) {
      clear(app).appendChild(h('div.boot', errorBox(e), h('button.btn.btn-primary', { onclick: route }, t('common.retry'))));
      return;
    }
    if (my !== routing) return;
  }
  if (!S.user) {
    if (path !== '/login') {
      sessionStorage.setItem('llmage.after', location.hash);
      history.replaceState(null, '', '#/login');
    }
    renderFrame(app, null);
    ROUTES['/login'].render($('#main'), params, ctx);
    return;
  }
  if (path === '/login' || path === '/') {
    const after = sessionStorage.getItem('llmage.after');
    sessionStorage.removeItem('llmage.after');
    history.replaceState(null, '', after && after !== '#/login' ? after : '#/models');
    return route();
  }
  const r = ROUTES[path];
  renderFrame(app, path);
  const main = $('#main');
  if (!r && !(path.startsWith('/admin') && S.user.role === 'admin' && !ADMIN_LOADED)) {
    main.appendChild(h('div.empty-page', h('h2', t('err.not_found')), h('a.btn.btn-primary', { href: '#/models' }, t('nav.models'))));
    return;
  }
  if (!r && path.startsWith('/admin') && S.user.role === 'admin' && !ADMIN_LOADED) {
    await loadAdminPages();
    if (my === routing) route();
    return;
  }
  if (r.opts.admin && S.user.role !== 'admin') {
    main.appendChild(h('div.empty-page', h('h2', t('err.forbidden'))));
    return;
  }
  document.title = (r.opts.title ? t(r.opts.title) + ' · ' : '') + '元境平台';
  try {
    await r.render(main, params, ctx);
  } catch (e) {
    if (e && e.name === 'AbortError') return;
    console.error(e);
    if (ctx.alive) main.appendChild(errorBox(e));
  }
}

// The admin pages' script, fetched only for admins (its URL, with its content hash, is in the
// page's <meta name="llmage-admin-script">).
let ADMIN_LOADED = false;
function loadAdminPages() {
  if (ADMIN_LOADED) return Promise.resolve();
  const meta = document.querySelector('meta[name="llmage-admin-script"]');
  return new Promise((resolve) => {
    const s = document.createElement('script');
    s.src = meta ? meta.content : '/assets/pages-admin.js';
    s.onload = () => {
      ADMIN_LOADED = true;
      resolve();
    };
    s.onerror = () => resolve();
    document.head.appendChild(s);
  });
}

// ------------------------------------------------------------------ frame

const NAV = [
  ['/models', 'nav.models'],
  ['/playground', 'nav.playground'],
  ['/tasks', 'nav.tasks'],
  ['/calls', 'nav.calls'],
  ['/keys', 'nav.keys'],
  ['/recharge', 'nav.recharge'],
  ['/docs', 'nav.docs'],
];
const ADMIN_NAV = [
  ['/admin/users', 'admin.users'],
  ['/admin/channels', 'admin.channels'],
  ['/admin/orders', 'admin.orders'],
  ['/admin/redeem', 'admin.redeem'],
];

function closeMenus(except) {
  for (const m of document.querySelectorAll('.menu.open')) if (m !== except) m.classList.remove('open');
}
document.addEventListener('click', (e) => {
  if (!e.target.closest('.menu')) closeMenus();
});

function menu(id, label, items, opts) {
  opts = opts || {};
  const wrap = h('div.menu', { id });
  const btn = h(
    'button.menu-btn',
    {
      type: 'button',
      'aria-haspopup': 'true',
      class: opts.btnClass,
      onclick: (e) => {
        e.stopPropagation();
        const open = !wrap.classList.contains('open');
        closeMenus(wrap);
        wrap.classList.toggle('open', open);
      },
    },
    label,
  );
  const list = h('div.menu-list', { class: opts.right ? 'right' : '' }, items);
  list.addEventListener('click', () => wrap.classList.remove('open'));
  wrap.append(btn, list);
  return wrap;
}

function langButton() {
  return h(
    'button.lang-btn#lang-switch',
    { type: 'button', title: t('lang.title'), onclick: () => setLang(S.lang === 'zh' ? 'en' : 'zh') },
    t('lang.switch'),
  );
}

function renderFrame(app, path) {
  clear(app);
  const logo = h('a.logo', { href: S.user ? '#/models' : '#/login' }, h('span.logo-mark', '元'), h('span.logo-text', '元境平台'));
  const bar = h('header.topbar');
  const inner = h('div.topbar-inner', logo);
  if (S.user) {
    const navLinks = NAV.map(([p, k]) =>
      h('a.nav-link', { href: '#' + p, class: path === p || (p === '/models' && path === '/model') ? 'active' : '' }, t(k)),
    );
    const nav = h('nav.nav#nav', navLinks);
    if (S.user.role === 'admin') {
      nav.appendChild(
        menu(
          'admin-menu',
          [t('nav.admin'), h('span.caret', '▾')],
          ADMIN_NAV.map(([p, k]) => h('a.menu-item', { href: '#' + p, class: path === p ? 'active' : '' }, t(k))),
          { btnClass: 'nav-link' + (path && path.startsWith('/admin') ? ' active' : '') },
        ),
      );
    }
    const burger = h(
      'button.icon-btn.burger#burger',
      {
        type: 'button',
        'aria-label': t('nav.menu'),
        onclick: (e) => {
          e.stopPropagation();
          bar.classList.toggle('nav-open');
        },
      },
      h('span'),
      h('span'),
      h('span'),
    );
    nav.addEventListener('click', (e) => {
      if (e.target.closest('a')) bar.classList.remove('nav-open');
    });
    const right = h(
      'div.topbar-right',
      h('a.balance-chip#balance-chip', { href: '#/finance', title: t('nav.balance') }, h('span.balance-label', t('nav.balance')), h('b', { 'data-balance': '1' }, fmtNum(S.balance))),
      langButton(),
      menu(
        'user-menu',
        [h('span.avatar', (S.user.phone || '?').slice(-2)), h('span.user-phone', maskPhone(S.user.phone)), h('span.caret', '▾')],
        [
          h('div.menu-note', S.user.phone),
          h('a.menu-item#menu-finance', { href: '#/finance' }, t('nav.finance')),
          h('button.menu-item#logout', { type: 'button', onclick: logout }, t('nav.logout')),
        ],
        { right: true, btnClass: 'user-btn' },
      ),
      burger,
    );
    inner.append(nav, right);
  } else {
    inner.append(h('div.topbar-right', langButton()));
  }
  bar.appendChild(inner);
  const skip = h('a.skip-link', { href: '#main', onclick: (e) => {
    e.preventDefault();
    $('#main').focus();
  } }, t('nav.skip'));
  const notice = h('div.alert.alert-warn.low-notice#low-balance-notice', { role: 'status', hidden: true });
  app.append(skip, bar, notice, h('main.main#main', { tabindex: '-1' }));
  updateBalance();
}

function maskPhone(p) {
  return p && p.length === 11 ? p.slice(0, 3) + '****' + p.slice(7) : p || '';
}

async function logout() {
  try {
    await post('/api/auth/logout');
  } catch (e) {
    /* logged out locally anyway */
  }
  S.user = null;
  S.csrf = null;
  S.models = null;
  go('#/login');
}

async function loadModels(force) {
  if (S.models && !force) return S.models;
  const list = await get('/llmage/v1/models');
  S.models = list.data || [];
  return S.models;
}

function pageHead(title, ...extra) {
  return h('div.page-head', h('h1', title), extra.length ? h('div.page-actions', extra) : null);
}
