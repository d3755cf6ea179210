/* tconv page: state, URL fragment, controls, the views, highlighting, animation.
 * The numbers come from math.js (TC); the code panel from code.js (tconvCode). START is written by
 * tconv.explainer.page: the controls' starting texts, values, and the seeds' worked examples. */
'use strict';

(function () {
  const $ = id => document.getElementById(id);
  const FIELDS = ['rank', 'input_size', 'kernel_size', 'stride', 'padding', 'output_padding', 'dilation',
                  'padding_mode', 'in_channels', 'out_channels', 'groups'];
  const PER_DIM = ['input_size', 'kernel_size', 'stride', 'padding', 'output_padding', 'dilation'];
  const EXAMPLES = new Map((START.examples || []).map(e => [e.name, e]));
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  const prod = TC.prod;

  // ================================================================== state and the URL fragment
  /** The whole state: the controls' texts, the values, the selection, the animation step. */
  function defaults() {
    return {
      fields: Object.assign({}, START.fields), preset: START.preset || 'arange', seed: 1,
      x: START.x ? START.x.slice() : null, w: START.w ? START.w.slice() : null,
      select: null, channel: 0, step: null, anim: 'scatter',
    };
  }

  const countValues = text => String(text).split(/\s*[x×]\s*/).length;

  /** A per-dimension text for a page of `rank` dimensions ("3x2" -> "3" on a 1-d page). */
  function adapt(text, rank) {
    const tokens = String(text).trim().split(/\s*[x×]\s*/);
    if (tokens.length > rank && !/[^0-9x×\s+-]/.test(text)) return tokens.slice(0, rank).join('x');
    return String(text);
  }

  function parseValues(text) {
    return text.split(',').map(t => {
      const v = decodeURIComponent(t);
      return NUMBER.test(v.trim()) ? parseFloat(v) : v;
    });
  }

  /** State from a fragment: keys as in the issue's test contract; values not set keep defaults. */
  function fromFragment(hash) {
    const st = defaults();
    const got = new Map();
    for (const part of String(hash).replace(/^#/, '').split('&')) {
      if (!part) continue;
      const i = part.indexOf('=');
      const key = safeDecode(i < 0 ? part : part.slice(0, i));
      got.set(key, i < 0 ? '' : part.slice(i + 1));
    }
    const text = key => safeDecode(got.get(key));
    if (got.has('preset')) applyPreset(st, text('preset'), got.has('seed') ? text('seed') : null);
    // the rank: given, or the number of values of input_size (one value: a 1-d page)
    let rank = st.fields.rank;
    if (got.has('rank')) rank = text('rank');
    else if (got.has('input_size') && [1, 2].includes(countValues(text('input_size')))) {
      rank = String(countValues(text('input_size')));
    }
    if (rank !== st.fields.rank && (rank === '1' || rank === '2')) {
      for (const k of PER_DIM) st.fields[k] = adapt(st.fields[k], Number(rank));
      st.x = st.w = null;
    }
    st.fields.rank = rank;
    for (const k of FIELDS) if (k !== 'rank' && got.has(k)) st.fields[k] = text(k);
    if (got.has('x')) st.x = parseValues(got.get('x'));
    if (got.has('w')) st.w = parseValues(got.get('w'));
    if (got.has('select')) {
      const v = text('select').split(/\s*[x×,]\s*/).map(Number);
      st.select = v.every(Number.isInteger) ? v : null;
    }
    if (got.has('channel')) st.channel = parseInt(text('channel'), 10) || 0;
    if (got.has('step')) {
      const k = parseInt(text('step'), 10);
      st.step = Number.isInteger(k) && k >= 0 ? k : null;
    }
    if (got.has('anim')) st.anim = text('anim') === 'slide' ? 'slide' : 'scatter';
    return st;
  }

  function safeDecode(s) {
    try { return decodeURIComponent(String(s == null ? '' : s).replace(/\+/g, ' ')); } catch (e) { return String(s); }
  }
  const enc = v => encodeURIComponent(String(v)).replace(/%20/g, '+');

  function toFragment(st) {
    const parts = FIELDS.map(k => `${k}=${enc(st.fields[k])}`);
    parts.push(`preset=${enc(st.preset)}`);
    if (st.preset === 'random') parts.push(`seed=${st.seed}`);
    if (st.x) parts.push('x=' + st.x.map(enc).join(','));
    if (st.w) parts.push('w=' + st.w.map(enc).join(','));
    if (st.select) parts.push('select=' + st.select.join('x'));
    if (st.channel) parts.push(`channel=${st.channel}`);
    if (st.step != null) parts.push(`step=${st.step}`);
    if (st.anim !== 'scatter') parts.push(`anim=${st.anim}`);
    return parts.join('&');
  }

  /** Preset values: 1..n, ones, random (seeded), or one of the seeds' worked examples. */
  function applyPreset(st, name, seed) {
    const ex = EXAMPLES.get(name);
    if (ex) {
      st.fields = Object.assign({}, st.fields, ex.fields);
      st.x = ex.x.slice();
      st.w = ex.w.slice();
      st.preset = name;
      st.select = null;
      st.step = null;
      return;
    }
    st.preset = ['arange', 'ones', 'random'].includes(name) ? name : 'arange';
    if (st.preset === 'random') {
      const s = parseInt(seed, 10);
      st.seed = Number.isInteger(s) ? s : 1 + Math.floor(Math.random() * 9999);
    }
    st.x = st.w = null;
  }

  function mulberry32(a) {
    return function () {
      a |= 0; a = a + 0x6D2B79F5 | 0;
      let t = Math.imul(a ^ a >>> 15, 1 | a);
      t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
      return ((t ^ t >>> 14) >>> 0) / 4294967296;
    };
  }

  function generate(preset, shape, seed, salt) {
    const n = prod(shape);
    if (preset === 'ones') return new Array(n).fill(1);
    if (preset === 'random') {
      const r = mulberry32(seed * 7919 + salt);
      return Array.from({length: n}, () => Math.floor(r() * 9) - 4);
    }
    return Array.from({length: n}, (_, i) => i + 1);
  }

  // ================================================================== evaluation
  let S = null;       // the state
  let M = null;       // the evaluated layer: {g, m, xShape, wShape, ...} or null (error)
  let V = null;       // the layer's values {g, x, w, xShape, wShape} whenever tconv accepts its geometry
  let ERROR = null;

  function evaluate(st) {
    const g = TC.geometry(st.fields);
    TC.checkLimits(g);
    const xShape = [g.cin, ...g.n], wShape = [g.cin, g.cl, ...g.k];
    if (st.x && st.x.length !== prod(xShape)) st.x = null;
    if (st.w && st.w.length !== prod(wShape)) st.w = null;
    const x = st.x || generate(st.preset, xShape, st.seed, 1);
    const w = st.w || generate(st.preset, wShape, st.seed, 2);
    V = {g, x, w, xShape, wShape};   // the cells stay editable even when a value is refused
    for (const [name, vals, shape] of [['x', x, xShape], ['w', w, wShape]]) {
      vals.forEach((v, i) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new TC.RuleError(`${name}[${TC.unflat(i, shape).join(', ')}]: could not convert string to ` +
                                 `float: ${TC.repr(String(v))}`);
        }
      });
    }
    const m = TC.compute(g, Float64Array.from(x), Float64Array.from(w));
    const steps = g.cin * prod(g.n);
    return {g, m, xShape, wShape, x, w, steps, cov: TC.coverage(m)};
  }

  // ================================================================== formatting and grids
  function fmt(v) {
    if (Object.is(v, -0) || Math.abs(v) < 1e-12) return '0';
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
    return String(+v.toPrecision(4));
  }
  const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

  /** A rank-1 or rank-2 grid as a table; cell(idx) -> {t, c, a}. */
  function gridHTML(shape, cell, cls) {
    const rows = shape.length === 1 ? 1 : shape[0], cols = shape[shape.length - 1];
    let h = `<table class="grid${cls ? ' ' + cls : ''}"><tbody>`;
    for (let r = 0; r < rows; r++) {
      h += '<tr>';
      for (let q = 0; q < cols; q++) {
        const o = cell(shape.length === 1 ? [q] : [r, q]);
        h += `<td${o.c ? ` class="${o.c}"` : ''}${o.a ? ' ' + o.a : ''}>${esc(o.t)}</td>`;
      }
      h += '</tr>';
    }
    return h + '</tbody></table>';
  }
  const fig = (caption, inner) => `<figure class="g"><figcaption>${caption}</figcaption>${inner}</figure>`;
  const tup = a => a.length === 1 ? `(${a[0]},)` : `(${a.join(', ')})`;
  const shapeText = a => a.join('×');

  /** Names as the page writes them: y[2,3] for one channel, y[o,2,3] otherwise. */
  function names(g) {
    const one = g.cin === 1 && g.cout === 1;
    return {
      one,
      y: (o, j) => `y[${(one ? j : [o, ...j]).join(',')}]`,
      x: (c, i) => `x[${(one ? i : [c, ...i]).join(',')}]`,
      w: (c, og, t) => `w[${(one ? t : [c, og, ...t]).join(',')}]`,
    };
  }

  // ================================================================== rendering the views
  const cells = {};   // element maps, rebuilt after each render

  function render() {
    const panels = document.querySelector('.panels');
    panels.classList.toggle('error', !!ERROR);
    $('error').textContent = ERROR || '';
    if (!M) {
      const msg = '<p class="note">Nothing to show: tconv refuses this layer (the rule is above). ' +
                  'Change a control, or press the browser\'s back button.</p>';
      for (const id of ['values', 'output', 'checker', 'scatter', 'zero', 'matrix']) $(id).innerHTML = msg;
      if (V) renderValues();
      $('where').textContent = '';
      $('verdict').textContent = '';
      $('formula').textContent = '';
      for (const k of ['torch', 'keras', 'onnx', 'jax']) $('code-' + k).textContent = '';
      $('code-note').textContent = 'No code: tconv refuses this layer (the rule is above).';
      $('step-text').textContent = '';
      return;
    }
    renderValues();
    renderOutput();
    renderChecker();
    renderScatter();
    renderZero();
    renderMatrix();
    renderCode();
    highlight();
  }

  function renderValues() {
    const {g, x, w, xShape} = V;
    const nm = names(g);
    const pin = prod(g.n), ptap = prod(g.k);
    let h = `<h4>input x ${tup(xShape)}</h4><div class="grids">`;
    for (let c = 0; c < g.cin; c++) {
      h += fig(g.cin > 1 ? `x[${c}]` : '', gridHTML(g.n, idx => {
        const i = c * pin + TC.flat(idx, g.n), v = x[i];
        return {t: typeof v === 'number' ? fmt(v) : v, c: typeof v === 'number' ? '' : 'bad',
                a: `contenteditable="true" spellcheck="false" data-tensor="x" data-index="${[c, ...idx].join(',')}" ` +
                   `title="${nm.x(c, idx)}: click and type"`};
      }));
    }
    h += `</div><h4>kernel w ${tup(V.wShape)}: (C_in, C_out/groups, *kernel_size)` +
         `${g.groups > 1 ? `, ${g.groups} groups` : ''}</h4><div class="groups">`;
    for (let gi = 0; gi < g.groups; gi++) {
      h += '<div class="group">';
      if (g.groups > 1 || g.cin > 1 || g.cout > 1) {
        h += `<div class="gtitle">${g.groups > 1 ? `group ${gi}: ` : ''}x[${gi * g.cs}${g.cs > 1 ? `..${(gi + 1) * g.cs - 1}` : ''}]` +
             ` → y[${gi * g.cl}${g.cl > 1 ? `..${(gi + 1) * g.cl - 1}` : ''}]</div>`;
      }
      h += '<table class="kernels"><tbody>';
      if (g.cs > 1 || g.cl > 1) {
        h += '<tr><th></th>' + Array.from({length: g.cl}, (_, og) => `<th>→ y[${gi * g.cl + og}]</th>`).join('') + '</tr>';
      }
      for (let c = gi * g.cs; c < (gi + 1) * g.cs; c++) {
        h += '<tr>' + (g.cs > 1 || g.cl > 1 ? `<th>x[${c}]</th>` : '');
        for (let og = 0; og < g.cl; og++) {
          h += '<td>' + gridHTML(g.k, t => {
            const i = (c * g.cl + og) * ptap + TC.flat(t, g.k), v = w[i];
            return {t: typeof v === 'number' ? fmt(v) : v, c: typeof v === 'number' ? '' : 'bad',
                    a: `contenteditable="true" spellcheck="false" data-tensor="w" data-index="${[c, og, ...t].join(',')}" ` +
                       `title="${nm.w(c, og, t)}: click and type"`};
          }, 'small') + '</td>';
        }
        h += '</tr>';
      }
      h += '</tbody></table></div>';
    }
    h += '</div>';
    $('values').innerHTML = h;
    cells.x = new Map(); cells.w = new Map();
    for (const el of $('values').querySelectorAll('td[data-tensor]')) cells[el.dataset.tensor].set(el.dataset.index, el);
  }

  function renderOutput() {
    const {g, m} = M;
    let h = `<p class="note">${tup([g.cout, ...g.L])}: click or hover a pixel; every view shows what makes it.</p><div class="grids">`;
    for (let o = 0; o < g.cout; o++) {
      h += fig(g.cout > 1 ? `y[${o}]` : '', gridHTML(g.L, j => ({
        t: fmt(m.out[o * m.pout + TC.flat(j, g.L)]),
        a: `data-pixel="${j.join(',')}" data-channel="${o}" tabindex="0"`,
      })));
    }
    $('output').innerHTML = h + '</div>';
    cells.y = new Map();
    for (const el of $('output').querySelectorAll('td[data-pixel]')) cells.y.set(`${el.dataset.channel},${el.dataset.pixel}`, el);
  }

  function renderChecker() {
    const {g, cov} = M;
    const most = Math.max(1, ...cov.taps);
    let h = `<p class="note">How many (input element, kernel tap) pairs reach each output pixel, one channel in and out` +
            `${g.mode !== 'zeros' ? ` (after the ${g.mode} fold)` : ''}.</p>`;
    h += gridHTML(g.L, j => {
      const v = cov.taps[TC.flat(j, g.L)];
      const shade = Math.round(255 - 150 * v / most);
      return {t: String(v), a: `data-taps="${j.join(',')}" style="background: rgb(${shade}, ${shade}, 255)"`};
    });
    h += '<p class="caption mono">' + cov.perDim.map((o, i) =>
      `${g.rank > 1 ? `dim ${i}: ` : ''}kernel ${o.kernel}, stride ${o.stride}, dilation ${o.dilation}: kernel taps ` +
      `per output position (position mod ${o.stride}): ${o.counts.join(' ')}`).join('<br>') + '</p>';
    $('checker').innerHTML = h;
    $('verdict').textContent = cov.verdict;
    $('verdict').className = cov.even ? 'even' : 'uneven';
    cells.taps = new Map();
    for (const el of $('checker').querySelectorAll('td[data-taps]')) cells.taps.set(el.dataset.taps, el);
  }

  function currentElement() {
    if (!M || S.anim !== 'scatter' || S.step == null) return null;
    const k = Math.min(S.step, M.steps);
    return k > 0 ? k - 1 : null;
  }

  function stepText() {
    const {g, m} = M;
    const nm = names(g);
    if (S.anim === 'slide') {
      if (!S.select) return `slide: the flipped kernel over the processing image, one output pixel at a time (play)`;
      const P = m.pout, f = TC.flat(S.select, g.L);
      return `pixel ${f + 1} of ${P}: ${nm.y(S.channel, S.select)}`;
    }
    const N = M.steps, k = S.step == null ? N : Math.min(S.step, N);
    if (S.step == null) return `all ${N} input elements added; play (or →) adds them one at a time`;
    if (k === 0) return `step 0 of ${N}: nothing added yet`;
    const el = k - 1, c = Math.floor(el / prod(g.n)), idx = TC.unflat(el % prod(g.n), g.n);
    const at = idx.map((i, d) => i * g.s[d]);
    return `step ${k} of ${N}: ${nm.x(c, idx)} = ${fmt(M.x[el])} times the kernel, added at ` +
           `index×stride = ${tup(at)}${k === N ? ' (all added)' : ''}`;
  }

  function renderScatter() {
    const {g, m} = M;
    const N = M.steps, k = S.step == null ? N : Math.min(S.step, N);
    const run = TC.running(m, k);
    const b = g.pads.map(p => p[0]);
    const kept = q => q.every((qi, d) => qi >= b[d] && qi < b[d] + g.L[d]);
    const strip = q => q.some((qi, d) => qi >= g.full[d]);
    const fm = TC.foldMap(g);
    let h = `<p class="caption" id="scatter-step">${esc(stepText())}</p>`;
    const el = currentElement();
    if (el != null) {
      const c = Math.floor(el / prod(g.n)), group = Math.floor(c / g.cs);
      h += '<div class="grids">';
      for (let og = 0; og < g.cl; og++) {
        const o = group * g.cl + og;
        h += fig(`${names(g).x(c, TC.unflat(el % prod(g.n), g.n))}·w${g.cin > 1 || g.cout > 1 ? `[${c},${og}]` : ''}` +
                 `${g.cout > 1 ? ` → y[${o}]` : ''}`, gridHTML(g.span, u => {
          const isTap = u.every((v, d) => v % g.d[d] === 0);
          if (!isTap) return {t: '', c: 'hole'};
          const t = u.map((v, d) => v / g.d[d]);
          return {t: fmt(M.x[el] * M.w[(c * g.cl + og) * prod(g.k) + TC.flat(t, g.k)]), c: 'land'};
        }, 'small'));
      }
      h += '</div>';
    }
    // the output channels of one group: the current element's, else the selected (or hovered) pixel's
    const group = el != null ? Math.floor(Math.floor(el / prod(g.n)) / g.cs) : Math.floor(viewChannel() / g.cl);
    h += `<h4>running sum over the full scatter ${shapeText(g.full)}` +
         `${g.extra.some(e => e) ? (g.same ? " + the strip 'same' appends" : ' + output_padding strip') : ''}` +
         `${g.groups > 1 ? ` (group ${group}: y[${group * g.cl}${g.cl > 1 ? `..${(group + 1) * g.cl - 1}` : ''}])` : ''}</h4>` +
         '<div class="grids">';
    for (let o = group * g.cl; o < (group + 1) * g.cl; o++) {
      h += fig(g.cout > 1 ? `y[${o}] before the ${g.mode === 'zeros' ? 'crop' : 'fold'}` : '', gridHTML(g.domain, q => {
        const f = o * m.pdom + TC.flat(q, g.domain);
        let c = kept(q) ? '' : (g.mode === 'zeros' ? 'cut' : 'fold');
        if (strip(q)) c += ' strip';
        let title = '';
        if (!kept(q)) {
          const to = q.map((qi, d) => TC.sourceIndex(qi - b[d], g.L[d], g.mode));
          title = g.mode === 'zeros' ? 'cropped (padding)' : `folded onto y[${to.join(',')}] (${g.mode})`;
        } else if (strip(q)) title = 'output_padding strip';
        return {t: run.hit[f] ? fmt(run.sum[f]) : '', c: c.trim(), a: `data-dom="${o},${q.join(',')}"` + (title ? ` title="${esc(title)}"` : '')};
      }));
    }
    h += '</div>';
    const lines = g.domain.map((D, d) => {
      const [pb, pa] = g.pads[d];
      let s = `${g.rank > 1 ? `dim ${d}: ` : ''}${g.full[d]} (full scatter)` +
              `${g.extra[d] ? ` + ${g.extra[d]} (${g.same ? "'same' appends" : 'output_padding'})` : ''}` +
              ` − ${pb} − ${pa} (padding${g.same ? " 'same'" : ''}, ${g.mode === 'zeros' ? 'cropped' : 'folded'}) = ${g.L[d]}`;
      if (g.mode !== 'zeros' && fm[d].length) {
        s += `; fold: ` + fm[d].map(([q, j]) => `${q}→y${j}`).join(', ');
      }
      return s;
    });
    h += `<p class="caption mono">${lines.map(esc).join('<br>')}</p>`;
    h += '<div class="legend"><span class="sw" style="background:var(--land)"></span>where this step lands' +
         (g.mode === 'zeros' ? '<span class="sw" style="background:var(--cut)"></span>cropped by padding'
                             : `<span class="sw" style="background:var(--fold)"></span>border: added back onto the pixel it copies (${esc(g.mode)})`) +
         '<span class="sw" style="border:1px dashed #b8a000;background:var(--strip)"></span>output_padding strip' +
         '<span class="sw" style="background:var(--selbg)"></span>reaches the selected pixel</div>';
    $('scatter').innerHTML = h;
    cells.dom = new Map();
    for (const c of $('scatter').querySelectorAll('td[data-dom]')) cells.dom.set(c.dataset.dom, c);
    $('step-text').textContent = stepText();
  }

  /** The output channel whose group the views draw: the hovered pixel's, else the selected one's. */
  const focusChannel = () => (S.select && S.channel < M.g.cout ? S.channel : 0);
  const viewChannel = () => (hover ? hover.o : focusChannel());

  function renderZero() {
    const {g, m} = M;
    const o = viewChannel();
    const group = Math.floor(o / g.cl), og = o - group * g.cl;
    const nm = names(g);
    let h = `<p class="caption">${g.s.some(s => s > 1) ? `${tup(g.s.map(s => s - 1))} zeros between input elements (stride − 1), ` : ''}` +
            `a border of dilation·(kernel−1) − padding on each side: ` +
            `<span class="mono">${g.border.map(([bb, ba]) => `${bb} / ${ba}`).join(', ')}</span> ` +
            `(before / after${g.rank > 1 ? ' per dimension' : ''}; negative: a crop, struck out)` +
            `${g.extra.some(e => e) ? `, output_padding on the far side` : ''}; then slide the flipped, dilated kernel ` +
            `(stride 1).</p>`;
    cells.zi = new Map(); cells.fk = new Map();
    const imgs = [];
    h += '<div class="grids">';
    for (let c = group * g.cs; c < (group + 1) * g.cs; c++) {
      const z = TC.zeroInsertion(m, c);
      const pre = g.border.map(([bb]) => Math.max(-bb, 0));
      const drawn = z.dil.map((v, d) => v + Math.max(g.border[d][0], 0) + Math.max(g.border[d][1], 0));
      imgs.push({c, z, drawn});
      h += fig(`processing image of x[${c}] ${shapeText(z.size)}`, gridHTML(drawn, r => {
        const u = r.map((v, d) => v - pre[d]);  // the image index (outside the image: cropped)
        const inside = u.every((v, d) => v >= 0 && v < z.size[d]);
        // the dilated index of this drawn cell
        const dl = r.map((v, d) => v - Math.max(g.border[d][0], 0));
        const onInput = dl.every((v, d) => v >= 0 && v < z.dil[d] && v % g.s[d] === 0);
        let val = 0;
        if (onInput) val = M.x[c * prod(g.n) + TC.flat(dl.map((v, d) => v / g.s[d]), g.n)];
        const inDil = dl.every((v, d) => v >= 0 && v < z.dil[d]);
        const cls = !inside ? 'cropped' : (onInput ? '' : (inDil ? 'inserted' : 'border'));
        return {t: fmt(val), c: cls, a: `data-zi="${c},${r.join(',')}"`};
      }));
      const fk = TC.flippedDilated(m, c, og);
      h += fig(`${nm.one ? 'w' : `w[${c},${og}]`} flipped${g.d.some(d => d > 1) ? ', dilated' : ''}`,
        gridHTML(g.span, u => {
          const f = TC.flat(u, g.span);
          return {t: fk.isTap[f] ? fmt(fk.kernel[f]) : '', c: fk.isTap[f] ? '' : 'hole', a: `data-fk="${c},${u.join(',')}"`};
        }, 'small'));
    }
    h += '</div>';
    h += `<p class="caption">Each output position takes the sum of the window under the kernel` +
         `${g.cs > 1 ? `, added over input channels x[${group * g.cs}..${(group + 1) * g.cs - 1}]` : ''}: ` +
         (g.mode === 'zeros' ? `the results are ${nm.one ? 'y' : `y[${o}]`} itself.`
                             : `the results are the padded domain ${shapeText(g.domain)}, then folded (${esc(g.mode)}) as in the scatter view.`) +
         `</p>`;
    h += '<div class="legend"><span class="sw" style="background:#fff"></span>input element' +
         '<span class="sw" style="background:#fff;color:#bbb"></span>inserted zero' +
         '<span class="sw" style="background:#f0f0f0;border-style:dashed"></span>border' +
         '<span class="sw" style="background:#ddd"></span>cropped (negative border)' +
         '<span class="sw" style="background:var(--win)"></span>under the kernel for the selected pixel</div>';
    $('zero').innerHTML = h;
    for (const el of $('zero').querySelectorAll('td[data-zi]')) cells.zi.set(el.dataset.zi, el);
    for (const el of $('zero').querySelectorAll('td[data-fk]')) cells.fk.set(el.dataset.fk, el);
    cells.ziGroup = group;
    cells.ziOg = og;
    cells.ziImgs = imgs;
  }

  const MAX_DRAWN_ENTRIES = 12000;

  function renderMatrix() {
    const {g, m} = M;
    const R = g.cin * prod(g.n), C = m.cols;
    const nm = names(g);
    let h = `<p class="caption">W is ${R}×${C}: row r holds where input element r sends each kernel tap (the ` +
            `convolution that maps y back to x reads row r); column j holds the taps that reach y<sub>j</sub>, so ` +
            `y<sub>j</sub> = Σ<sub>r</sub> x<sub>r</sub> W[r, j]${g.mode !== 'zeros' ? `; the ${esc(g.mode)} fold is part of W` : ''}.</p>`;
    cells.mat = null;
    if (R * C > MAX_DRAWN_ENTRIES) {
      h += `<p class="note">W has ${R * C} entries: too many to draw here (up to ${MAX_DRAWN_ENTRIES}); ` +
           `it is in the page's state (state-json).</p>`;
      $('matrix').innerHTML = h;
      return;
    }
    const xName = r => nm.x(Math.floor(r / prod(g.n)), TC.unflat(r % prod(g.n), g.n));
    const yName = j => nm.y(Math.floor(j / m.pout), TC.unflat(j % m.pout, g.L));
    let t = '<div class="matwrap"><table class="mat"><thead><tr><th class="rowh">x \\ y</th><th>x</th>';
    for (let j = 0; j < C; j++) t += `<th title="${yName(j)}">${j}</th>`;
    t += '</tr></thead><tbody>';
    for (let r = 0; r < R; r++) {
      t += `<tr><th class="rowh" title="${xName(r)}">${xName(r)}</th><td class="xv">${fmt(M.x[r])}</td>`;
      const base = r * C;
      for (let j = 0; j < C; j++) {
        t += m.touched[base + j] ? `<td>${fmt(m.W[base + j])}</td>` : '<td class="none"></td>';
      }
      t += '</tr>';
    }
    t += '<tr><th class="rowh">Wᵀx</th><td></td>';
    for (let j = 0; j < C; j++) t += `<td class="yv" title="${yName(j)}">${fmt(m.out[j])}</td>`;
    t += '</tr></tbody></table></div>';
    $('matrix').innerHTML = h + t;
    const rows = $('matrix').querySelectorAll('tbody tr');
    cells.mat = Array.from(rows).slice(0, R).map(tr => Array.from(tr.querySelectorAll('td')).slice(1));
    cells.matY = Array.from(rows[R].querySelectorAll('td')).slice(1);
    cells.matHead = Array.from($('matrix').querySelectorAll('thead th')).slice(2);
  }

  function codeOf() {
    if (typeof tconvCode !== 'function') {
      return {error: 'code panel missing: assets/code.js was not found when this page was written'};
    }
    try {
      return tconvCode(JSON.parse(JSON.stringify(M.g.params)));
    } catch (e) {
      return {error: `the code panel failed: ${e && e.message ? e.message : e}`};
    }
  }

  function ownFormula() {
    return 'out = (in-1)*stride - padding_before - padding_after + dilation*(kernel-1) + output_padding + 1\n' +
      TC.formulaLines(M.g).map((l, i) => (M.g.rank > 1 ? `dim ${i}: ` : '') + l).join('\n');
  }

  function renderCode() {
    const code = M.code = codeOf();
    $('code-note').textContent = code.error || '';
    for (const k of ['torch', 'keras', 'onnx', 'jax']) $('code-' + k).textContent = code[k] || '';
    $('formula').textContent = code.formula || ownFormula();
  }

  // ================================================================== highlighting
  let hover = null;   // {o, j}: the pixel under the pointer (or focused), else null
  let lit = [];

  function light(el, cls) {
    if (el && !el.classList.contains(cls)) { el.classList.add(cls); lit.push([el, cls]); }
  }

  function selectedPixel() {
    if (!M || !S.select) return null;
    const {g} = M;
    if (S.select.length !== g.rank || S.channel < 0 || S.channel >= g.cout ||
        S.select.some((v, d) => v < 0 || v >= g.L[d])) return null;
    return {o: S.channel, j: S.select};
  }

  function highlight() {
    for (const [el, cls] of lit) el.classList.remove(cls);
    lit = [];
    if (!M) return;
    const {g, m} = M;
    const pin = prod(g.n);
    // the scatter step: the input element, where it lands, its row of W, its place in the image
    const el = currentElement();
    if (el != null) {
      const c = Math.floor(el / pin), idx = TC.unflat(el % pin, g.n);
      light(cells.x.get([c, ...idx].join(',')), 'src');
      for (const t of TC.elementContributions(m, el)) {
        light(cells.dom.get(`${t.o},${TC.unflat(t.q, g.domain).join(',')}`), 'land');
      }
      if (cells.mat) for (const td of cells.mat[el]) light(td, 'rowsel');
      const img = cells.ziImgs.find(i => i.c === c);
      if (img) {
        const r = idx.map((i, d) => i * g.s[d] + Math.max(g.border[d][0], 0));
        light(cells.zi.get(`${c},${r.join(',')}`), 'src');
      }
    }
    const sel = selectedPixel();
    const pix = hover || sel;
    if (sel) light(cells.y.get(`${sel.o},${sel.j.join(',')}`), 'sel');
    if (hover) light(cells.y.get(`${hover.o},${hover.j.join(',')}`), 'hover');
    if (!pix) {
      $('where').innerHTML = '<span class="hint">Click or hover an output pixel.</span>';
      return;
    }
    const {list, value} = TC.terms(m, pix.o, pix.j);
    const jf = TC.flat(pix.j, g.L), col = pix.o * m.pout + jf;
    for (const t of list) {
      light(cells.x.get([t.c, ...m.nIdx[t.e]].join(',')), 'src');
      light(cells.w.get([t.c, t.og, ...m.kIdx[t.t]].join(',')), 'tap');
      light(cells.dom.get(`${t.o},${TC.unflat(t.q, g.domain).join(',')}`), 'reach');
      if (cells.mat) light(cells.mat[t.xi][col], 'hit');
    }
    if (cells.mat) {
      for (const row of cells.mat) light(row[col], 'colsel');
      light(cells.matY[col], 'hit');
      light(cells.matHead[col], 'hit');
    }
    light(cells.taps.get(pix.j.join(',')), 'sel');
    // zero insertion: the window under the flipped kernel at each domain position reaching the pixel
    if (Math.floor(pix.o / g.cl) === cells.ziGroup) {
      const og = pix.o - cells.ziGroup * g.cl;
      const sources = TC.domainSources(m, pix.j);
      sources.forEach((q, si) => {
        const core = q.map((qi, d) => qi - g.coreCrop[d][0]);
        const primary = si === 0 || q.every((qi, d) => qi - g.pads[d][0] === pix.j[d]);
        for (const {c, z} of cells.ziImgs) {
          for (const t of m.kIdx) {
            const u = core.map((v, d) => v + t[d] * g.d[d]);
            const r = u.map((v, d) => v + Math.max(-g.border[d][0], 0));
            const f = TC.flat(u, z.size);
            const cell = cells.zi.get(`${c},${r.join(',')}`);
            light(cell, z.isInput[f] ? 'winin' : (primary ? 'win' : 'win2'));
          }
          if (og === cells.ziOg) for (const fk of cells.fk.values()) if (!fk.classList.contains('hole')) light(fk, 'tap');
        }
      });
    }
    $('where').textContent = whereText(pix, list, value);
  }

  /** y[2,3] = x[1,1]·w[0,1] + x[1,2]·w[0,0] = 7, with the numbers on the next line. */
  function whereText(pix, list, value) {
    const {g, m} = M;
    const nm = names(g);
    const lhs = nm.y(pix.o, pix.j);
    if (!list.length) {
      const strip = TC.domainSources(m, pix.j).every(q => q.some((qi, d) => qi >= g.full[d]));
      return `${lhs} = 0: no kernel tap reaches this pixel` +
             (strip ? ` (it is in the ${g.same ? "strip 'same' appends" : 'output_padding strip'})` : '') + '.';
    }
    const SHOW = 24, shown = list.slice(0, SHOW), more = list.length - shown.length;
    const sym = shown.map(t => `${nm.x(t.c, m.nIdx[t.e])}·${nm.w(t.c, t.og, m.kIdx[t.t])}`).join(' + ');
    const num = shown.map(t => `${fmt(M.x[t.xi])}·${fmt(M.w[t.wi])}`).join(' + ');
    const tail = more ? ` + … (${more} more)` : '';
    let s = `${lhs} = ${sym}${tail}\n${' '.repeat(lhs.length)} = ${num}${tail}\n${' '.repeat(lhs.length)} = ${fmt(value)}`;
    const folded = list.filter(t => t.border).length;
    if (folded) {
      s += `\n(${folded} of these ${list.length} taps land in the border and are folded back onto this pixel: ` +
           `padding_mode='${g.mode}')`;
    }
    s += `\n${list.length} term${list.length === 1 ? '' : 's'}: input elements in orange, kernel taps in blue.`;
    return s;
  }

  // ================================================================== the state in the page
  function writeState() {
    const out = {params: null, pads: null, out_size: null, input: null, weight: null, output: null, matrix: null,
                 zero_insertion: null, selected: null, code: null, overlap: null, formula: null,
                 step: null, steps: null, error: ERROR};
    if (M) {
      const {g, m, cov} = M;
      const z = TC.zeroInsertion(m, 0), fk = TC.flippedDilated(m, 0, 0);
      const sel = selectedPixel();
      Object.assign(out, {
        params: g.params, pads: g.pads, out_size: g.L,
        input: TC.nest(Array.from(M.x), M.xShape), weight: TC.nest(Array.from(M.w), M.wShape),
        output: TC.nest(Array.from(m.out), [g.cout, ...g.L]),
        matrix: m.W.length <= TC.LIMITS.matrixEntries ? TC.nest(Array.from(m.W), [g.cin * prod(g.n), m.cols]) : null,
        zero_insertion: {
          image: TC.nest(Array.from(z.image), z.size), is_input: TC.nest(z.isInput, z.size), border: g.border,
          kernel: TC.nest(Array.from(fk.kernel), g.span), result: g.mode === 'zeros' ? 'output' : 'padded',
        },
        selected: sel ? (() => {
          const {list, sum} = TC.terms(m, sel.o, sel.j);
          return {channel: sel.o, pixel: sel.j,
                  terms: list.map(t => [[t.c, ...m.nIdx[t.e]], [t.c, t.og, ...m.kIdx[t.t]], t.product]), sum};
        })() : null,
        code: M.code || null,
        overlap: {taps: TC.nest(cov.taps, g.L), per_dimension: cov.perDim, even: cov.even, verdict: cov.verdict},
        formula: $('formula').textContent,
        step: S.step == null ? M.steps : Math.min(S.step, M.steps), steps: M.steps,
      });
    }
    $('state-json').textContent = JSON.stringify(out);
  }

  function syncControls() {
    for (const k of FIELDS) {
      const el = $(k);
      if (el.tagName === 'SELECT' && ![...el.options].some(o => o.value === S.fields[k])) {
        el.selectedIndex = -1;
      } else if (el.value !== S.fields[k]) {
        el.value = S.fields[k];
      }
    }
    const pre = $('preset');
    pre.value = (S.x || S.w) && !EXAMPLES.has(S.preset) ? 'custom' : S.preset;
    $('anim').value = S.anim;
  }

  function markBad() {
    for (const k of FIELDS) $(k).classList.remove('bad');
    if (!ERROR) return;
    const m = /^ConvTranspose\dd: (\w+)/.exec(ERROR);
    const word = m ? m[1] : '';
    const map = {input: 'input_size', in_channels: 'in_channels', out_channels: 'out_channels', groups: 'groups',
                 kernel_size: 'kernel_size', stride: 'stride', dilation: 'dilation', output_padding: 'output_padding',
                 padding: 'padding', padding_mode: 'padding_mode', the: 'padding'};
    if (map[word]) $(map[word]).classList.add('bad');
  }

  function update() {
    V = null;
    try {
      M = evaluate(S);
      ERROR = null;
    } catch (e) {
      if (!(e instanceof TC.RuleError)) console.error(e);
      M = null;
      ERROR = e && e.message ? e.message : String(e);
    }
    if (M && S.step != null && S.step > M.steps) S.step = null;
    render();
    markBad();
    syncControls();
    writeState();
  }

  // ================================================================== history
  let burst = false;
  let written = null;

  function record(kind) {
    const frag = '#' + toFragment(S);
    if (frag === location.hash) return;
    try {
      if (kind === 'push') history.pushState(null, '', frag);
      else history.replaceState(null, '', frag);
    } catch (e) {
      written = frag;         // where the History API is refused, a plain hash change (its hashchange is ours)
      location.hash = frag;
    }
  }

  function reread() {
    if (written !== null && location.hash === written) { written = null; return; }
    written = null;
    pause(false);
    S = fromFragment(location.hash);
    hover = null;
    update();
  }

  /** A user's change: recompute, and one history entry per change (typing in a field is one change). */
  function changed(continuing) {
    update();
    record(continuing && burst ? 'replace' : 'push');
    burst = !!continuing;
  }

  // ================================================================== animation
  let timer = null;

  function interval() { return Math.round(1600 / Math.max(1, Number($('speed').value) || 3)); }

  /** One step of the animation; `wrap`: past either end, start over at the other. Returns whether it moved. */
  function stepBy(delta, wrap) {
    if (!M) return false;
    if (S.anim === 'slide') {
      const P = M.m.pout;
      let next = (selectedPixel() ? TC.flat(S.select, M.g.L) : -1) + delta;
      if (next < 0 || next >= P) {
        if (!wrap) return false;
        next = next < 0 ? P - 1 : 0;
      }
      S.channel = selectedPixel() ? S.channel : 0;
      S.select = TC.unflat(next, M.g.L);
      hover = null;
      renderScatter();
      renderZero();
    } else {
      const N = M.steps;
      let next = (S.step == null ? N : Math.min(S.step, N)) + delta;
      if (next < 0 || next > N) {
        if (!wrap) return false;
        next = next < 0 ? N : 0;
      }
      S.step = next;
      renderScatter();
    }
    highlight();
    writeState();
    return true;
  }

  function atEnd() {
    if (S.anim === 'slide') return !!selectedPixel() && TC.flat(S.select, M.g.L) >= M.m.pout - 1;
    return S.step != null && S.step >= M.steps;
  }

  function play() {
    if (timer || !M) return;
    if (S.anim === 'scatter' && (S.step == null || S.step >= M.steps)) {
      S.step = 0;
      renderScatter();
      highlight();
      writeState();
    }
    if (S.anim === 'slide' && (!selectedPixel() || atEnd())) stepBy(1, true);
    timer = setInterval(() => { if (!stepBy(1, false) || atEnd()) pause(); }, interval());
    $('play').setAttribute('aria-pressed', 'true');
  }

  function pause(save = true) {
    if (timer) { clearInterval(timer); timer = null; }
    $('play').setAttribute('aria-pressed', 'false');
    if (save) record('replace');
  }

  // ================================================================== events
  function wire() {
    for (const k of FIELDS) {
      const el = $(k);
      if (el.tagName === 'SELECT') {
        el.addEventListener('change', () => {
          pause(false);
          if (k === 'rank') setRank(el.value); else S.fields[k] = el.value;
          changed(false);
        });
      } else {
        el.addEventListener('input', () => {
          pause(false);
          S.fields[k] = el.value;
          changed(true);
        });
        el.addEventListener('change', () => { burst = false; });
      }
    }
    $('preset').addEventListener('change', () => {
      pause(false);
      const v = $('preset').value;
      if (v === 'custom') return;
      applyPreset(S, v, v === 'random' ? null : undefined);
      S.select = null;
      S.step = null;
      changed(false);
    });
    $('anim').addEventListener('change', () => {
      pause(false);
      S.anim = $('anim').value;
      S.step = null;
      changed(false);
    });
    $('speed').addEventListener('input', () => { if (timer) { pause(false); play(); } });
    $('play').addEventListener('click', play);
    $('pause').addEventListener('click', () => pause());
    $('step-forward').addEventListener('click', () => { pause(false); stepBy(1, true); record('replace'); });
    $('step-back').addEventListener('click', () => { pause(false); stepBy(-1, true); record('replace'); });

    // output pixels: click selects, hover and focus preview
    const out = $('output');
    out.addEventListener('click', e => {
      const td = e.target.closest('td[data-pixel]');
      if (td) choosePixel(td);
    });
    out.addEventListener('keydown', e => {
      const td = e.target.closest('td[data-pixel]');
      if (td && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); choosePixel(td); }
    });
    const preview = e => {
      const td = e.target.closest && e.target.closest('td[data-pixel]');
      if (!td) return;
      const next = {o: Number(td.dataset.channel), j: td.dataset.pixel.split(',').map(Number)};
      if (hover && hover.o === next.o && hover.j.join() === next.j.join()) return;
      const regroup = !hover || Math.floor(hover.o / M.g.cl) !== Math.floor(next.o / M.g.cl);
      hover = next;
      if (regroup) { renderScatter(); renderZero(); }
      highlight();
    };
    const unpreview = () => {
      if (!hover) return;
      const regroup = Math.floor(hover.o / M.g.cl) !== Math.floor(focusChannel() / M.g.cl);
      hover = null;
      if (regroup) { renderScatter(); renderZero(); }
      highlight();
    };
    out.addEventListener('mouseover', preview);
    out.addEventListener('focusin', preview);
    out.addEventListener('mouseleave', unpreview);
    out.addEventListener('focusout', unpreview);

    // editable values: Enter or leaving the cell commits
    const values = $('values');
    values.addEventListener('keydown', e => {
      const td = e.target.closest('td[data-tensor]');
      if (!td) return;
      if (e.key === 'Enter') { e.preventDefault(); commitCell(td); }
      if (e.key === 'Escape') { e.preventDefault(); td.blur(); update(); }
    });
    values.addEventListener('focusout', e => {
      const td = e.target.closest && e.target.closest('td[data-tensor]');
      if (td && td.isConnected) commitCell(td);
    });
    values.addEventListener('focusin', e => {
      const td = e.target.closest && e.target.closest('td[data-tensor]');
      if (td) {
        const r = document.createRange();
        r.selectNodeContents(td);
        const s = window.getSelection();
        s.removeAllRanges();
        s.addRange(r);
      }
    });

    for (const b of document.querySelectorAll('button.copy')) b.addEventListener('click', () => copy(b));

    document.addEventListener('keydown', e => {
      const t = e.target;
      if (t && (t.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName))) return;
      if (e.key === ' ' || e.key === 'Spacebar') {
        // space plays / pauses, also on the play and pause buttons; other buttons and pixels keep theirs
        const own = t && (t.id === 'play' || t.id === 'pause');
        if (!own && t && (t.tagName === 'BUTTON' || (t.closest && t.closest('td[data-pixel]')))) return;
        e.preventDefault();
        if (timer) pause(); else play();
      } else if (e.key === 'ArrowRight') {
        e.preventDefault(); pause(false); stepBy(1, true); record('replace');
      } else if (e.key === 'ArrowLeft') {
        e.preventDefault(); pause(false); stepBy(-1, true); record('replace');
      }
    });
    window.addEventListener('popstate', reread);
    window.addEventListener('hashchange', reread);
  }

  function choosePixel(td) {
    S.channel = Number(td.dataset.channel);
    S.select = td.dataset.pixel.split(',').map(Number);
    hover = null;
    renderScatter();
    renderZero();
    highlight();
    writeState();
    record('push');
    burst = false;
  }

  function commitCell(td) {
    if (!V) return;
    const text = td.textContent.trim();
    const which = td.dataset.tensor, idx = td.dataset.index.split(',').map(Number);
    const shape = which === 'x' ? V.xShape : V.wShape;
    const vals = (which === 'x' ? V.x : V.w).slice();
    const f = TC.flat(idx, shape), v = NUMBER.test(text) ? parseFloat(text) : text;
    if (vals[f] === v) return;
    vals[f] = v;
    // the other tensor keeps its values explicitly too (they were generated from the preset)
    S.x = which === 'x' ? vals : V.x.slice();
    S.w = which === 'w' ? vals : V.w.slice();
    const nextFocus = document.activeElement;
    changed(false);
    if (nextFocus && nextFocus.dataset && nextFocus.dataset.tensor) {
      const again = cells[nextFocus.dataset.tensor] && cells[nextFocus.dataset.tensor].get(nextFocus.dataset.index);
      if (again) again.focus();
    }
  }

  function setRank(r) {
    const rank = Number(r);
    for (const k of PER_DIM) S.fields[k] = adapt(S.fields[k], rank);
    S.fields.rank = String(rank);
    S.x = S.w = null;
    if (EXAMPLES.has(S.preset)) S.preset = 'arange';
    S.select = null;
    S.step = null;
  }

  function copy(button) {
    const text = $(button.dataset.target).textContent;
    const done = () => {
      button.classList.add('done');
      button.textContent = 'copied';
      setTimeout(() => { button.classList.remove('done'); button.textContent = 'copy'; }, 1200);
    };
    const fallback = () => {
      const ta = document.createElement('textarea');
      ta.value = text;
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      try { document.execCommand('copy'); } catch (e) { /* nothing else to try */ }
      ta.remove();
      done();
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  // ================================================================== start
  function start() {
    const group = $('preset-examples');
    for (const ex of EXAMPLES.values()) {
      const o = document.createElement('option');
      o.value = ex.name;
      o.textContent = `${ex.name} (${ex.source})`;
      group.appendChild(o);
    }
    if (!EXAMPLES.size) group.remove();
    S = fromFragment(location.hash);
    wire();
    update();
  }

  // for tests and the console: the current state and a way to set a fragment
  window.tconvPage = {state: () => JSON.parse($('state-json').textContent), fragment: () => toFragment(S)};
  start();
})();
