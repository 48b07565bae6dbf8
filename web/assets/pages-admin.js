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

page(
  '/admin/channels',
  async (main, params, ctx) => {
    const slot = h('div#admin-channels', spinner());
    main.append(pageHead(t('admin.channels')), card(null, slot));
    try {
      const r = await get('/api/admin/channels');
      if (!ctx.alive) return;
      const now = Date.now() / 1000;
      clear(slot).appendChild(
        table(
          [
            { label: 'ID', get: (c) => c.id },
            { label: t('common.name'), get: (c) => h('strong', c.name) },
            { label: t('admin.vendor'), get: (c) => c.vendor },
            { label: t('admin.base_url'), get: (c) => h('code.small.break', c.base_url || '–') },
            { label: t('admin.models'), get: (c) => h('div.chip-list', (c.models || []).map((m) => h('code.chip', m))) },
            { label: t('admin.priority') + ' / ' + t('admin.weight'), get: (c) => `${c.priority ?? '–'} / ${c.weight ?? '–'}`, cls: 'num' },
            {
              label: t('admin.health'),
              get: (c) =>
                !c.enabled
                  ? badge(t('admin.off'), 'neutral')
                  : c.cooling_until && c.cooling_until > now
                    ? [badge(t('admin.cooling', { time: fmtTime(c.cooling_until) }), 'warn'), c.cooling_reason ? h('div.small.muted', c.cooling_reason) : null]
                    : badge(t('admin.healthy'), 'ok'),
            },
          ],
          r.data || [],
          { id: 'channels-table' },
        ),
      );
    } catch (err) {
      showError(slot, err);
    }
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
