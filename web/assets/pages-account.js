// Account pages: login, API keys, recharge, finance.
'use strict';

// ------------------------------------------------------------------ login

const PHONE_RE = /^1\d{10}$/;

page('/login', (main, params, ctx) => {
  const phone = h('input#phone', {
    type: 'tel',
    inputmode: 'numeric',
    autocomplete: 'tel',
    maxlength: 11,
    placeholder: t('login.phone_ph'),
    value: sessionStorage.getItem('llmage.phone') || '',
  });
  const code = h('input#code', {
    type: 'text',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    maxlength: 6,
    placeholder: t('login.code_ph'),
  });
  const msg = h('div.form-msg#login-error');
  const info = h('div.form-info#login-info');
  const send = h('button.btn.btn-ghost.send-btn#send-code', { type: 'button' }, t('login.send'));
  const submit = h('button.btn.btn-primary.btn-block#login-btn', { type: 'submit' }, t('login.submit'));

  let countdown = 0;
  const tick = () => {
    if (countdown > 0) {
      send.disabled = true;
      send.textContent = t('login.resend', { s: countdown });
      countdown -= 1;
    } else {
      send.disabled = false;
      send.textContent = t('login.send');
    }
  };
  ctx.interval(tick, 1000);

  const checkPhone = () => {
    const p = phone.value.trim();
    if (!PHONE_RE.test(p)) {
      phone.classList.add('invalid');
      phone.setAttribute('aria-invalid', 'true');
      showError(msg, new Error(t('login.bad_phone')));
      phone.focus();
      return null;
    }
    phone.classList.remove('invalid');
    phone.removeAttribute('aria-invalid');
    return p;
  };
  phone.addEventListener('input', () => {
    phone.value = phone.value.replace(/\D/g, '');
    if (phone.classList.contains('invalid') && PHONE_RE.test(phone.value)) {
      phone.classList.remove('invalid');
      clear(msg);
    }
  });
  code.addEventListener('input', () => {
    code.value = code.value.replace(/\D/g, '');
  });

  send.addEventListener('click', () => {
    clear(msg);
    clear(info);
    const p = checkPhone();
    if (!p) return;
    busy(send, async () => {
      try {
        const r = await post('/api/auth/sms-code', { phone: p });
        sessionStorage.setItem('llmage.phone', p);
        info.textContent = t('login.sent');
        countdown = Number(r && r.resend_after) || 60;
        code.focus();
      } catch (e) {
        if (e.status === 429) {
          const s = Number(e.headers && e.headers.get('Retry-After')) || 60;
          countdown = s;
          showError(msg, new Error(t('login.too_soon', { s })));
        } else showError(msg, e);
      }
    }).then(tick);
  });

  const form = h(
    'form.login-form#login-form',
    { novalidate: true },
    field(t('login.phone'), phone),
    field(t('login.code'), h('div.code-row', code, send)),
    msg,
    info,
    submit,
    h('p.login-hint', t('login.hint')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(msg);
    const p = checkPhone();
    if (!p) return;
    const c = code.value.trim();
    if (!/^\d{4,8}$/.test(c)) {
      showError(msg, new Error(t('login.bad_code')));
      code.focus();
      return;
    }
    busy(submit, async () => {
      try {
        const r = await post('/api/auth/login', { phone: p, code: c });
        S.user = r.user;
        S.csrf = r.csrf_token;
        S.balance = r.user.balance;
        S.models = null;
        route();
      } catch (e) {
        showError(msg, e);
      }
    });
  });

  main.appendChild(
    h(
      'div.login-wrap',
      h(
        'div.login-card',
        h('div.login-brand', h('span.logo-mark.big', '元'), h('div', h('h1', t('login.title')), h('p.muted', t('login.subtitle')))),
        form,
      ),
    ),
  );
  (phone.value ? code : phone).focus();
});

// ------------------------------------------------------------------ keys

page(
  '/keys',
  async (main, params, ctx) => {
    const list = h('div#keys-list', spinner());
    const msg = h('div.form-msg#key-error');
    const name = h('input#key-name', { type: 'text', maxlength: 64, placeholder: t('keys.name_ph') });
    const expires = h('input#key-expires', { type: 'date' });
    const models = h('input#key-models', { type: 'text', placeholder: t('keys.models_ph') });
    const ips = h('input#key-ips', { type: 'text', placeholder: t('keys.ips_ph') });
    const limit = h('input#key-limit', { type: 'number', min: 1, step: 1, inputmode: 'numeric', placeholder: t('keys.limit_ph') });
    const createBtn = h('button.btn.btn-primary#create-key', { type: 'submit' }, t('keys.create'));
    const form = h(
      'form.key-form#key-form',
      { novalidate: true },
      h('div.form-row', field(t('keys.name'), name), h('div.form-row-btn', createBtn)),
      h(
        'details.advanced',
        h('summary', t('keys.advanced')),
        h(
          'div.grid-3',
          field(t('keys.expires'), expires),
          field(t('keys.models'), models),
          field(t('keys.ips'), ips),
          field(t('keys.monthly_limit'), limit, t('keys.monthly_limit_help')),
        ),
      ),
      msg,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clear(msg);
      const n = name.value.trim();
      if (!n) {
        showError(msg, new Error(t('keys.need_name')));
        name.focus();
        return;
      }
      const body = { name: n };
      if (expires.value) {
        const d = new Date(expires.value + 'T23:59:59');
        body.expires_at = Math.floor(d.getTime() / 1000);
      }
      const m = splitList(models.value);
      if (m.length) body.models = m;
      const ip = splitList(ips.value);
      if (ip.length) body.allowed_ips = ip;
      if (limit.value.trim()) body.monthly_limit = Math.round(Number(limit.value));
      busy(createBtn, async () => {
        try {
          const k = await api('POST', '/api/keys', body);
          // Every field back to empty: the next key starts without this one's limits.
          form.reset();
          showNewKey(k);
          load();
        } catch (err) {
          showError(msg, err);
        }
      });
    });

    async function load() {
      try {
        const r = await get('/api/keys');
        if (!ctx.alive) return;
        clear(list).appendChild(
          table(
            [
              { label: t('keys.name'), get: (k) => h('strong', k.name) },
              { label: t('keys.key'), get: (k) => h('code.mono', k.masked) },
              {
                label: t('keys.spent_col'),
                get: (k) =>
                  h(
                    'span.key-spent',
                    fmtNum(k.month_spent || 0),
                    k.monthly_limit ? ' / ' + fmtNum(k.monthly_limit) : '',
                    ' ' + t('unit.credits'),
                  ),
              },
              { label: t('keys.last_used'), get: (k) => (k.last_used_at ? fmtTime(k.last_used_at) : h('span.muted', t('keys.never_used'))) },
              { label: t('keys.expires_col'), get: (k) => (k.expires_at ? fmtTime(k.expires_at) : t('keys.never')) },
              {
                label: t('keys.limits_col'),
                get: (k) =>
                  k.models || k.allowed_ips
                    ? h(
                        'div.small',
                        k.models ? h('div', t('keys.limit_models') + ': ' + k.models.join(', ')) : null,
                        k.allowed_ips ? h('div', t('keys.limit_ips') + ': ' + k.allowed_ips.join(', ')) : null,
                      )
                    : h('span.muted', t('keys.no_limits')),
              },
              {
                label: t('common.status'),
                get: (k) =>
                  k.revoked
                    ? badge(t('keys.revoked'), 'bad')
                    : k.expired
                      ? badge(t('keys.expired'), 'warn')
                      : k.disabled
                        ? badge(t('keys.disabled'), 'warn')
                        : badge(t('keys.active'), 'ok'),
              },
              {
                label: t('common.actions'),
                cls: 'actions',
                get: (k) =>
                  k.revoked
                    ? h(
                        'button.btn.btn-small.btn-ghost.remove-key',
                        { type: 'button', dataset: { key: k.id }, onclick: (e) => removeKey(k, e.currentTarget) },
                        t('keys.remove'),
                      )
                    : h(
                        'div.btn-row',
                        h('button.btn.btn-small.btn-ghost.edit-key', { type: 'button', dataset: { key: k.id }, onclick: () => editKey(k) }, t('keys.edit')),
                        h(
                          'button.btn.btn-small.btn-ghost.toggle-key',
                          {
                            type: 'button',
                            dataset: { key: k.id },
                            'aria-pressed': k.disabled ? 'true' : 'false',
                            onclick: (e) => patch(k, { disabled: !k.disabled }, e.currentTarget),
                          },
                          k.disabled ? t('keys.enable') : t('keys.disable'),
                        ),
                        h(
                          'button.btn.btn-small.btn-danger-ghost.revoke-key',
                          { type: 'button', dataset: { key: k.id }, onclick: (e) => revoke(k, e.currentTarget) },
                          t('common.delete'),
                        ),
                      ),
              },
            ],
            r.data || [],
            { id: 'keys-table', empty: t('keys.empty') },
          ),
        );
      } catch (err) {
        showError(list, err);
      }
    }

    async function patch(k, body, btn) {
      await busy(btn, async () => {
        try {
          await api('PATCH', '/api/keys/' + encodeURIComponent(k.id), body);
          toast(t('keys.saved'), 'ok');
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }

    function editKey(k) {
      const eName = h('input#edit-key-name', { type: 'text', maxlength: 64, value: k.name });
      const eModels = h('input#edit-key-models', { type: 'text', value: (k.models || []).join(', '), placeholder: t('keys.models_ph') });
      const eIps = h('input#edit-key-ips', { type: 'text', value: (k.allowed_ips || []).join(', '), placeholder: t('keys.ips_ph') });
      const eLimit = h('input#edit-key-limit', { type: 'number', min: 1, step: 1, value: k.monthly_limit || '', placeholder: t('keys.limit_ph') });
      const eMsg = h('div.form-msg');
      dialog(
        t('keys.edit_title'),
        [
          field(t('keys.name'), eName),
          field(t('keys.models'), eModels),
          field(t('keys.ips'), eIps),
          field(t('keys.monthly_limit'), eLimit, t('keys.monthly_limit_help')),
          eMsg,
        ],
        [
          { label: t('common.cancel') },
          {
            label: t('common.save'),
            kind: 'primary',
            id: 'edit-key-save',
            onclick: async (close) => {
              const m = splitList(eModels.value);
              const ip = splitList(eIps.value);
              const body = {
                name: eName.value.trim(),
                models: m.length ? m : null,
                allowed_ips: ip.length ? ip : null,
                monthly_limit: eLimit.value.trim() ? Math.round(Number(eLimit.value)) : null,
              };
              try {
                await api('PATCH', '/api/keys/' + encodeURIComponent(k.id), body);
                close();
                toast(t('keys.saved'), 'ok');
                load();
              } catch (err) {
                showError(eMsg, err);
              }
            },
          },
        ],
        { id: 'edit-key-dialog' },
      );
    }

    async function removeKey(k, btn) {
      await busy(btn, async () => {
        try {
          await post('/api/keys/' + encodeURIComponent(k.id) + '/remove');
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }

    async function revoke(k, btn) {
      const ok = await confirmDialog(t('keys.revoke_title'), t('keys.revoke_confirm', { name: k.name }), t('common.delete'));
      if (!ok) return;
      await busy(btn, async () => {
        try {
          await api('DELETE', '/api/keys/' + encodeURIComponent(k.id));
          toast(t('keys.revoked_ok'), 'ok');
          load();
        } catch (err) {
          toastError(err);
        }
      });
    }

    // The callback secret that signs the callbacks of tasks submitted from this console.
    const secretCode = h('code.mono#callback-secret', '…');
    const rotateBtn = h('button.btn.btn-small.btn-ghost#rotate-callback-secret', { type: 'button' }, t('keys.callback_rotate'));
    rotateBtn.addEventListener('click', async () => {
      const ok = await confirmDialog(t('keys.callback_rotate'), t('keys.callback_rotate_confirm'), t('keys.callback_rotate'));
      if (!ok) return;
      await busy(rotateBtn, async () => {
        try {
          const r = await api('POST', '/api/callback-secret', {});
          clear(secretCode).appendChild(document.createTextNode(r.callback_secret));
          toast(t('keys.callback_rotated'), 'ok');
        } catch (err) {
          toastError(err);
        }
      });
    });
    get('/api/callback-secret')
      .then((r) => clear(secretCode).appendChild(document.createTextNode(r.callback_secret)))
      .catch((err) => showError(secretCode, err));
    const secretCard = card(
      t('keys.callback_title'),
      h('p.muted.small', t('keys.callback_help')),
      h('div', secretCode, ' ', h('button.btn.btn-small.btn-ghost', { type: 'button', onclick: () => copyText(secretCode.textContent, secretCode) }, t('common.copy')), ' ', rotateBtn),
    );

    main.append(pageHead(t('keys.title')), card(null, form), card(null, h('p.muted.small', t('keys.usage')), list), secretCard);
    load();
  },
  { title: 'nav.keys' },
);

function splitList(v) {
  return v
    .split(/[,，\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function showNewKey(k) {
  const keyEl = h('code#new-key.mono.key-reveal', k.key);
  dialog(
    t('keys.new_title'),
    [
      h('p.alert.alert-warn', t('keys.new_warn')),
      h('div.key-box', keyEl),
      h('p.muted.small', k.name),
    ],
    [
      { label: t('common.copy'), kind: 'primary', id: 'copy-key', onclick: () => copyText(k.key, keyEl) },
      { label: t('common.close'), id: 'close-key' },
    ],
    { id: 'new-key-dialog', sticky: true },
  );
}

// ------------------------------------------------------------------ recharge

const AMOUNT_RE = /^\d{1,7}(\.\d{1,2})?$/;
// The server's rate and limits (GET /api/recharge/config); 100 credits per yuan until loaded.
let CREDITS_PER_YUAN = 100;
let RECHARGE_LIMITS = null;
async function loadRechargeConfig() {
  try {
    const c = await api('GET', '/api/recharge/config');
    CREDITS_PER_YUAN = c.credits_per_yuan || CREDITS_PER_YUAN;
    RECHARGE_LIMITS = c;
  } catch (_) {
    /* keep the default; the server still checks every order */
  }
}

page(
  '/recharge',
  async (main, params, ctx) => {
    await loadRechargeConfig();
    const head = pageHead(t('recharge.title'), h('span.balance-big', t('nav.balance') + ' ', h('b', { 'data-balance': '1' }, fmtNum(S.balance)), ' ' + t('unit.credits')));
    if (!RECHARGE_LIMITS || !(RECHARGE_LIMITS.alipay || RECHARGE_LIMITS.sandbox)) {
      // Alipay is off on this server: say so before anything can be clicked, and offer the
      // redemption code, which works without it.
      main.append(
        head,
        h(
          'div.grid-2.recharge-grid',
          card(
            t('recharge.off_title'),
            h('div.alert.alert-warn#recharge-off', { role: 'status' }, h('strong', t('recharge.off')), ' ', t('recharge.off_detail')),
          ),
          card(t('finance.redeem'), h('p.muted.small', t('recharge.redeem_hint')), redeemForm()),
        ),
        lowBalanceCard(),
      );
      return;
    }
    let amount = '10';
    const custom = h('input#amount-custom', { type: 'text', inputmode: 'decimal', placeholder: t('recharge.custom') });
    const hint = h('p.hint#credits-hint');
    const msg = h('div.form-msg#recharge-error');
    const orderSlot = h('div#order-slot');
    const presets = h('div.presets');
    const setAmount = (v, fromCustom) => {
      amount = v;
      for (const b of presets.children) b.classList.toggle('selected', !fromCustom && b.dataset.amount === v);
      const n = Number(v);
      hint.textContent = AMOUNT_RE.test(v) && n > 0 ? t('recharge.hint', { credits: fmtNum(Math.round(n * CREDITS_PER_YUAN)) }) : '';
    };
    for (const v of ['10', '50', '100', '500']) {
      presets.appendChild(
        h(
          'button.preset',
          {
            type: 'button',
            dataset: { amount: v },
            onclick: () => {
              custom.value = '';
              setAmount(v);
            },
          },
          h('b', '¥' + v),
          h('span', fmtNum(Number(v) * CREDITS_PER_YUAN) + ' ' + t('unit.credits')),
        ),
      );
    }
    custom.addEventListener('input', () => setAmount(custom.value.trim() || '', true));
    const submit = h('button.btn.btn-primary.btn-alipay#recharge-submit', { type: 'submit' }, t('recharge.submit'));
    const form = h(
      'form#recharge-form',
      { novalidate: true },
      h('div.field-label', t('recharge.amount')),
      presets,
      field(t('recharge.custom'), custom),
      hint,
      msg,
      submit,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clear(msg);
      const v = (custom.value.trim() || amount).replace(/^0+(?=\d)/, '');
      const n = Number(v);
      // The server enforces its configured minimum and maximum too (its message is shown).
      const outside =
        RECHARGE_LIMITS && (n < Number(RECHARGE_LIMITS.min) || n > Number(RECHARGE_LIMITS.max));
      if (!AMOUNT_RE.test(v) || !(n > 0) || outside) {
        const text = outside
          ? t('recharge.out_of_range', { min: RECHARGE_LIMITS.min, max: RECHARGE_LIMITS.max })
          : t('recharge.bad_amount');
        showError(msg, new Error(text));
        return;
      }
      busy(submit, async () => {
        try {
          const order = await post('/api/recharge/alipay', { amount: n.toFixed(2) });
          showOrder(order, true);
        } catch (err) {
          showError(msg, err);
        }
      });
    });
    setAmount('10');

    let polling = null;
    function showOrder(order, fresh) {
      if (polling) clearInterval(polling);
      polling = null;
      renderOrder(order, fresh);
      if (order.status === 'PENDING') {
        polling = ctx.interval(async () => {
          try {
            const o = await get('/api/recharge/orders/' + encodeURIComponent(order.order_id));
            if (!ctx.alive) return;
            if (o.status !== 'PENDING') {
              clearInterval(polling);
              polling = null;
              if (o.status === 'SUCCEEDED') await refreshBalance();
              renderOrder(Object.assign({}, order, o), false);
            }
          } catch (err) {
            /* keep polling through a network hiccup */
          }
        }, 2000);
      }
    }

    function renderOrder(o, fresh) {
      const body = h('div.order#order', { dataset: { status: o.status, order: o.order_id } });
      body.appendChild(
        h(
          'div.order-top',
          h('div', h('div.order-amount', '¥' + o.amount), h('div.muted', fmtNum(o.credits) + ' ' + t('unit.credits'))),
          h('span#order-status', statusBadge(o.status)),
        ),
      );
      body.appendChild(h('div.muted.small.order-id', t('recharge.order_id') + ': ', h('code', o.order_id)));
      if (o.status === 'PENDING') {
        // A phone opens Alipay's mobile cashier (WAP pay); a QR code to scan with that same
        // phone would be useless there. A desktop gets the page-pay link and the QR code.
        const phone = isPhone();
        const link = phone ? o.wap_pay_url || o.pay_url : o.pay_url;
        if (link) {
          body.appendChild(
            h('a.btn.btn-primary.btn-alipay.btn-block#pay-link', { href: link, dataset: { kind: phone ? 'wap' : 'page' } }, fresh ? t('recharge.pay') : t('recharge.continue')),
          );
        }
        body.appendChild(
          h(
            'button.btn.btn-ghost.btn-block#cancel-order',
            {
              type: 'button',
              onclick: (e) =>
                busy(e.currentTarget, async () => {
                  try {
                    const c = await post('/api/recharge/orders/' + encodeURIComponent(o.order_id) + '/cancel');
                    showOrder(Object.assign({}, o, c), false);
                  } catch (err) {
                    toastError(err);
                  }
                }),
            },
            t('recharge.cancel'),
          ),
        );
        if (o.qr_code && !phone) {
          const qrSlot = h('div.qr');
          const img = h('img#order-qr', {
            src: '/api/recharge/orders/' + encodeURIComponent(o.order_id) + '/qr.svg',
            alt: 'QR',
            width: 180,
            height: 180,
          });
          img.addEventListener('error', () => {
            clear(qrSlot).appendChild(h('code.qr-text', o.qr_code));
          });
          qrSlot.appendChild(img);
          body.appendChild(h('div.qr-box', qrSlot, h('p.muted.small', t('recharge.scan'))));
        }
        body.appendChild(h('div.waiting', h('span.spin'), t('recharge.waiting')));
        if (o.expires_at) body.appendChild(h('p.muted.small', t('recharge.expired_at', { time: fmtTime(o.expires_at) })));
      } else if (o.status === 'SUCCEEDED') {
        body.appendChild(
          h(
            'div.success#pay-success',
            h('div.success-icon', '✓'),
            h('h3', t('recharge.success')),
            h('p', t('recharge.success_detail', { credits: fmtNum(o.credits), balance: fmtNum(S.balance) })),
          ),
        );
      } else if (o.failure === 'cancelled') {
        body.appendChild(h('div.alert.alert-info#order-cancelled', t('recharge.cancelled')));
      } else if (o.status === 'FAILED' || o.status === 'CLOSED') {
        body.appendChild(h('div.alert.alert-error', t('recharge.failed') + (o.failure ? '：' + o.failure : '')));
      }
      clear(orderSlot).appendChild(card(fresh ? t('recharge.order') : t('recharge.latest'), body));
    }

    main.append(head, h('div.grid-2.recharge-grid', card(t('recharge.new_order'), form), orderSlot), lowBalanceCard());

    // Coming back from Alipay (return_url) or opening the page: the latest order.
    orderSlot.appendChild(spinner());
    try {
      const r = await get('/api/finance/orders');
      if (!ctx.alive) return;
      const orders = (r.data || []).slice().sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
      clear(orderSlot);
      if (orders.length) {
        if (orders[0].status === 'SUCCEEDED') await refreshBalance();
        showOrder(orders[0], false);
      }
    } catch (err) {
      showError(orderSlot, err);
    }
  },
  { title: 'nav.recharge' },
);

// A phone: a narrow screen or a mobile browser.
function isPhone() {
  return window.matchMedia('(max-width: 640px)').matches || /Mobi|Android|iPhone|iPad/i.test(navigator.userAgent);
}

// The redemption-code form (recharge page when Alipay is off, finance page).
function redeemForm() {
  const code = h('input#redeem-code', { type: 'text', placeholder: t('finance.redeem_ph'), autocomplete: 'off', 'aria-label': t('finance.redeem') });
  const redeemBtn = h('button.btn.btn-primary#redeem-btn', { type: 'submit' }, t('finance.redeem_btn'));
  const redeemMsg = h('div.form-msg#redeem-msg');
  const form = h('form.inline-form#redeem-form', { novalidate: true }, code, redeemBtn);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(redeemMsg);
    const c = code.value.trim();
    if (!c) {
      code.focus();
      return;
    }
    busy(redeemBtn, async () => {
      try {
        const r = await post('/api/redeem', { code: c });
        code.value = '';
        S.balance = r.balance;
        updateBalance();
        redeemMsg.appendChild(h('div.alert.alert-ok', t('finance.redeemed', { credits: fmtNum(r.credits), balance: fmtNum(r.balance) })));
      } catch (err) {
        showError(redeemMsg, err);
      }
    });
  });
  return h('div', form, redeemMsg);
}

// The low-balance notice threshold.
function lowBalanceCard() {
  const input = h('input#low-balance', { type: 'number', min: 1, step: 1, inputmode: 'numeric', value: S.lowBalance || '', placeholder: t('alert.low_ph') });
  const save = h('button.btn.btn-ghost#low-balance-save', { type: 'submit' }, t('common.save'));
  const sms = h('input#low-balance-sms', { type: 'checkbox', checked: !!S.lowBalanceSms });
  const msg = h('div.form-msg');
  const form = h('form.inline-form#low-balance-form', { novalidate: true }, field(t('alert.low_label'), input), save);
  const smsRow = h('label.field-check.low-balance-sms', { for: 'low-balance-sms' }, sms, t('alert.sms'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(msg);
    const v = input.value.trim();
    busy(save, async () => {
      try {
        const r = await api('PUT', '/api/me/low-balance', { threshold: v ? Math.round(Number(v)) : null, sms: sms.checked });
        S.lowBalance = r.threshold;
        S.lowBalanceSms = r.sms;
        sms.checked = !!r.sms;
        toast(t('alert.saved'), 'ok');
        updateBalance();
      } catch (err) {
        showError(msg, err);
      }
    });
  });
  return card(t('alert.low_title'), h('p.muted.small', t('alert.low_help')), form, smsRow, msg);
}

// ------------------------------------------------------------------ finance

const KINDS = ['grant', 'adjust', 'reserve', 'settle', 'release', 'redeem', 'recharge', 'chat', 'task', 'embedding'];
function kindLabel(k) {
  return KINDS.includes(k) ? t('kind.' + k) : k;
}

const PALETTE = ['#4f6bff', '#14b8a6', '#f59e0b', '#ef4444', '#8b5cf6', '#10b981', '#ec4899', '#0ea5e9', '#84cc16', '#f97316'];

// A stacked bar chart of credits per day, one colour per model (hand-written SVG).
function usageChart(rows, width) {
  const days = [...new Set(rows.map((r) => r.date))].sort().slice(-14);
  const models = [...new Set(rows.map((r) => r.model))];
  const color = (m) => PALETTE[models.indexOf(m) % PALETTE.length];
  const per = {};
  for (const r of rows) {
    if (!days.includes(r.date)) continue;
    per[r.date] = per[r.date] || {};
    per[r.date][r.model] = (per[r.date][r.model] || 0) + Number(r.credits || 0);
  }
  const totals = days.map((d) => Object.values(per[d] || {}).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const step = niceStep(max / 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const W = Math.round(Math.max(300, Math.min(1200, width || 640)));
  const H = W < 500 ? 200 : 260;
  const L = 56;
  const R = 12;
  const T = 14;
  const B = 34;
  const cw = (W - L - R) / Math.max(days.length, 1);
  const bw = Math.min(48, cw * 0.6);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', id: 'usage-chart', role: 'img', 'aria-label': t('finance.usage') });
  for (let v = 0; v <= top + 1e-9; v += step) {
    g.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    g.appendChild(svg('text', { x: L - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmtNum(v)));
  }
  days.forEach((d, i) => {
    const x = L + cw * i + (cw - bw) / 2;
    let acc = 0;
    for (const m of models) {
      const v = (per[d] || {})[m] || 0;
      if (!v) continue;
      const y1 = y(acc + v);
      const y0 = y(acc);
      const rect = svg('rect', { x, y: y1, width: bw, height: Math.max(1, y0 - y1), fill: color(m), rx: 2 });
      rect.appendChild(svg('title', {}, `${d} ${m}: ${fmtNum(v)} ${t('unit.credits')}`));
      g.appendChild(rect);
      acc += v;
    }
    if (days.length <= 14) g.appendChild(svg('text', { x: x + bw / 2, y: H - B + 16, 'text-anchor': 'middle', class: 'axis' }, d.slice(5)));
  });
  const legend = h(
    'div.legend',
    models.map((m) => h('span.legend-item', h('i', { style: { background: color(m) } }), m)),
  );
  return h('div.chart-wrap', g, legend);
}

function niceStep(x) {
  if (x <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  const f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

page(
  '/finance',
  async (main, params, ctx) => {
    await loadRechargeConfig();
    const code = h('input#redeem-code', { type: 'text', placeholder: t('finance.redeem_ph'), autocomplete: 'off' });
    const redeemBtn = h('button.btn.btn-primary#redeem-btn', { type: 'submit' }, t('finance.redeem_btn'));
    const redeemMsg = h('div.form-msg#redeem-msg');
    const redeemForm = h('form.inline-form#redeem-form', { novalidate: true }, code, redeemBtn);
    redeemForm.addEventListener('submit', (e) => {
      e.preventDefault();
      clear(redeemMsg);
      const c = code.value.trim();
      if (!c) {
        code.focus();
        return;
      }
      busy(redeemBtn, async () => {
        try {
          const r = await post('/api/redeem', { code: c });
          code.value = '';
          S.balance = r.balance;
          updateBalance();
          redeemMsg.appendChild(h('div.alert.alert-ok', t('finance.redeemed', { credits: fmtNum(r.credits), balance: fmtNum(r.balance) })));
          loadLedger();
        } catch (err) {
          showError(redeemMsg, err);
        }
      });
    });

    const usageSlot = h('div#usage', spinner());
    const ledgerSlot = h('div#ledger', spinner());
    const ordersSlot = h('div#orders', spinner());
    const csv = (path) => h('a.btn.btn-small.btn-ghost.csv-link', { href: path + '?format=csv', download: '' }, t('common.export_csv'));

    main.append(
      pageHead(t('finance.title')),
      h(
        'div.grid-2.finance-top',
        card(
          null,
          h('div.stat-label', t('finance.balance')),
          h('div.stat-big#finance-balance', h('b', { 'data-balance': '1' }, fmtNum(S.balance)), h('span', ' ' + t('unit.credits'))),
          h('div.muted.small', '≈ ¥' + (Number(S.balance || 0) / CREDITS_PER_YUAN).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })),
          h('a.btn.btn-primary.mt', { href: '#/recharge' }, t('finance.recharge_now')),
        ),
        card(t('finance.redeem'), redeemForm, redeemMsg),
      ),
      card(h('div.card-title-row', h('h2', t('finance.usage')), csv('/api/finance/usage')), usageSlot),
      card(h('div.card-title-row', h('h2', t('finance.ledger')), csv('/api/finance/ledger')), ledgerSlot),
      card(h('div.card-title-row', h('h2', t('finance.orders')), csv('/api/finance/orders')), ordersSlot),
    );

    async function loadUsage() {
      try {
        const r = await get('/api/finance/usage');
        if (!ctx.alive) return;
        const rows = r.data || [];
        clear(usageSlot);
        if (!rows.length) {
          usageSlot.appendChild(h('div.empty', t('finance.usage_empty')));
          return;
        }
        // The chart is drawn for its box's width (text stays readable on a phone) and redrawn
        // when that width changes.
        const chartBox = h('div.chart-box');
        let drawnWidth = 0;
        const draw = () => {
          const w = chartBox.clientWidth;
          if (!w || Math.abs(w - drawnWidth) < 24) return;
          drawnWidth = w;
          clear(chartBox).appendChild(usageChart(rows, w));
        };
        if (window.ResizeObserver) {
          const ro = new ResizeObserver(draw);
          ro.observe(chartBox);
          ctx.cleanups.push(() => ro.disconnect());
        }
        usageSlot.append(
          chartBox,
          table(
            [
              { label: t('finance.date'), get: (u) => u.date },
              { label: t('common.model'), get: (u) => h('code', u.model) },
              { label: t('finance.kind'), get: (u) => t('kind.' + u.kind) },
              { label: t('finance.calls'), get: (u) => fmtNum(u.calls), cls: 'num' },
              { label: t('finance.credits_used'), get: (u) => fmtNum(u.credits), cls: 'num' },
            ],
            rows.slice().sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0)),
            { id: 'usage-table' },
          ),
        );
        draw();
      } catch (err) {
        showError(usageSlot, err);
      }
    }
    async function loadLedger() {
      try {
        const r = await get('/api/finance/ledger');
        if (!ctx.alive) return;
        if (r.balance !== undefined) {
          S.balance = r.balance;
          updateBalance();
        }
        clear(ledgerSlot).appendChild(
          table(
            [
              { label: t('common.time'), get: (l) => fmtTime(l.created_at) },
              { label: t('finance.kind'), get: (l) => badge(kindLabel(l.kind), l.amount > 0 ? 'ok' : l.amount < 0 ? 'neutral' : 'neutral') },
              { label: t('finance.amount'), get: (l) => h('span', { class: l.amount > 0 ? 'pos' : l.amount < 0 ? 'neg' : '' }, (l.amount > 0 ? '+' : '') + fmtNum(l.amount)), cls: 'num' },
              { label: t('finance.balance_after'), get: (l) => fmtNum(l.balance_after), cls: 'num' },
              { label: t('finance.reason'), get: (l) => h('span.reason', (l.description || '–') + (l.status === 'pending' ? ' · ' + t('finance.pending') : '')) },
            ],
            r.data || [],
            { id: 'ledger-table' },
          ),
        );
      } catch (err) {
        showError(ledgerSlot, err);
      }
    }
    async function loadOrders() {
      try {
        const r = await get('/api/finance/orders');
        if (!ctx.alive) return;
        clear(ordersSlot).appendChild(ordersTable(r.data || [], false));
      } catch (err) {
        showError(ordersSlot, err);
      }
    }
    loadUsage();
    loadLedger();
    loadOrders();
  },
  { title: 'nav.finance' },
);

function ordersTable(rows, admin) {
  const cols = [
    { label: t('common.time'), get: (o) => fmtTime(o.created_at) },
    { label: t('recharge.order_id'), get: (o) => h('code.small', o.order_id) },
  ];
  if (admin) cols.push({ label: t('admin.user_id'), get: (o) => o.user_id });
  cols.push(
    { label: t('finance.money'), get: (o) => '¥' + o.amount, cls: 'num' },
    { label: t('finance.credits'), get: (o) => fmtNum(o.credits), cls: 'num' },
    { label: t('common.status'), get: (o) => statusBadge(o.status) },
  );
  if (admin) cols.push({ label: t('admin.trade_no'), get: (o) => (o.trade_no ? h('code.small', o.trade_no) : '–') });
  return table(cols, rows, { id: admin ? 'admin-orders-table' : 'orders-table' });
}

// ------------------------------------------------------------------ call log

page(
  '/calls',
  async (main, params, ctx) => {
    const kind = h('select#calls-kind', ['', 'chat', 'image', 'video'].map((k) => h('option', { value: k, selected: params.get('kind') === k }, k ? t('calls.kind_' + k) : t('common.all'))));
    const model = h('input#calls-model', { type: 'text', value: params.get('model') || '', placeholder: t('calls.model_ph') });
    const status = h(
      'select#calls-status',
      ['', 'SUCCEEDED', 'FAILED', 'STOPPED', 'RUNNING'].map((s) => h('option', { value: s, selected: params.get('status') === s }, s ? t('status.' + s) : t('common.all'))),
    );
    const keySel = h('select#calls-key', h('option', { value: '' }, t('common.all')));
    const from = h('input#calls-from', { type: 'date', value: params.get('from') || '' });
    const to = h('input#calls-to', { type: 'date', value: params.get('to') || '' });
    const apply = h('button.btn.btn-primary#calls-apply', { type: 'submit' }, t('calls.apply'));
    const csv = h('a.btn.btn-ghost#calls-csv', { href: '#', download: 'calls.csv' }, t('common.export_csv'));
    const slot = h('div#calls-list', spinner());
    const more = h('button.btn.btn-ghost#calls-more', { type: 'button', hidden: true }, t('common.load_more'));
    const form = h(
      'form.filter-grid#calls-filters',
      { novalidate: true },
      field(t('calls.kind'), kind),
      field(t('common.model'), model),
      field(t('common.status'), status),
      field(t('calls.key'), keySel),
      field(t('calls.from'), from),
      field(t('calls.to'), to),
      h('div.form-row-btn', apply, csv),
    );
    const query = () => {
      const q = new URLSearchParams();
      if (kind.value) q.set('kind', kind.value);
      if (model.value.trim()) q.set('model', model.value.trim());
      if (status.value) q.set('status', status.value);
      if (keySel.value) q.set('key_id', keySel.value);
      const day = (v, end) => Math.floor(new Date(v + (end ? 'T23:59:59' : 'T00:00:00')).getTime() / 1000) + (end ? 1 : 0);
      if (from.value) q.set('from', day(from.value, false));
      if (to.value) q.set('to', day(to.value, true));
      return q;
    };
    let rows = [];
    let cursor = null;
    const render = () => {
      clear(slot).appendChild(
        table(
          [
            { label: t('common.time'), get: (c) => fmtTime(c.created_at) },
            { label: t('calls.kind'), get: (c) => t('calls.kind_' + c.kind) },
            { label: t('common.model'), get: (c) => h('span.model-id', c.model) },
            { label: t('calls.key'), get: (c) => (c.key_id < 0 ? t('calls.console') : c.key_name || '#' + c.key_id) },
            {
              label: t('calls.tokens'),
              cls: 'num',
              get: (c) => (c.prompt_tokens === null || c.prompt_tokens === undefined ? '–' : fmtNum(c.prompt_tokens) + ' / ' + fmtNum(c.completion_tokens)),
            },
            { label: t('calls.credits'), cls: 'num', get: (c) => fmtNum(c.credits) },
            { label: t('calls.latency'), cls: 'num', get: (c) => (c.latency_ms === null || c.latency_ms === undefined ? '–' : fmtNum(c.latency_ms) + ' ms') },
            { label: t('common.status'), get: (c) => statusBadge(c.status) },
            {
              label: t('calls.request_id'),
              get: (c) =>
                h(
                  'button.link-btn.call-detail',
                  { type: 'button', dataset: { request: c.request_id || '', task: c.task_id || '' }, onclick: () => detail(c) },
                  h('code.mono.id-wrap', c.request_id || c.task_id || '–'),
                ),
            },
          ],
          rows,
          { id: 'calls-table', empty: t('calls.empty') },
        ),
      );
      more.hidden = !cursor;
    };
    const load = async (append) => {
      const q = query();
      csv.href = '/api/calls?' + q.toString() + (q.toString() ? '&' : '') + 'format=csv&limit=10000';
      if (append && cursor) q.set('cursor', cursor);
      q.set('limit', '50');
      try {
        const page = await get('/api/calls?' + q.toString(), { signal: ctx.abort().signal });
        if (!ctx.alive) return;
        rows = append ? rows.concat(page.data || []) : page.data || [];
        cursor = page.next_cursor || null;
        render();
      } catch (err) {
        if (err && err.name === 'AbortError') return;
        showError(slot, err);
      }
    };
    const detail = (c) => {
      const rowsOf = [
        ['calls.request_id', c.request_id],
        ['calls.task_id', c.task_id],
        ['common.time', fmtTime(c.created_at)],
        ['calls.kind', t('calls.kind_' + c.kind)],
        ['common.model', c.model],
        ['calls.key', c.key_id < 0 ? t('calls.console') : (c.key_name || '') + ' #' + c.key_id],
        ['calls.tokens', c.prompt_tokens === null ? null : fmtNum(c.prompt_tokens) + ' / ' + fmtNum(c.completion_tokens)],
        ['calls.credits', fmtNum(c.credits)],
        ['calls.latency', c.latency_ms === null ? null : fmtNum(c.latency_ms) + ' ms'],
        ['common.status', t('status.' + c.status)],
        ['calls.error', c.error],
      ].filter(([, v]) => v !== null && v !== undefined && v !== '');
      const buttons = [{ label: t('common.close') }];
      if (c.request_id) buttons.unshift({ label: t('calls.copy_id'), kind: 'primary', id: 'copy-request-id', onclick: () => copyText(c.request_id) });
      dialog(t('calls.detail'), h('dl.detail-list', rowsOf.map(([k, v]) => [h('dt', t(k)), h('dd', h('span.id-wrap', v))])), buttons, { id: 'call-detail' });
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      load(false);
    });
    more.addEventListener('click', () => busy(more, () => load(true)));
    main.append(pageHead(t('calls.title')), card(null, form), card(null, slot, h('div.center', more)));
    get('/api/keys')
      .then((r) => {
        for (const k of r.data || []) keySel.appendChild(h('option', { value: k.id, selected: params.get('key_id') === String(k.id) }, k.name));
        keySel.appendChild(h('option', { value: String(-S.user.id) }, t('calls.console')));
      })
      .catch(() => {});
    await load(false);
  },
  { title: 'nav.calls' },
);
