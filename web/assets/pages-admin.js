// Admin pages (role "admin"): users, channels, orders, redeem codes.
'use strict';

page(
  '/admin/users',
  async (main, params, ctx) => {
    const slot = h('div#admin-users', spinner());
    const search = h('input#user-search', { type: 'search', placeholder: t('admin.phone') });
    main.append(pageHead(t('admin.users'), search), card(null, slot));
    let users = [];
    const render = () => {
      const q = search.value.trim();
      const rows = users.filter((u) => !q || String(u.phone).includes(q) || String(u.id) === q);
      clear(slot).appendChild(
        table(
          [
            { label: 'ID', get: (u) => u.id },
            { label: t('admin.phone'), get: (u) => u.phone },
            { label: t('admin.role'), get: (u) => (u.role === 'admin' ? badge('admin', 'warn') : u.role) },
            { label: t('admin.balance'), get: (u) => fmtNum(u.balance), cls: 'num' },
            { label: t('common.status'), get: (u) => (u.disabled ? badge(t('admin.disabled'), 'bad') : badge(t('admin.enabled'), 'ok')) },
            {
              label: t('common.actions'),
              cls: 'actions',
              get: (u) => [
                h('button.btn.btn-small.btn-ghost.credits-btn', { type: 'button', onclick: () => creditsDialog(u) }, t('admin.credits')),
                u.disabled
                  ? h('button.btn.btn-small.btn-ghost', { type: 'button', onclick: (e) => setDisabled(u, false, e.currentTarget) }, t('admin.enable'))
                  : h('button.btn.btn-small.btn-danger-ghost', { type: 'button', onclick: (e) => setDisabled(u, true, e.currentTarget) }, t('admin.disable')),
              ],
            },
          ],
          rows,
          { id: 'users-table' },
        ),
      );
    };
    search.addEventListener('input', render);
    async function load() {
      try {
        const r = await get('/api/admin/users');
        if (!ctx.alive) return;
        users = r.data || [];
        render();
      } catch (err) {
        showError(slot, err);
      }
    }
    async function setDisabled(u, disabled, btn) {
      if (disabled && !(await confirmDialog(t('admin.disable'), t('admin.confirm_disable', { phone: u.phone }), t('admin.disable')))) return;
      await busy(btn, async () => {
        try {
          await post(`/api/admin/users/${encodeURIComponent(u.id)}/${disabled ? 'disable' : 'enable'}`);
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }
    function creditsDialog(u) {
      const amount = h('input#credits-amount', { type: 'number', step: 1 });
      const reason = h('input#credits-reason', { type: 'text', maxlength: 200 });
      const msg = h('div.form-msg');
      dialog(
        t('admin.credits_title', { phone: u.phone }),
        [field(t('admin.credits_amount'), amount), field(t('admin.credits_reason'), reason), msg],
        [
          { label: t('common.cancel') },
          {
            label: t('common.save'),
            kind: 'primary',
            id: 'credits-save',
            onclick: async (close) => {
              clear(msg);
              const n = Number(amount.value);
              if (!Number.isInteger(n) || n === 0) {
                showError(msg, new Error(t('admin.bad_int')));
                return;
              }
              if (!reason.value.trim()) {
                showError(msg, new Error(t('admin.need_reason')));
                return;
              }
              try {
                const r = await post(`/api/admin/users/${encodeURIComponent(u.id)}/credits`, { amount: n, reason: reason.value.trim() });
                close();
                toast(t('admin.credits_ok', { balance: fmtNum(r.balance) }), 'ok');
                if (S.user && u.id === S.user.id) refreshBalance();
                load();
              } catch (err) {
                showError(msg, err);
              }
            },
          },
        ],
      );
    }
    load();
  },
  { admin: true, title: 'admin.users' },
);

// ------------------------------------------------------------------ channels
// List with health, priority, weight, models and mapping; add / edit / enable-disable / delete;
// "测试" runs the smallest real call through the channel (POST /api/admin/channels/{id}/test).

Object.assign(window.LLMAGE_I18N.zh, {
  'channels.add': '添加渠道',
  'channels.edit': '编辑渠道 #{id}',
  'channels.edit_btn': '编辑',
  'channels.key': '密钥',
  'channels.key_keep': '留空则保持原密钥',
  'channels.models_hint': '逗号或换行分隔；写成 模型=上游名称 可映射到供应商的模型名',
  'channels.mapping': '映射',
  'channels.test': '测试',
  'channels.test_ok': '可用 · {ms} ms',
  'channels.test_failed': '失败',
  'channels.enable': '启用',
  'channels.disable': '停用',
  'channels.confirm_delete': '确定删除渠道 {name} 吗？',
  'channels.deleted': '已删除',
  'channels.saved': '已保存',
  'channels.need': '请填写：{fields}',
  'channels.base_hint': '例如 {example}',
  'channels.limits': '并发上限 / 每分钟请求（可空）',
  'channels.none': '还没有渠道。演示模式下没有渠道的模型由离线沙盒回答；添加渠道后由真实模型回答。',
});
Object.assign(window.LLMAGE_I18N.en, {
  'channels.add': 'Add channel',
  'channels.edit': 'Edit channel #{id}',
  'channels.edit_btn': 'Edit',
  'channels.key': 'Key',
  'channels.key_keep': 'Leave empty to keep the current key',
  'channels.models_hint': 'Comma or newline separated; model=upstream-name maps to the vendor\'s model name',
  'channels.mapping': 'Mapping',
  'channels.test': 'Test',
  'channels.test_ok': 'OK · {ms} ms',
  'channels.test_failed': 'Failed',
  'channels.enable': 'Enable',
  'channels.disable': 'Disable',
  'channels.confirm_delete': 'Delete channel {name}?',
  'channels.deleted': 'Deleted',
  'channels.saved': 'Saved',
  'channels.need': 'Please fill in: {fields}',
  'channels.base_hint': 'e.g. {example}',
  'channels.limits': 'Max concurrency / requests per minute (optional)',
  'channels.none': 'No channels yet. In demo mode the offline sandbox answers models without a channel; add a channel and real models answer.',
});

// Vendors a channel can speak, with a base URL example each: [name, label, base URL], filled in
// the page's <meta name="llmage-vendors"> by the server from its vendor list (the same list
// `llmage admin channel add --help` shows).
const CHANNEL_VENDORS = (() => {
  try {
    return JSON.parse(document.querySelector('meta[name="llmage-vendors"]').content);
  } catch {
    return [['openai', 'OpenAI-compatible', 'https://api.openai.com/v1']];
  }
})();

page(
  '/admin/channels',
  async (main, params, ctx) => {
    const slot = h('div#admin-channels', spinner());
    const addBtn = h('button.btn.btn-primary#channel-add', { type: 'button', onclick: () => editDialog(null) }, t('channels.add'));
    main.append(pageHead(t('admin.channels'), addBtn), card(null, slot));
    const results = {}; // channel id -> last test outcome
    let channels = [];

    function testCell(c) {
      const out = results[c.id];
      const box = h('span.channel-test', { id: 'channel-test-' + c.id });
      if (out && out.ok) box.appendChild(badge(t('channels.test_ok', { ms: out.latency_ms }), 'ok'));
      else if (out) box.append(badge(t('channels.test_failed'), 'bad'), h('div.small.muted.channel-test-error', out.error || ''));
      return box;
    }
    function render() {
      const now = Date.now() / 1000;
      if (!channels.length) {
        clear(slot).appendChild(h('p.muted#channels-empty', t('channels.none')));
        return;
      }
      clear(slot).appendChild(
        table(
          [
            { label: 'ID', get: (c) => c.id },
            { label: t('common.name'), get: (c) => h('strong', c.name) },
            { label: t('admin.vendor'), get: (c) => c.vendor },
            { label: t('admin.base_url'), get: (c) => [h('code.small.break', c.base_url || '–'), h('div.small.muted', t('channels.key') + ' ' + (c.key || ''))] },
            { label: t('admin.models'), get: (c) => h('div.chip-list', (c.models || []).map((m) => h('code.chip', m))) },
            {
              label: t('channels.mapping'),
              get: (c) => {
                const pairs = Object.entries(c.mapping || {});
                return pairs.length ? h('div.small', pairs.map(([a, b]) => h('div', h('code', a), ' → ', h('code', b)))) : '–';
              },
            },
            { label: t('admin.priority') + ' / ' + t('admin.weight'), get: (c) => `${c.priority ?? '–'} / ${c.weight ?? '–'}`, cls: 'num' },
            {
              label: t('admin.health'),
              get: (c) => [
                !c.enabled
                  ? badge(t('admin.off'), 'neutral')
                  : c.cooling_until && c.cooling_until > now
                    ? [badge(t('admin.cooling', { time: fmtTime(c.cooling_until) }), 'warn'), c.cooling_reason ? h('div.small.muted', c.cooling_reason) : null]
                    : badge(t('admin.healthy'), 'ok'),
                testCell(c),
              ],
            },
            {
              label: t('common.actions'),
              cls: 'actions',
              get: (c) => [
                h('button.btn.btn-small.btn-ghost.channel-test-btn', { type: 'button', dataset: { id: c.id }, onclick: (e) => test(c, e.currentTarget) }, t('channels.test')),
                h('button.btn.btn-small.btn-ghost.channel-edit-btn', { type: 'button', dataset: { id: c.id }, onclick: () => editDialog(c) }, t('channels.edit_btn')),
                h(
                  'button.btn.btn-small.btn-ghost.channel-toggle-btn',
                  { type: 'button', dataset: { id: c.id }, onclick: (e) => setEnabled(c, !c.enabled, e.currentTarget) },
                  c.enabled ? t('channels.disable') : t('channels.enable'),
                ),
                h('button.btn.btn-small.btn-danger-ghost.channel-delete-btn', { type: 'button', dataset: { id: c.id }, onclick: (e) => remove(c, e.currentTarget) }, t('common.delete')),
              ],
            },
          ],
          channels,
          { id: 'channels-table' },
        ),
      );
    }
    async function load() {
      try {
        const r = await get('/api/admin/channels');
        if (!ctx.alive) return;
        channels = r.data || [];
        render();
      } catch (err) {
        showError(slot, err);
      }
    }
    const path = (c) => '/api/admin/channels/' + encodeURIComponent(c.id);
    async function test(c, btn) {
      await busy(btn, async () => {
        try {
          results[c.id] = await post(path(c) + '/test');
          if (ctx.alive) render();
        } catch (err) {
          toastError(err);
        }
      });
    }
    async function setEnabled(c, enabled, btn) {
      await busy(btn, async () => {
        try {
          await api('PATCH', path(c), { enabled });
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }
    async function remove(c, btn) {
      if (!(await confirmDialog(t('common.delete'), t('channels.confirm_delete', { name: c.name }), t('common.delete'), 'danger'))) return;
      await busy(btn, async () => {
        try {
          await api('DELETE', path(c));
          toast(t('channels.deleted'), 'ok');
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }
    function editDialog(c) {
      const vendor = h(
        'select#channel-vendor',
        CHANNEL_VENDORS.map(([v, label]) => h('option', { value: v, selected: c ? c.vendor === v : v === 'openai' }, label)),
      );
      const baseHint = h('span');
      const name = h('input#channel-name', { type: 'text', maxlength: 100, value: c ? c.name : '' });
      const base = h('input#channel-base-url', { type: 'url', value: c ? c.base_url : '' });
      const key = h('input#channel-key', { type: 'password', autocomplete: 'off', placeholder: c ? t('channels.key_keep') : '' });
      const specs = c ? (c.models || []).map((m) => (c.mapping && c.mapping[m] ? m + '=' + c.mapping[m] : m)) : [];
      const models = h('textarea#channel-models', { rows: 3 }, specs.join('\n'));
      const priority = h('input#channel-priority', { type: 'number', step: 1, value: c ? c.priority : 0 });
      const weight = h('input#channel-weight', { type: 'number', min: 1, step: 1, value: c ? c.weight : 1 });
      const conc = h('input#channel-max-concurrency', { type: 'number', min: 1, step: 1, value: c && c.max_concurrency != null ? c.max_concurrency : '' });
      const rpm = h('input#channel-rpm', { type: 'number', min: 1, step: 1, value: c && c.rpm != null ? c.rpm : '' });
      const msg = h('div.form-msg#channel-error');
      const showHint = () => {
        const v = CHANNEL_VENDORS.find(([id]) => id === vendor.value);
        baseHint.textContent = v ? t('channels.base_hint', { example: v[2] }) : '';
        base.placeholder = v ? v[2] : '';
      };
      vendor.addEventListener('change', showHint);
      showHint();
      const optionalInt = (el) => (el.value.trim() === '' ? null : Number(el.value));
      dialog(
        c ? t('channels.edit', { id: c.id }) : t('channels.add'),
        [
          h('div.grid-2', field(t('admin.vendor'), vendor), field(t('common.name'), name)),
          field(t('admin.base_url'), base, baseHint),
          field(t('channels.key'), key),
          field(t('admin.models'), models, t('channels.models_hint')),
          h('div.grid-2', field(t('admin.priority'), priority), field(t('admin.weight'), weight)),
          h('div.grid-2', field(t('channels.limits'), conc), field('RPM', rpm)),
          msg,
        ],
        [
          { label: t('common.cancel') },
          {
            label: t('common.save'),
            kind: 'primary',
            id: 'channel-save',
            onclick: async (close) => {
              clear(msg);
              const list = models.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
              const missing = [];
              if (!base.value.trim()) missing.push(t('admin.base_url'));
              if (!c && !key.value.trim()) missing.push(t('channels.key'));
              if (!list.length) missing.push(t('admin.models'));
              if (missing.length) return showError(msg, new Error(t('channels.need', { fields: missing.join('、') })));
              const body = {
                vendor: vendor.value,
                base_url: base.value.trim(),
                models: list,
                priority: Number(priority.value || 0),
                weight: Number(weight.value || 1),
              };
              if (name.value.trim()) body.name = name.value.trim();
              if (key.value.trim()) body.api_key = key.value.trim();
              if (optionalInt(conc) !== null) body.max_concurrency = optionalInt(conc);
              if (optionalInt(rpm) !== null) body.rpm = optionalInt(rpm);
              try {
                if (c) await api('PATCH', path(c), body);
                else await post('/api/admin/channels', body);
                close();
                toast(t('channels.saved'), 'ok');
                load();
              } catch (err) {
                showError(msg, err);
              }
            },
          },
        ],
        { id: 'channel-dialog', sticky: true },
      );
    }
    load();
  },
  { admin: true, title: 'admin.channels' },
);

page(
  '/admin/orders',
  async (main, params, ctx) => {
    const slot = h('div#admin-orders', spinner());
    main.append(pageHead(t('admin.orders')), card(null, slot));
    try {
      const r = await get('/api/admin/orders');
      if (!ctx.alive) return;
      clear(slot).appendChild(ordersTable(r.data || [], true));
    } catch (err) {
      showError(slot, err);
    }
  },
  { admin: true, title: 'admin.orders' },
);

page(
  '/admin/redeem',
  async (main, params, ctx) => {
    const credits = h('input#redeem-credits', { type: 'number', min: 1, step: 1, value: '1000' });
    const count = h('input#redeem-count', { type: 'number', min: 1, max: 1000, step: 1, value: '1' });
    const note = h('input#redeem-note', { type: 'text', maxlength: 100 });
    const msg = h('div.form-msg#redeem-create-error');
    const submit = h('button.btn.btn-primary#redeem-create', { type: 'submit' }, t('admin.redeem_create'));
    const form = h(
      'form#redeem-create-form',
      { novalidate: true },
      h('div.grid-3', field(t('admin.redeem_credits'), credits), field(t('admin.redeem_count'), count), field(t('admin.redeem_note'), note)),
      msg,
      h('div.form-actions', submit),
    );
    const slot = h('div#redeem-codes', spinner());
    main.append(pageHead(t('admin.redeem')), card(t('admin.redeem_create'), form), card(null, slot));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clear(msg);
      const c = Number(credits.value);
      const n = Number(count.value);
      if (!Number.isInteger(c) || c <= 0) return showError(msg, new Error(t('admin.bad_credits')));
      if (!Number.isInteger(n) || n < 1 || n > 1000) return showError(msg, new Error(t('admin.bad_count')));
      busy(submit, async () => {
        try {
          const r = await post('/api/admin/redeem-codes', { credits: c, count: n, note: note.value.trim() });
          const text = (r.codes || []).join('\n');
          const pre = h('pre.code#new-codes', text);
          dialog(
            t('admin.redeem_new'),
            [h('p.muted.small', t('admin.redeem_batch') + ': ' + r.batch + ' · ' + fmtNum(r.credits ?? c) + ' ' + t('unit.credits')), pre],
            [
              { label: t('admin.redeem_copy_all'), kind: 'primary', id: 'copy-codes', onclick: () => copyText(text, pre) },
              { label: t('common.close') },
            ],
            { id: 'codes-dialog', sticky: true },
          );
          load();
        } catch (err) {
          showError(msg, err);
        }
      });
    });
    async function load() {
      try {
        const r = await get('/api/admin/redeem-codes');
        if (!ctx.alive) return;
        clear(slot).appendChild(
          table(
            [
              { label: 'ID', get: (c) => c.id },
              { label: t('admin.redeem_batch'), get: (c) => h('code.small', c.batch) },
              { label: t('finance.credits'), get: (c) => fmtNum(c.credits), cls: 'num' },
              { label: t('admin.redeem_note'), get: (c) => c.note || '–' },
              { label: t('keys.created'), get: (c) => fmtTime(c.created_at) },
              { label: t('admin.redeemed_by'), get: (c) => (c.redeemed_by ? c.redeemed_by : badge(t('admin.unused'), 'ok')) },
              { label: t('admin.redeemed_at'), get: (c) => (c.redeemed_at ? fmtTime(c.redeemed_at) : '–') },
            ],
            r.data || [],
            { id: 'redeem-table' },
          ),
        );
      } catch (err) {
        showError(slot, err);
      }
    }
    load();
  },
  { admin: true, title: 'admin.redeem' },
);
