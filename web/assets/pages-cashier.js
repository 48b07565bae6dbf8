// The sandbox cashier (demo mode without Alipay): `pay_url` of a demo recharge order points here.
// It shows the order and pays it with "模拟支付成功", which calls
// POST /api/recharge/orders/{id}/sandbox-pay: the server applies it through the same code as a
// verified Alipay notification, so the credits arrive as a real recharge would.
'use strict';

Object.assign(window.LLMAGE_I18N.zh, {
  'cashier.title': '沙盒收银台',
  'cashier.notice': '演示模式：这是离线沙盒收银台，不会真实扣款。点击下方按钮模拟支付宝付款成功，积分按真实充值流程到账。',
  'cashier.pay': '模拟支付成功',
  'cashier.back': '返回充值',
  'cashier.no_order': '缺少订单号',
});
Object.assign(window.LLMAGE_I18N.en, {
  'cashier.title': 'Sandbox cashier',
  'cashier.notice': 'Demo mode: this is the offline sandbox cashier; no money is taken. The button below simulates a successful Alipay payment, and the credits arrive through the real recharge path.',
  'cashier.pay': 'Simulate a successful payment',
  'cashier.back': 'Back to recharge',
  'cashier.no_order': 'No order id',
});

page(
  '/cashier',
  async (main, params, ctx) => {
    const id = params.get('order') || '';
    const slot = h('div#cashier', spinner());
    main.append(pageHead(t('cashier.title')), card(null, slot));
    if (!id) return showError(slot, new Error(t('cashier.no_order')));
    const path = '/api/recharge/orders/' + encodeURIComponent(id);
    function render(o) {
      const body = h(
        'div.order#cashier-order',
        { dataset: { status: o.status, order: o.order_id } },
        h('div.alert.alert-warn', t('cashier.notice')),
        h(
          'div.order-top',
          h('div', h('div.order-amount', '¥' + o.amount), h('div.muted', fmtNum(o.credits) + ' ' + t('unit.credits'))),
          h('span#cashier-status', statusBadge(o.status)),
        ),
        h('div.muted.small.order-id', t('recharge.order_id') + ': ', h('code', o.order_id)),
      );
      if (o.status === 'PENDING') {
        const pay = h('button.btn.btn-primary.btn-block#sandbox-pay', { type: 'button' }, t('cashier.pay'));
        pay.addEventListener('click', () =>
          busy(pay, async () => {
            try {
              const paid = await post(path + '/sandbox-pay');
              await refreshBalance();
              if (ctx.alive) render(paid);
            } catch (err) {
              toastError(err);
            }
          }),
        );
        body.appendChild(pay);
      } else if (o.status === 'SUCCEEDED') {
        body.appendChild(
          h(
            'div.success#pay-success',
            h('div.success-icon', '✓'),
            h('h3', t('recharge.success')),
            h('p', t('recharge.success_detail', { credits: fmtNum(o.credits), balance: fmtNum(S.balance) })),
          ),
        );
      } else {
        body.appendChild(h('div.alert.alert-error', t('recharge.failed') + (o.failure ? '：' + o.failure : '')));
      }
      body.appendChild(h('a.btn.btn-ghost.mt#cashier-back', { href: '#/recharge' }, t('cashier.back')));
      clear(slot).appendChild(body);
    }
    try {
      const o = await get(path);
      if (ctx.alive) render(o);
    } catch (err) {
      showError(slot, err);
    }
  },
  { title: 'cashier.title' },
);
