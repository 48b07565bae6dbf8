// Model pages: the model square and a model's detail, the playground (chat streaming and the
// task form generated from a model's parameter table), the task gallery and the API docs.
'use strict';

const CATS = ['t2t', 't2i', 't2v', 'i2v', 'ref2v'];
const FORM_SKIP = ['model', 'catelogid', 'stream'];

function apiBase() {
  return location.origin + '/llmage/v1';
}

function priceLines(price) {
  if (!price) return [];
  const out = [];
  if (price.unit === 'tokens') {
    out.push([t('price.input'), t('price.per_million', { n: fmtNum(price.input_per_million) })]);
    out.push([t('price.output'), t('price.per_million', { n: fmtNum(price.output_per_million) })]);
  } else if (price.unit === 'image') {
    out.push(['', t('price.per_image', { n: fmtNum(price.per_image) })]);
  } else if (price.unit === 'video_second') {
    const per = price.per_second || {};
    const keys = Object.keys(per).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    for (const k of keys) out.push([k, t('price.per_second', { n: fmtNum(per[k]) })]);
    if (price.off_peak_percent) out.push(['', t('price.off_peak', { n: price.off_peak_percent })]);
  } else {
    for (const [k, v] of Object.entries(price)) if (k !== 'unit') out.push([k, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  }
  return out;
}

// Whether a price is zero everywhere (a free model says 免费, not "0 积分").
function isFree(price) {
  if (!price) return false;
  if (price.unit === 'tokens') return !price.input_per_million && !price.output_per_million;
  if (price.unit === 'image') return !price.per_image;
  if (price.unit === 'video_second') return Object.values(price.per_second || {}).every((v) => !v);
  return false;
}

// The parameter's label in the console's language (from the catalog), else its name.
function paramLabel(p) {
  return (S.lang === 'en' ? p.label_en : p.label_zh) || p.name;
}

// A catalog text in the console's language: the English text when it is English and the catalog
// has one, else the Chinese.
function inLang(zh, en) {
  return (S.lang === 'en' && en) || zh || '';
}

function priceShort(price) {
  const lines = priceLines(price);
  if (!lines.length) return '';
  if (isFree(price)) return t('price.free');
  if (price.unit === 'video_second') {
    // The real range by resolution, and yuan next to credits.
    const vals = Object.values(price.per_second || {});
    const min = Math.min(...vals);
    const max = Math.max(...vals);
    const range = min === max ? fmtNum(min) : fmtNum(min) + '–' + fmtNum(max);
    return t('price.per_second', { n: range });
  }
  return lines.map(([k, v]) => (k ? k + ' ' : '') + v).join(' · ');
}

function catBadges(m) {
  return h(
    'div.cats',
    (m.catelogid || []).map((c) => h('span.cat', { class: 'cat-' + c }, CATS.includes(c) ? t('cat.' + c) : c)),
  );
}

function taskPath(cat) {
  return cat === 't2i' ? '/image/generations' : '/video/generations';
}

function exampleValue(p) {
  if (p.default !== undefined && p.default !== '') return p.default;
  if (p.allowed && p.allowed.length) return p.allowed[0];
  if (p.name === 'prompt') return S.lang === 'en' ? 'A cat running on the grass at sunset' : '一只在夕阳下草地上奔跑的小猫';
  if (p.type === 'integer' || p.type === 'number') return p.min !== undefined ? p.min : 1;
  if (p.type === 'boolean') return false;
  return '';
}

function curlExample(m, cat) {
  const base = apiBase();
  const auth = '  -H "Authorization: Bearer $LLMAGE_API_KEY" \\\n';
  if (cat === 't2t') {
    const body = { model: m.id, catelogid: 't2t', prompt: S.lang === 'en' ? 'Hello' : '你好', sys_prompt: '', stream: false };
    return `curl -X POST ${base}/chat/completions \\\n${auth}  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(body)}'`;
  }
  const params = ((m.parameters || {})[cat] || []).filter((p) => !FORM_SKIP.includes(p.name));
  const hasFiles = params.some((p) => p.type === 'file' || p.type === 'files');
  const needed = params.filter((p) => p.required || p.default !== undefined);
  let cmd;
  if (hasFiles) {
    const lines = [`-F "model=${m.id}"`, `-F "catelogid=${cat}"`];
    for (const p of needed) {
      if (p.type === 'file' || p.type === 'files') {
        const ext = p.accept === 'video' ? 'mp4' : p.accept === 'audio' ? 'mp3' : 'jpg';
        lines.push(`-F "${p.name}=@./${p.name.replace(/_?files?\d*$/, '') || 'file'}${p.type === 'files' ? '1' : ''}.${ext}"`);
      } else lines.push(`-F "${p.name}=${exampleValue(p)}"`);
    }
    cmd = `curl -X POST ${base}${taskPath(cat)} \\\n${auth}  ` + lines.join(' \\\n  ');
  } else {
    const body = { model: m.id, catelogid: cat };
    for (const p of needed) body[p.name] = exampleValue(p);
    cmd = `curl -X POST ${base}${taskPath(cat)} \\\n${auth}  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(body)}'`;
  }
  return cmd + `\n\n# ${S.lang === 'en' ? 'then poll the task' : '然后查询任务结果'}\ncurl "${base}/tasks?taskid=<taskid>" \\\n  -H "Authorization: Bearer $LLMAGE_API_KEY"`;
}

function paramTable(rows) {
  return table(
    [
      { label: t('param.name'), get: (p) => [h('code', p.name), p.label_zh ? h('div.muted.small', paramLabel(p)) : null] },
      { label: t('param.type'), get: (p) => p.type + (p.accept ? ` (${p.accept})` : '') + (p.max_files ? ` ≤${p.max_files}` : '') },
      { label: t('param.required'), get: (p) => (p.required ? badge(t('common.yes'), 'warn') : t('common.no')) },
      {
        label: t('param.default') + ' / ' + t('param.allowed'),
        get: (p) => {
          const parts = [];
          if (p.default !== undefined && p.default !== '') parts.push(h('div', t('param.default') + ': ', h('code', String(p.default))));
          if (p.allowed) parts.push(h('div', t('param.allowed') + ': ', p.allowed.map((a) => h('code.chip', String(a)))));
          if (p.min !== undefined || p.max !== undefined) parts.push(h('div', t('param.range') + ': ', h('code', `${p.min ?? ''} – ${p.max ?? ''}`)));
          return parts.length ? parts : '–';
        },
      },
      { label: t('param.description'), get: (p) => [inLang(p.description, p.description_en), p.note ? h('div.muted.small', inLang(p.note, p.note_en)) : null] },
    ],
    rows,
  );
}

// ------------------------------------------------------------------ model square

const squareState = { cat: '', vendor: '', q: '' };

page(
  '/models',
  async (main, params, ctx) => {
    if (params.get('id')) {
      go('#/model?id=' + encodeURIComponent(params.get('id')));
      return;
    }
    if (params.get('cat') !== null) squareState.cat = params.get('cat');
    const grid = h('div.model-grid#model-grid', spinner());
    main.append(pageHead(t('models.title')));
    const filters = h('div.filters');
    main.append(filters, grid);
    let models;
    try {
      models = await loadModels();
    } catch (err) {
      showError(grid, err);
      return;
    }
    if (!ctx.alive) return;
    // The filter lists the vendor names the cards show (one vendor key may carry several).
    const vendorOf = (m) => m.vendor_label || m.vendor;
    const vendors = [...new Set(models.map(vendorOf))].map((v) => [v, v]);
    const chips = h(
      'div.chips#cat-chips',
      [['', t('common.all')], ...CATS.map((c) => [c, t('cat.' + c)])].map(([c, label]) =>
        h(
          'button.chip-btn',
          {
            type: 'button',
            dataset: { cat: c },
            class: squareState.cat === c ? 'selected' : '',
            onclick: () => {
              squareState.cat = c;
              for (const b of chips.children) b.classList.toggle('selected', b.dataset.cat === c);
              render();
            },
          },
          label,
        ),
      ),
    );
    const vendorSel = h(
      'select#vendor-filter',
      { 'aria-label': t('models.vendor'), onchange: () => ((squareState.vendor = vendorSel.value), render()) },
      h('option', { value: '' }, t('models.all_vendors')),
      vendors.map(([v, label]) => h('option', { value: v, selected: squareState.vendor === v }, label)),
    );
    const search = h('input#model-search', {
      type: 'search',
      placeholder: t('models.search'),
      value: squareState.q,
      oninput: () => ((squareState.q = search.value), render()),
    });
    filters.append(chips, h('div.filter-right', vendorSel, search));

    function render() {
      const q = squareState.q.trim().toLowerCase();
      const shown = models.filter(
        (m) =>
          (!squareState.cat || (m.catelogid || []).includes(squareState.cat)) &&
          (!squareState.vendor || vendorOf(m) === squareState.vendor) &&
          (!q || m.id.toLowerCase().includes(q) || inLang(m.description, m.description_en).toLowerCase().includes(q) || (m.vendor_label || '').toLowerCase().includes(q)),
      );
      clear(grid);
      if (!shown.length) {
        grid.appendChild(h('div.empty', t('models.empty')));
        return;
      }
      for (const m of shown) {
        const cat = squareState.cat && m.catelogid.includes(squareState.cat) ? squareState.cat : m.catelogid[0];
        grid.appendChild(
          h(
            'article.model-card',
            { dataset: { model: m.id } },
            h(
              'div.model-card-head',
              h('span.vendor-avatar', { style: { background: PALETTE[hashStr(m.vendor) % PALETTE.length] } }, (m.vendor_label || m.vendor || '?').slice(0, 1)),
              h('div.model-card-title', h('a.model-name', { href: '#/model?id=' + encodeURIComponent(m.id) }, m.id), h('div.muted.small', m.vendor_label || m.vendor)),
              m.available ? null : badge(t('models.unavailable'), 'bad'),
            ),
            catBadges(m),
            h('p.model-desc', inLang(m.description, m.description_en)),
            h('div.model-card-foot', h('span.price', priceShort(m.price)), h('span.card-actions',
              h('a.btn.btn-small.btn-ghost', { href: '#/model?id=' + encodeURIComponent(m.id) }, t('models.detail')),
              h('a.btn.btn-small.btn-primary.try-btn', { href: `#/playground?model=${encodeURIComponent(m.id)}&cat=${cat}` }, t('models.try')),
            )),
          ),
        );
      }
    }
    render();
  },
  { title: 'nav.models' },
);

function hashStr(s) {
  let x = 0;
  for (const ch of String(s)) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return x;
}

page(
  '/model',
  async (main, params, ctx) => {
    const id = params.get('id') || '';
    main.appendChild(spinner());
    const models = await loadModels();
    if (!ctx.alive) return;
    clear(main);
    const m = models.find((x) => x.id === id);
    main.appendChild(h('a.back-link', { href: '#/models' }, '← ' + t('models.back')));
    if (!m) {
      main.appendChild(h('div.alert.alert-error', t('models.not_found', { id })));
      return;
    }
    main.appendChild(
      h(
        'div.model-hero',
        h('div', h('h1.mono', m.id), h('div.muted', m.vendor_label || m.vendor), catBadges(m), h('p', inLang(m.description, m.description_en))),
        h(
          'div.page-actions',
          m.available ? badge(t('models.available'), 'ok') : badge(t('models.unavailable'), 'bad'),
          h('a.btn.btn-primary#try-it', { href: `#/playground?model=${encodeURIComponent(m.id)}&cat=${m.catelogid[0]}` }, t('models.try')),
        ),
      ),
    );
    main.appendChild(
      card(
        t('models.price'),
        h(
          'div.price-list#price',
          priceLines(m.price).map(([k, v]) => h('div.price-row', k ? h('span.price-k', k) : null, h('b', v))),
        ),
      ),
    );
    for (const cat of m.catelogid) {
      const rows = (m.parameters || {})[cat] || [];
      main.appendChild(
        card(
          h(
            'div.card-title-row',
            h('h2', t('cat.' + cat) + ' · ' + t('models.params')),
            h('a.btn.btn-small.btn-ghost', { href: `#/playground?model=${encodeURIComponent(m.id)}&cat=${cat}` }, t('models.try')),
          ),
          paramTable(rows),
          h('h3.sub', t('models.example')),
          codeBlock(curlExample(m, cat), { id: 'curl-' + cat }),
        ),
      );
    }
  },
  { title: 'nav.models' },
);

// ------------------------------------------------------------------ playground

page(
  '/playground',
  async (main, params, ctx) => {
    main.append(pageHead(t('pg.title')));
    const body = h('div#pg', spinner());
    main.appendChild(body);
    const models = await loadModels();
    if (!ctx.alive) return;
    clear(body);
    let model = models.find((m) => m.id === params.get('model')) || models[0];
    let cat = params.get('cat');
    if (!model) {
      body.appendChild(h('div.empty', t('models.empty')));
      return;
    }
    if (!model.catelogid.includes(cat)) cat = model.catelogid[0];

    const modelSel = h(
      'select#pg-model',
      { 'aria-label': t('pg.model') },
      CATS.map((c) =>
        h(
          'optgroup',
          { label: t('cat.' + c) },
          models.filter((m) => m.catelogid[0] === c).map((m) => h('option', { value: m.id, selected: m.id === model.id }, m.id + (m.available ? '' : ' (' + t('models.unavailable') + ')'))),
        ),
      ),
    );
    const catSel = h('select#pg-cat', { 'aria-label': t('pg.category') });
    const fillCats = () => {
      clear(catSel);
      for (const c of model.catelogid) catSel.appendChild(h('option', { value: c, selected: c === cat }, t('cat.' + c)));
      catSel.disabled = model.catelogid.length < 2;
    };
    fillCats();
    const work = h('div.pg-work');
    const head = h(
      'div.card.pg-head',
      h('div.pg-selects', field(t('pg.model'), modelSel), field(t('pg.category'), catSel)),
      h('div.pg-meta#pg-meta'),
    );
    body.append(head, work);

    let session = null;
    const show = () => {
      history.replaceState(null, '', `#/playground?model=${encodeURIComponent(model.id)}&cat=${cat}`);
      const meta = $('#pg-meta');
      clear(meta).append(
        h('span.price', priceShort(model.price)),
        ' ',
        h('a.small', { href: '#/model?id=' + encodeURIComponent(model.id) }, t('models.detail') + ' →'),
      );
      if (session) session.end();
      session = newContext();
      ctx.cleanups.push(() => session.end());
      clear(work);
      if (cat === 't2t') chatPanel(work, model, session);
      else taskPanel(work, model, cat, session);
    };
    modelSel.addEventListener('change', () => {
      model = models.find((m) => m.id === modelSel.value);
      if (!model.catelogid.includes(cat)) cat = model.catelogid[0];
      fillCats();
      show();
    });
    catSel.addEventListener('change', () => {
      cat = catSel.value;
      show();
    });
    show();
  },
  { title: 'nav.playground' },
);

// Markdown for chat answers, built as DOM nodes (text always through text nodes, never
// innerHTML), so an answer can never inject HTML. A small renderer of our own rather than a
// library: the subset chat models write (fenced code, headings, lists, quotes, paragraphs,
// **bold**, *italic*, `code`, http(s) links) is short to build safely, and the CSP forbids
// the inline HTML that Markdown libraries produce.
function markdown(text) {
  const root = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) root.appendChild(h('p', inlineMd(para.join('\n'))));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```+|~~~+)\s*([\w+#.-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++; // the closing fence (or the end of a stream still in progress)
      const code = body.join('\n');
      const pre = h('pre.code.md-code', h('code', { class: fence[2] ? 'lang-' + fence[2] : null }, code));
      root.appendChild(
        h(
          'div.codebox',
          fence[2] ? h('span.md-lang', fence[2]) : null,
          pre,
          h('button.btn.btn-small.btn-ghost.copy-btn', { type: 'button', onclick: () => copyText(code, pre) }, t('common.copy')),
        ),
      );
      continue;
    }
    const head = /^(#{1,6})\s+(.*)$/.exec(line);
    if (head) {
      flush();
      root.appendChild(h('h' + Math.min(6, head[1].length + 2), { class: 'md-h' }, inlineMd(head[2])));
      i++;
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const list = h(ordered ? 'ol' : 'ul', { class: 'md-list' });
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
        if (!m || /\d/.test(m[1]) !== ordered) break;
        list.appendChild(h('li', inlineMd(m[2])));
        i++;
      }
      root.appendChild(list);
      continue;
    }
    if (/^\s*>\s?/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>\s?/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ''));
      root.appendChild(h('blockquote', inlineMd(quoted.join('\n'))));
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line);
    i++;
  }
  flush();
  return root;
}

// Inline Markdown: `code`, **bold**, *italic*, [text](http…) and bare line breaks.
function inlineMd(text) {
  const out = [];
  const re = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|\n/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h('code.md-inline', m[1]));
    else if (m[2] !== undefined) out.push(h('strong', m[2]));
    else if (m[3] !== undefined) out.push(h('em', m[3]));
    else if (m[4] !== undefined) out.push(h('a', { href: m[5], target: '_blank', rel: 'noopener noreferrer' }, m[4]));
    else out.push(h('br'));
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// The playground's chat: the whole conversation is sent as `messages` each turn, with the
// system prompt and the sampling parameters; answers are rendered as Markdown while they stream.
function chatPanel(root, model, ctx) {
  const convo = []; // [{role, content}] of finished turns
  const sys = h('textarea#chat-sys', { rows: 2, placeholder: t('pg.sys_prompt_ph') });
  const prompt = h('textarea#chat-prompt', { rows: 3, placeholder: t('pg.prompt_ph') });
  const num = (id, attrs) => h('input#' + id, Object.assign({ type: 'number', inputmode: 'decimal' }, attrs));
  const temperature = num('chat-temperature', { min: 0, max: 2, step: 0.1, placeholder: t('pg.default') });
  const topP = num('chat-top-p', { min: 0, max: 1, step: 0.05, placeholder: t('pg.default') });
  const maxTokens = num('chat-max-tokens', { min: 1, step: 1, placeholder: t('pg.default') });
  const send = h('button.btn.btn-primary#chat-send', { type: 'submit' }, t('pg.send'));
  const stop = h('button.btn.btn-ghost#chat-stop', { type: 'button', hidden: true }, t('pg.stop'));
  const reset = h('button.btn.btn-ghost#chat-new', { type: 'button' }, t('pg.new_chat'));
  const copyCurl = h('button.btn.btn-small.btn-ghost#chat-copy-curl', { type: 'button' }, t('pg.copy_curl'));
  const copyPy = h('button.btn.btn-small.btn-ghost#chat-copy-python', { type: 'button' }, t('pg.copy_python'));
  const transcript = h('div.transcript#chat-output', { 'aria-live': 'polite' });
  const msg = h('div.form-msg#chat-error');
  const advanced = h(
    'div.chat-params#chat-params',
    field(t('pg.temperature'), temperature, t('pg.temperature_help')),
    field(t('pg.top_p'), topP, t('pg.top_p_help')),
    field(t('pg.max_tokens'), maxTokens, t('pg.max_tokens_help')),
  );
  let controller = null;
  const form = h(
    'form.chat-form#chat-form',
    { novalidate: true },
    field(t('pg.sys_prompt'), sys),
    advanced,
    field(t('pg.prompt'), prompt),
    msg,
    h('div.form-actions', reset, stop, send),
  );
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  stop.addEventListener('click', () => controller && controller.abort());
  reset.addEventListener('click', () => {
    if (controller) controller.abort();
    convo.length = 0;
    clear(transcript);
    prompt.focus();
  });

  // The request body for the conversation so far plus `next` (a user message, if any).
  const body = (next, stream) => {
    const messages = [];
    if (sys.value.trim()) messages.push({ role: 'system', content: sys.value.trim() });
    messages.push(...convo);
    if (next) messages.push({ role: 'user', content: next });
    const b = { model: model.id, messages, stream };
    const n = (el) => (el.value.trim() === '' ? null : Number(el.value));
    if (n(temperature) !== null) b.temperature = n(temperature);
    if (n(topP) !== null) b.top_p = n(topP);
    if (n(maxTokens) !== null) b.max_tokens = Math.round(n(maxTokens));
    if (stream) b.stream_options = { include_usage: true };
    return b;
  };
  const exampleBody = () => body(prompt.value.trim() || null, false);
  copyCurl.addEventListener('click', () => {
    const json = JSON.stringify(exampleBody(), null, 2).replace(/'/g, "'\\''");
    copyText(
      `curl ${apiBase()}/chat/completions \\\n  -H "Content-Type: application/json" \\\n  -H "Authorization: Bearer $LLMAGE_API_KEY" \\\n  -d '${json}'`,
    );
  });
  copyPy.addEventListener('click', () => {
    const b = exampleBody();
    const extra = ['temperature', 'top_p', 'max_tokens'].filter((k) => b[k] !== undefined).map((k) => `,\n    ${k}=${b[k]}`).join('');
    copyText(
      `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${apiBase()}", api_key=os.environ["LLMAGE_API_KEY"])\nresp = client.chat.completions.create(\n    model=${JSON.stringify(b.model)},\n    messages=${JSON.stringify(b.messages, null, 4).replace(/\n/g, '\n    ')}${extra},\n)\nprint(resp.choices[0].message.content)\n`,
    );
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const text = prompt.value.trim();
    if (!text) {
      showError(msg, new Error(t('pg.need_required', { name: t('pg.prompt') })));
      prompt.focus();
      return;
    }
    for (const [el, lo, hi] of [[temperature, 0, 2], [topP, 0, 1], [maxTokens, 1, 1e9]]) {
      if (el.value.trim() !== '' && !(Number(el.value) >= lo && Number(el.value) <= hi)) {
        showError(msg, new Error(t('pg.out_of_range', { lo, hi })));
        el.focus();
        return;
      }
    }
    const payload = body(text, true);
    const userMsg = h('div.msg.msg-user', h('div.bubble', text));
    const reasoning = h('div.reasoning.chat-reasoning', { hidden: true });
    const content = h('div.answer.chat-answer.md');
    const usage = h('div.usage.chat-usage');
    const waiting = h('div.waiting', h('span.spin'), t('pg.waiting_reply'));
    const bot = h('div.msg.msg-assistant', h('div.bubble', waiting, reasoning, content), usage);
    transcript.append(userMsg, bot);
    bot.scrollIntoView({ block: 'nearest' });
    send.disabled = true;
    stop.hidden = false;
    controller = ctx.abort();
    let answer = '';
    let requestId = null;
    let reasoningText = '';
    const render = () => clear(content).appendChild(markdown(answer));
    try {
      const resp = await fetch('/llmage/v1/chat/completions', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-CSRF-Token': S.csrf || '' },
        body: JSON.stringify(payload),
        signal: controller.signal,
      }).catch((err) => {
        if (err && err.name === 'AbortError') throw err;
        throw new ApiError(0, t('err.network'));
      });
      requestId = resp.headers.get('X-Request-Id');
      if (!resp.ok) throw await errorFrom(resp);
      prompt.value = '';
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let got = false;
      const handle = (line) => {
        line = line.replace(/\r$/, '');
        if (!line.startsWith('data:')) return;
        const data = line.slice(5).trim();
        if (!data || data === '[DONE]') return;
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch (err) {
          return;
        }
        if (chunk.error) throw new ApiError(500, errorMessage(500, chunk));
        const choice = (chunk.choices || [])[0];
        const delta = (choice && choice.delta) || {};
        if (delta.reasoning_content) {
          reasoning.hidden = false;
          reasoningText += delta.reasoning_content;
          clear(reasoning).append(h('div.reasoning-label', t('pg.reasoning')), reasoningText);
          got = true;
        }
        if (delta.content) {
          answer += delta.content;
          render();
          got = true;
        }
        if (got) waiting.remove();
        if (chunk.usage) {
          const u = chunk.usage;
          usage.textContent =
            u.prompt_tokens !== undefined
              ? t('pg.usage', { credits: fmtNum(u.credits ?? 0), in: fmtNum(u.prompt_tokens), out: fmtNum(u.completion_tokens) })
              : t('pg.usage_credits', { credits: fmtNum(u.credits ?? 0) });
        }
      };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          handle(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        transcript.scrollTop = transcript.scrollHeight;
      }
      if (buf) handle(buf);
      waiting.remove();
      if (!got) content.textContent = t('pg.no_output');
      convo.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
      bot.classList.add('done');
      refreshBalance();
    } catch (err) {
      waiting.remove();
      if (err && err.name === 'AbortError') {
        bot.classList.add('done', 'stopped');
        // What was said stays part of the conversation.
        if (answer) convo.push({ role: 'user', content: text }, { role: 'assistant', content: answer });
        prompt.value = '';
        usage.textContent = t('pg.stopped');
        if (requestId && ctx.alive) stoppedCost(usage, requestId, ctx);
      } else {
        bot.querySelector('.bubble').appendChild(errorBox(err));
        bot.classList.add('failed');
      }
    } finally {
      send.disabled = false;
      stop.hidden = true;
    }
  });
  root.append(
    h(
      'div.grid-chat',
      card(null, form),
      card(h('div.card-head-row', h('h2', t('pg.output')), h('div.chat-copy', copyCurl, copyPy)), transcript),
    ),
  );
  prompt.focus();
}

// A stopped call is settled by the server after the client hangs up: look its row up in the
// call log by request id (a few tries) and show what it cost.
async function stoppedCost(slot, requestId, ctx) {
  for (let i = 0; i < 10 && ctx.alive; i++) {
    await new Promise((r) => setTimeout(r, 300 + i * 200));
    try {
      const page = await get('/api/calls?request_id=' + encodeURIComponent(requestId));
      const row = page && page.data && page.data[0];
      if (row) {
        slot.textContent = t('pg.stopped_cost', { credits: fmtNum(row.credits) });
        refreshBalance();
        return;
      }
    } catch (e) {
      return;
    }
  }
}

function uploadIcon() {
  return svg(
    'svg',
    { viewBox: '0 0 24 24', width: 14, height: 14, fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true' },
    svg('path', { d: 'M12 16V4M6 10l6-6 6 6M4 20h16' }),
  );
}

// A file parameter: our own button and file names (the browser's own control speaks the browser's
// language), with thumbnails of chosen images.
function filePicker(p, id) {
  const kind = p.accept || 'image';
  const input = h('input.file-input', { type: 'file', id, name: p.name, accept: kind + '/*', multiple: p.type === 'files' });
  input.dataset.type = p.type;
  const names = h('span.file-names', t('pg.no_file'));
  const previews = h('div.file-previews');
  input.addEventListener('change', () => {
    const files = [...input.files];
    names.textContent = files.length ? files.map((f) => f.name).join(', ') : t('pg.no_file');
    clear(previews);
    for (const f of files) {
      if (kind === 'image' && f.type.startsWith('image/')) {
        const url = URL.createObjectURL(f);
        previews.appendChild(h('img.file-thumb', { src: url, alt: f.name, onload: () => URL.revokeObjectURL(url) }));
      }
    }
  });
  const hint = [inLang(p.description, p.description_en), inLang(p.note, p.note_en)].filter(Boolean).join(' · ') + (p.type === 'files' && p.max_files ? ' · ' + t('pg.files_max', { n: p.max_files }) : '');
  return h(
    'div.field',
    h('span.field-label', paramLabel(p), p.required ? h('span.req', ' *') : null, paramLabel(p) !== p.name ? h('code.param-name', p.name) : null),
    h(
      'div.file-pick',
      h('label.btn.btn-ghost.btn-small.file-btn', { for: id }, uploadIcon(), t(p.type === 'files' ? 'pg.choose_files' : 'pg.choose_file')),
      input,
      names,
    ),
    previews,
    hint ? h('span.field-hint', hint) : null,
  );
}

// One form control for a parameter row.
function paramInput(p) {
  const id = 'p-' + p.name;
  let input;
  if (p.type === 'file' || p.type === 'files') {
    return filePicker(p, id);
  } else if (p.type === 'boolean') {
    input = h('input', { type: 'checkbox', id, name: p.name, checked: p.default === true || p.default === 'true' });
  } else if (p.allowed && p.allowed.length) {
    const opts = p.allowed.map(String);
    if (p.default !== undefined && !opts.includes(String(p.default))) opts.unshift(String(p.default));
    input = h('select', { id, name: p.name });
    if (!p.required && p.default === undefined) input.appendChild(h('option', { value: '' }, t('pg.unset')));
    for (const o of opts) input.appendChild(h('option', { value: o, selected: p.default !== undefined && String(p.default) === o }, o));
  } else if (p.type === 'integer' || p.type === 'number') {
    input = h('input', {
      type: 'number',
      id,
      name: p.name,
      min: p.min,
      max: p.max,
      step: p.type === 'integer' ? 1 : 'any',
      value: p.default !== undefined ? String(p.default) : '',
    });
  } else if (/prompt/.test(p.name)) {
    input = h('textarea', { id, name: p.name, rows: p.name === 'prompt' ? 3 : 2 });
    if (p.default) input.value = String(p.default);
  } else {
    input = h('input', { type: 'text', id, name: p.name, value: p.default !== undefined ? String(p.default) : '' });
  }
  input.dataset.type = p.type;
  const label = h('span', paramLabel(p), p.required ? h('span.req', ' *') : null, paramLabel(p) !== p.name ? h('code.param-name', p.name) : null);
  const hint = [inLang(p.description, p.description_en), inLang(p.note, p.note_en)].filter(Boolean).join(' · ') + (p.type === 'files' && p.max_files ? ' · ' + t('pg.files_max', { n: p.max_files }) : '');
  if (p.type === 'boolean') return h('label.field.field-check', input, h('span.field-label', label), hint ? h('span.field-hint', hint) : null);
  return h('label.field', h('span.field-label', label), input, hint ? h('span.field-hint', hint) : null);
}

function taskPanel(root, model, cat, ctx) {
  const rows = ((model.parameters || {})[cat] || []).filter((p) => !FORM_SKIP.includes(p.name));
  const msg = h('div.form-msg#pg-error');
  const submit = h('button.btn.btn-primary#pg-submit', { type: 'submit' }, t('pg.generate'));
  // The live quote: what 生成 would cost with the form as it is (POST /llmage/v1/quote, the
  // same pricing as the charge).
  const quote = h('span.quote#pg-quote', { 'aria-live': 'polite' });
  const form = h('form.task-form#pg-form', { novalidate: true }, rows.map(paramInput), msg, h('div.form-actions', quote, submit));
  let quoted = null;
  let quoteSeq = 0;
  const plainValues = () => {
    const values = { model: model.id, catelogid: cat };
    for (const p of rows) {
      const el = form.elements[p.name];
      if (!el || p.type === 'file' || p.type === 'files') continue;
      if (p.type === 'boolean') {
        if (el.checked || p.default !== undefined) values[p.name] = el.checked;
        continue;
      }
      const v = el.value.trim();
      if (v) values[p.name] = p.type === 'integer' ? parseInt(v, 10) : p.type === 'number' ? Number(v) : v;
    }
    if (!values.prompt) values.prompt = '-';
    return values;
  };
  const refreshQuote = async () => {
    const my = ++quoteSeq;
    quote.dataset.pending = '1';
    try {
      const q = await post('/llmage/v1/quote', plainValues(), { signal: ctx.abort().signal });
      if (my !== quoteSeq || !ctx.alive) return;
      delete quote.dataset.pending;
      quoted = q;
      quote.dataset.credits = String(q.credits);
      quote.textContent = q.credits ? t('pg.quote', { credits: fmtNum(q.credits), yuan: q.yuan }) : t('price.free');
    } catch (err) {
      if (my !== quoteSeq) return;
      delete quote.dataset.pending;
      quoted = null;
      delete quote.dataset.credits;
      quote.textContent = '';
    }
  };
  form.addEventListener('change', refreshQuote);
  refreshQuote();
  // "Use these parameters again" from the gallery: fill the form with a task's parameters.
  const reuse = sessionStorage.getItem('llmage.reuse');
  if (reuse) {
    sessionStorage.removeItem('llmage.reuse');
    try {
      const given = JSON.parse(reuse);
      for (const p of rows) {
        const el = form.elements[p.name];
        if (!el || given[p.name] === undefined || el.type === 'file') continue;
        if (el.type === 'checkbox') el.checked = given[p.name] === true || given[p.name] === 'true';
        else el.value = String(given[p.name]);
      }
    } catch (e) {
      /* a stale entry: the form keeps its defaults */
    }
  }
  const result = h('div.task-result#pg-result', h('div.empty', t('pg.output')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(msg);
    const values = {};
    const files = {};
    let anyFile = false;
    for (const p of rows) {
      const el = form.elements[p.name];
      if (!el) continue;
      if (p.type === 'file' || p.type === 'files') {
        const list = [...el.files];
        if (p.max_files && list.length > p.max_files) {
          showError(msg, new Error(p.name + ': ' + t('pg.files_max', { n: p.max_files })));
          return;
        }
        if (list.length) {
          files[p.name] = list;
          anyFile = true;
        } else if (p.required) {
          showError(msg, new Error(t('pg.need_required', { name: p.name })));
          el.focus();
          return;
        }
      } else if (p.type === 'boolean') {
        if (el.checked || p.default !== undefined) values[p.name] = el.checked;
      } else {
        const v = el.value.trim();
        if (!v) {
          if (p.required) {
            showError(msg, new Error(t('pg.need_required', { name: p.name })));
            el.focus();
            return;
          }
          continue;
        }
        values[p.name] = p.type === 'integer' ? parseInt(v, 10) : p.type === 'number' ? Number(v) : v;
      }
    }
    let payload;
    if (anyFile) {
      payload = new FormData();
      payload.append('model', model.id);
      payload.append('catelogid', cat);
      for (const [k, v] of Object.entries(values)) payload.append(k, String(v));
      for (const [k, list] of Object.entries(files)) for (const f of list) payload.append(k, f, f.name);
    } else {
      payload = Object.assign({ model: model.id, catelogid: cat }, values);
    }
    busy(submit, async () => {
      // Above the confirmation threshold (积分, kept in this browser) ask first.
      const limit = Number(localStorage.getItem('llmage.confirm_above') || 1000);
      if (quoted && quoted.credits > limit) {
        const ok = await confirmDialog(t('pg.confirm_title'), t('pg.confirm_cost', { credits: fmtNum(quoted.credits), yuan: quoted.yuan }), t('pg.generate'), 'primary');
        if (!ok) return;
      }
      try {
        const r = await post('/llmage/v1' + taskPath(cat), payload);
        refreshBalance();
        followTask(result, r.taskid, r.status, ctx);
      } catch (err) {
        showError(msg, err);
      }
    });
  });
  root.append(h('div.grid-2.pg-task', card(t('cat.' + cat), form), card(t('pg.output'), result)));
}

function followTask(slot, taskid, status, ctx) {
  const statusEl = h('div.task-status#pg-status', { dataset: { status } }, h('span.spin'), t('pg.task_status', { status: t('task.' + status) }));
  clear(slot).append(statusEl, h('div.muted.small', t('pg.taskid') + ': ', h('code#pg-taskid', taskid)));
  let stopped = false;
  const poll = async () => {
    if (stopped || !ctx.alive) return;
    try {
      let task = await get('/llmage/v1/tasks?taskid=' + encodeURIComponent(taskid));
      if (task && Array.isArray(task.data)) task = task.data[0];
      if (!ctx.alive || !task) return;
      statusEl.dataset.status = task.status;
      const done = task.status === 'SUCCEEDED' || task.status === 'FAILED';
      append(clear(statusEl), [done ? null : h('span.spin'), t('pg.task_status', { status: '' }), statusBadge(task.status, 'task')]);
      if (done) {
        stopped = true;
        refreshBalance();
        slot.appendChild(taskMedia(task, 'pg'));
        if (task.status === 'FAILED') slot.appendChild(h('div.alert.alert-error#pg-task-error', taskError(task)));
        else {
          if (task.usage && task.usage.credits !== undefined) slot.appendChild(h('p.muted.small', t('pg.usage_credits', { credits: fmtNum(task.usage.credits) })));
          slot.appendChild(h('a.small', { href: '#/tasks' }, t('pg.open_gallery') + ' →'));
        }
        return;
      }
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      statusEl.title = err.message;
    }
    ctx.timeout(poll, 1500);
  };
  ctx.timeout(poll, 1000);
}

function taskError(task) {
  const e = task.error;
  if (!e) return t('task.FAILED');
  if (typeof e === 'string') return e;
  return e.message || e.code || t('task.FAILED');
}

function taskMedia(task, prefix, small) {
  if (task.status !== 'SUCCEEDED') return null;
  if (task.video) {
    return h('video.media', {
      id: prefix ? prefix + '-video' : undefined,
      src: task.video,
      poster: (small && task.thumbnail) || task.image || undefined,
      controls: true,
      playsinline: true,
      preload: 'metadata',
    });
  }
  if (task.image) {
    const src = (small && task.thumbnail) || task.image;
    return h('a', { href: task.image, target: '_blank', rel: 'noopener' }, h('img.media', { id: prefix ? prefix + '-image' : undefined, src, alt: (task.params && task.params.prompt) || task.model, loading: small ? 'lazy' : undefined }));
  }
  return null;
}

// ------------------------------------------------------------------ gallery

page(
  '/tasks',
  async (main, params, ctx) => {
    const grid = h('div.gallery#gallery');
    const more = h('button.btn.btn-ghost#load-more', { type: 'button', hidden: true }, t('common.load_more'));
    const slot = h('div', spinner());
    // Filters (kind, model, status, date) over the loaded tasks.
    const fKind = h('select#g-kind', h('option', { value: '' }, t('common.all')), CATS.filter((c) => c !== 't2t').map((c) => h('option', { value: c }, t('cat.' + c))));
    const fModel = h('input#g-model', { type: 'text', placeholder: t('calls.model_ph') });
    const fStatus = h('select#g-status', ['', 'SUCCEEDED', 'FAILED', 'RUNNING'].map((s) => h('option', { value: s }, s ? t('task.' + s) : t('common.all'))));
    const fDate = h('input#g-date', { type: 'date' });
    const filters = h('div.filter-grid#gallery-filters', field(t('calls.kind'), fKind), field(t('common.model'), fModel), field(t('common.status'), fStatus), field(t('tasks.date'), fDate));
    const applyFilters = () => {
      for (const el of grid.children) {
        const task = el.__task || {};
        const day = fDate.value ? fmtTime(task.created_at).slice(0, 10) === fDate.value : true;
        const open = !['SUCCEEDED', 'FAILED'].includes(task.status);
        const status = !fStatus.value || (fStatus.value === 'RUNNING' ? open : task.status === fStatus.value);
        el.hidden = !(
          (!fKind.value || task.catelogid === fKind.value) &&
          (!fModel.value.trim() || (task.model || '').includes(fModel.value.trim())) &&
          status &&
          day
        );
      }
    };
    for (const el of [fKind, fModel, fStatus, fDate]) el.addEventListener('input', applyFilters);
    main.append(pageHead(t('tasks.title'), h('a.btn.btn-primary', { href: '#/playground?model=wan2.2-t2i-plus&cat=t2i' }, t('nav.playground'))), card(null, filters), slot, grid, h('div.center', more));
    let next = null;
    async function load() {
      try {
        const r = await get('/llmage/v1/tasks?limit=24' + (next ? '&after=' + encodeURIComponent(next) : ''));
        if (!ctx.alive) return;
        clear(slot);
        const tasks = r.data || [];
        if (!tasks.length && !grid.children.length) slot.appendChild(h('div.empty', t('tasks.empty')));
        for (const task of tasks) grid.appendChild(taskCard(task));
        applyFilters();
        next = r.next;
        more.hidden = !r.has_more;
      } catch (err) {
        showError(slot, err);
      }
    }
    more.addEventListener('click', () => busy(more, load));
    await load();
    // Tasks still running: refresh their cards.
    ctx.interval(async () => {
      const open = [...grid.querySelectorAll('.task-card[data-open="1"]')];
      for (const el of open) {
        try {
          const task = await get('/llmage/v1/tasks?taskid=' + encodeURIComponent(el.dataset.taskid));
          if (ctx.alive && (task.status === 'SUCCEEDED' || task.status === 'FAILED')) el.replaceWith(taskCard(task));
        } catch (err) {
          /* try again later */
        }
      }
    }, 3000);
  },
  { title: 'nav.tasks' },
);

// A download named <model>-<taskid>.<ext>; the extension from the file's type (asked once).
function downloadLink(task, url) {
  const a = h('a.small.download', { href: url, download: task.model + '-' + task.taskid }, '⬇ ' + t('common.download'));
  let named = false;
  a.addEventListener('click', async (e) => {
    if (named) return;
    e.preventDefault();
    try {
      const r = await fetch(url, { method: 'HEAD', credentials: 'same-origin' });
      const type = (r.headers.get('Content-Type') || '').split(';')[0];
      const ext = { 'video/mp4': 'mp4', 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' }[type];
      if (ext) a.download = task.model + '-' + task.taskid + '.' + ext;
    } catch (err) {
      /* the name without extension */
    }
    named = true;
    a.click();
  });
  return a;
}

function taskCard(task) {
  const done = task.status === 'SUCCEEDED' || task.status === 'FAILED';
  const media = taskMedia(task, null, true) || h('div.media-ph', done ? '✕' : h('span.spin'));
  const url = task.video || task.image;
  const params = task.params || {};
  const shown = Object.entries(params).filter(([k]) => k !== 'prompt' && k !== 'negative_prompt');
  const el = h(
    'article.task-card',
    { dataset: { taskid: task.taskid, status: task.status, open: done ? '0' : '1' } },
    h('div.task-media', media),
    h(
      'div.task-info',
      h('div.task-line', h('code.small.task-model.model-id', task.model), statusBadge(task.status, 'task')),
      params.prompt ? h('p.task-prompt', params.prompt) : null,
      shown.length ? h('div.task-params.small.muted', shown.map(([k, v]) => h('span.chip-param', k + ' ' + String(v)))) : null,
      h(
        'div.task-line.muted.small',
        h('span', (CATS.includes(task.catelogid) ? t('cat.' + task.catelogid) : task.catelogid) + ' · ' + fmtTime(task.created_at)),
        task.usage && task.usage.credits !== undefined ? h('span', t('tasks.credits', { n: fmtNum(task.usage.credits) })) : null,
      ),
      h('div.small.muted.task-id', t('calls.task_id') + ' ', h('code.id-wrap', task.taskid)),
      task.status === 'FAILED' ? h('div.small.neg', taskError(task)) : null,
      h(
        'div.task-line.small',
        url ? downloadLink(task, url) : null,
        h(
          'a.small.reuse',
          {
            href: '#/playground?model=' + encodeURIComponent(task.model) + '&cat=' + encodeURIComponent(task.catelogid),
            onclick: () => sessionStorage.setItem('llmage.reuse', JSON.stringify(params)),
          },
          '↻ ' + t('tasks.reuse'),
        ),
      ),
    ),
  );
  el.__task = task;
  return el;
}

// ------------------------------------------------------------------ docs

function quickStart() {
  const base = apiBase();
  const samples = [
    [
      'curl',
      `curl -X POST ${base}/chat/completions \\\n  -H "Authorization: Bearer $LLMAGE_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model":"qwen3-max","catelogid":"t2t","prompt":"你好","sys_prompt":"","stream":false}'`,
    ],
    [
      'Python (openai)',
      `from openai import OpenAI\nimport os\n\nclient = OpenAI(base_url="${base}", api_key=os.environ["LLMAGE_API_KEY"])\nresp = client.chat.completions.create(\n    model="qwen3-max",\n    messages=[{"role": "user", "content": "你好"}],\n)\nprint(resp.choices[0].message.content)`,
    ],
    [
      'Python (requests)',
      `import os, requests\n\nresp = requests.post(\n    "${base}/chat/completions",\n    headers={"Authorization": "Bearer " + os.environ["LLMAGE_API_KEY"]},\n    json={"model": "qwen3-max", "catelogid": "t2t", "prompt": "你好", "stream": False},\n)\nprint(resp.json()["choices"][0]["message"]["content"])`,
    ],
    [
      'JavaScript (fetch)',
      `const resp = await fetch("${base}/chat/completions", {\n  method: "POST",\n  headers: {\n    "Authorization": "Bearer " + process.env.LLMAGE_API_KEY,\n    "Content-Type": "application/json",\n  },\n  body: JSON.stringify({ model: "qwen3-max", catelogid: "t2t", prompt: "你好", stream: false }),\n});\nconst data = await resp.json();\nconsole.log(data.choices[0].message.content);`,
    ],
  ];
  // The fuller examples shipped next to the console (`{{BASE_URL}}` filled in); the built-in
  // samples above when they cannot be fetched.
  const files = [
    ['example-chat.sh', 'example-stream.sh', 'example-image.sh'],
    ['example-openai_sdk.py'],
    ['example-requests_tasks.py'],
    ['example-fetch.mjs'],
  ];
  const tabs = h('div.tabs#qs-tabs');
  const panel = h('div.tab-panel');
  let selected = 0;
  const select = (i) => {
    selected = i;
    [...tabs.children].forEach((b, j) => b.classList.toggle('selected', i === j));
    clear(panel).appendChild(codeBlock(samples[i][1], { id: 'qs-code' }));
    loadExamples(i);
  };
  const loadExamples = async (i) => {
    if (samples[i].loaded) return;
    samples[i].loaded = true;
    try {
      const texts = await Promise.all(
        files[i].map(async (f) => {
          const r = await fetch('/assets/' + f, { credentials: 'same-origin' });
          if (!r.ok) throw new Error(f);
          return (await r.text()).trim();
        }),
      );
      samples[i][1] = texts.join('\n\n').split('{{BASE_URL}}').join(base);
      if (selected === i) clear(panel).appendChild(codeBlock(samples[i][1], { id: 'qs-code' }));
    } catch (e) {
      /* keep the built-in sample */
    }
  };
  samples.forEach(([label], i) => tabs.appendChild(h('button.tab', { type: 'button', onclick: () => select(i) }, label)));
  select(0);
  return card(
    t('docs.quickstart'),
    h('div.kv', h('span.k', t('docs.base_url')), h('code#base-url', base)),
    h('p.muted', t('docs.auth')),
    tabs,
    panel,
  );
}

// The half of a bilingual "中文 / English" text in the current language: split at the last
// " / " with Chinese before it and none after it (the English half never has Chinese).
function langHalf(text) {
  const s = String(text || '');
  let at = s.lastIndexOf(' / ');
  while (at > 0) {
    const zh = s.slice(0, at);
    const en = s.slice(at + 3);
    if (CJK.test(zh) && !CJK.test(en) && en.trim()) return S.lang === 'en' ? en : zh;
    at = s.lastIndexOf(' / ', at - 1);
  }
  return s;
}

// Text with `code` spans (the document's descriptions are Markdown-ish), in the current
// language when it is bilingual.
function richText(text) {
  return langHalf(text)
    .split(/(`[^`]+`)/)
    .map((part) => (/^`[^`]+`$/.test(part) ? h('code.inline', part.slice(1, -1)) : part));
}

function resolveRef(doc, s, depth) {
  depth = depth || 0;
  while (s && s.$ref && depth < 20) {
    const path = s.$ref.replace(/^#\//, '').split('/');
    let x = doc;
    for (const p of path) x = x && x[p.replace(/~1/g, '/').replace(/~0/g, '~')];
    s = x;
    depth++;
  }
  return s || {};
}

function typeOf(doc, s) {
  s = resolveRef(doc, s);
  if (Array.isArray(s.type)) return s.type.join(' | ');
  if (s.type === 'array') return 'array<' + typeOf(doc, s.items || {}) + '>';
  if (s.type) return s.type + (s.format ? ` (${s.format})` : '');
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => typeOf(doc, x)).join(' | ');
  if (s.properties) return 'object';
  return 'any';
}

// Rows of a schema's properties (merging allOf; arrays of objects show their items).
function schemaRows(doc, schema) {
  let s = resolveRef(doc, schema);
  if (s.type === 'array' && s.items) s = resolveRef(doc, s.items);
  const props = {};
  const required = new Set(s.required || []);
  for (const part of [s, ...(s.allOf || []).map((x) => resolveRef(doc, x))]) {
    Object.assign(props, part.properties || {});
    for (const r of part.required || []) required.add(r);
  }
  // `anyOf: [{required: [a]}, {required: [b]}]`: one of a, b is required.
  const oneOf = new Set();
  for (const alt of s.anyOf || []) if (!alt.properties) for (const r of alt.required || []) oneOf.add(r);
  return Object.entries(props).map(([name, p]) => {
    const r = resolveRef(doc, p);
    const en = r.enum || (r.items && resolveRef(doc, r.items).enum);
    return { name, type: typeOf(doc, p), required: required.has(name), oneOf: oneOf.has(name), description: r.description || r.title || '', enum: en, default: r.default };
  });
}

function schemaTable(rows) {
  return table(
    [
      { label: t('param.name'), get: (r) => h('code', r.name) },
      { label: t('param.type'), get: (r) => h('span.mono.small', r.type) },
      { label: t('param.required'), get: (r) => (r.required ? badge(t('common.yes'), 'warn') : r.oneOf ? badge(t('param.one_of'), 'warn') : t('common.no')) },
      {
        label: t('param.description'),
        get: (r) => [
          richText(r.description),
          r.enum ? h('div.small', t('docs.enum') + ': ', r.enum.map((v) => h('code.chip', String(v)))) : null,
          r.default !== undefined ? h('div.small', t('param.default') + ': ', h('code', JSON.stringify(r.default))) : null,
        ],
      },
    ],
    rows,
  );
}

function operationView(doc, path, method, op) {
  const el = h('details.op', { id: 'op-' + method + path.replace(/[^\w]+/g, '-') });
  el.appendChild(
    h(
      'summary.op-head',
      h('span.method', { class: 'm-' + method }, method.toUpperCase()),
      h('code.op-path', path),
      h('span.op-summary', richText(op.summary || '')),
    ),
  );
  const body = h('div.op-body');
  if (op.description) body.appendChild(h('p.op-desc', richText(op.description)));
  const ps = (op.parameters || []).map((p) => resolveRef(doc, p));
  if (ps.length) {
    body.appendChild(h('h4', t('docs.params')));
    body.appendChild(
      table(
        [
          { label: t('param.name'), get: (p) => h('code', p.name) },
          { label: t('docs.in'), get: (p) => p.in },
          { label: t('param.type'), get: (p) => h('span.mono.small', typeOf(doc, p.schema || {})) },
          { label: t('param.required'), get: (p) => (p.required ? badge(t('common.yes'), 'warn') : t('common.no')) },
          {
            label: t('param.description'),
            get: (p) => {
              const s = resolveRef(doc, p.schema || {});
              return [
                richText(p.description || s.description || ''),
                s.enum ? h('div.small', t('docs.enum') + ': ', s.enum.map((v) => h('code.chip', String(v)))) : null,
                s.default !== undefined ? h('div.small', t('param.default') + ': ', h('code', JSON.stringify(s.default))) : null,
              ];
            },
          },
        ],
        ps,
      ),
    );
  }
  const rb = resolveRef(doc, op.requestBody);
  if (rb && rb.content) {
    body.appendChild(h('h4', t('docs.body')));
    if (rb.description) body.appendChild(h('p.small', richText(rb.description)));
    for (const [type, media] of Object.entries(rb.content)) {
      body.appendChild(h('div.small.muted.mono', type));
      const rows = schemaRows(doc, media.schema || {});
      body.appendChild(rows.length ? schemaTable(rows) : h('div.small', typeOf(doc, media.schema || {})));
    }
  }
  const rs = Object.entries(op.responses || {});
  if (rs.length) {
    body.appendChild(h('h4', t('docs.responses')));
    body.appendChild(
      h(
        'div.responses',
        rs.map(([code, r]) => {
          r = resolveRef(doc, r);
          return h('div.resp', h('span.badge', { class: String(code).startsWith('2') ? 'badge-ok' : String(code).startsWith('4') || String(code).startsWith('5') ? 'badge-bad' : 'badge-neutral' }, code), ' ', richText(r.description || ''));
        }),
      ),
    );
  }
  el.appendChild(body);
  return el;
}

page(
  '/docs',
  async (main, params, ctx) => {
    main.append(pageHead(t('docs.title')), quickStart());
    const ref = h('div#api-reference', spinner());
    main.appendChild(card(t('docs.reference'), ref));
    let doc;
    try {
      doc = await get('/llmage/v1/openapi.json');
    } catch (err) {
      if (!ctx.alive) return;
      if (err.status === 404) clear(ref).appendChild(h('div.empty#docs-pending', t('docs.generating')));
      else showError(ref, err);
      return;
    }
    if (!ctx.alive) return;
    clear(ref);
    if (!doc || !doc.paths) {
      ref.appendChild(h('div.empty#docs-pending', t('docs.generating')));
      return;
    }
    if (doc.info) ref.appendChild(h('div.doc-info', h('h3', (doc.info.title || '') + (doc.info.version ? ' ' + doc.info.version : '')), doc.info.description ? h('p.muted', richText(doc.info.description)) : null));
    const groups = new Map();
    const tagInfo = new Map((doc.tags || []).map((tg) => [tg.name, tg]));
    for (const tg of doc.tags || []) groups.set(tg.name, []);
    // Non-admins see the gateway and their own console endpoints, not the operators' ones.
    const admin = S.user && S.user.role === 'admin';
    const operatorOnly = (path, op) =>
      path.startsWith('/api/admin') ||
      path.startsWith('/api/payments') ||
      ['/metrics', '/healthz', '/', '/assets/{path}'].includes(path) ||
      (op.tags || []).some((tg) => tg === 'admin' || tg === 'console' || tg === 'ops');
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
        const op = item[method];
        if (!op || (!admin && operatorOnly(path, op))) continue;
        const tag = (op.tags && op.tags[0]) || t('docs.other');
        if (!groups.has(tag)) groups.set(tag, []);
        groups.get(tag).push([path, method, Object.assign({ parameters: [] }, op, { parameters: [...(item.parameters || []), ...(op.parameters || [])] })]);
      }
    }
    const toc = h('nav.doc-toc');
    ref.appendChild(toc);
    let n = 0;
    for (const [tag, ops] of groups) {
      if (!ops.length) continue;
      const gid = 'tag-' + n++;
      toc.appendChild(h('button.chip-btn', { type: 'button', onclick: () => document.getElementById(gid).scrollIntoView({ behavior: 'smooth' }) }, tag));
      const info = tagInfo.get(tag);
      ref.appendChild(
        h(
          'section.doc-group',
          { id: gid },
          h('h3', tag),
          info && info.description ? h('p.muted', richText(info.description)) : null,
          ops.map(([p, m, op]) => operationView(doc, p, m, op)),
        ),
      );
    }
  },
  { title: 'nav.docs' },
);
