/* tconv page: the rules, in JavaScript (the page's one deliberate second implementation of tconv).
 *
 * Pure functions, no DOM. Everything here mirrors a function of the Python library and says which:
 * the argument checks and their messages (tconv.core.spec, core.shapes, core.padding, the layers'
 * constructor in core.layers), the output size, 'same', the padding-mode fold (padding.source_index),
 * the scatter, the zero-insertion image (engine.algorithms.insert_zeros / zero_insertion_border),
 * the matrix W (engine.algorithms.conv_matrix) and the overlap count (explainer.steps.overlap).
 * tests/test_page.py and tests/test_cli.py compare the page's numbers and messages with tconv's.
 */
'use strict';

const TC = (function () {
  const MODES = ['zeros', 'circular', 'reflect', 'replicate'];
  // The page's own limits (what it can draw), checked only once tconv would accept the layer.
  const LIMITS = {inputElements: 256, kernelTaps: 64, channels: 8, outputElements: 4096,
                  matrixEntries: 65536};

  class RuleError extends Error {}
  const fail = message => { throw new RuleError(message); };

  // ------------------------------------------------------------------ Python values and their repr
  // A control's text is read as the Python value a person would pass: an int, a float, a tuple
  // ("2x1"), or a string ("same", or anything unreadable); messages print it with Python's repr.
  class PyFloat { constructor(v) { this.v = v; } }
  const isInt = v => typeof v === 'number' && Number.isInteger(v);

  function floatRepr(x) {
    if (Number.isNaN(x)) return 'nan';
    if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
    if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
    return String(x).replace(/e([+-])(\d)$/, 'e$10$2');
  }

  function strRepr(s) {
    const body = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
    if (s.includes("'") && !s.includes('"')) return '"' + body + '"';
    return "'" + body.replace(/'/g, "\\'") + "'";
  }

  function repr(v) {
    if (Array.isArray(v)) return v.length === 1 ? `(${repr(v[0])},)` : `(${v.map(repr).join(', ')})`;
    if (v instanceof PyFloat) return floatRepr(v.v);
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : floatRepr(v);
    if (typeof v === 'string') return strRepr(v);
    if (typeof v === 'boolean') return v ? 'True' : 'False';
    return 'None';
  }

  const INT = /^[+-]?\d+$/;
  const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

  /** The Python value of a control's text: "2" -> 2, "2x1" -> (2, 1), "2.5" -> 2.5, "same" -> 'same'. */
  function pyValue(text) {
    const t = String(text == null ? '' : text).trim();
    let inner = t;
    if (/^\(.*\)$/.test(inner)) inner = inner.slice(1, -1).replace(/,\s*$/, '');
    const tokens = inner.split(/\s*[x×,]\s*/);
    const values = [];
    for (const tok of tokens) {
      if (INT.test(tok)) values.push(parseInt(tok, 10));
      else if (FLOAT.test(tok)) values.push(new PyFloat(parseFloat(tok)));
      else return t;
    }
    return values.length === 1 && inner === t ? values[0] : values;
  }

  // ------------------------------------------------------------------ tconv.core.spec's checks
  /** spec.int_tuple: an int or one int per dimension, each >= minimum. */
  function intTuple(op, name, value, rank, minimum) {
    let values;
    if (isInt(value)) {
      values = new Array(rank).fill(value);
    } else if (Array.isArray(value)) {
      if (value.length !== rank || !value.every(isInt)) {
        fail(`${op}: ${name} must be an int or a tuple of ${rank} ints (one per spatial dimension), ` +
             `got ${repr(value)}`);
      }
      values = value.slice();
    } else {
      fail(`${op}: ${name} must be an int or a tuple of ${rank} ints, got ${repr(value)}`);
    }
    if (values.some(v => v < minimum)) {
      fail(`${op}: ${name} must be ${minimum === 1 ? 'positive' : 'non-negative'} in every dimension, ` +
           `got ${name}=${repr(values)}`);
    }
    return values;
  }

  /** spec.padding_pairs: (before, after) per dimension, or 'same' / 'valid'. */
  function paddingPairs(op, value, rank) {
    if (typeof value === 'string') {
      if (value === 'same' || value === 'valid') return value;
      fail(`${op}: padding must be an int, a tuple, 'same' or 'valid', got ${repr(value)}`);
    }
    let pairs;
    if (isInt(value)) {
      pairs = new Array(rank).fill(0).map(() => [value, value]);
    } else if (Array.isArray(value) && value.length === rank) {
      pairs = value.map(p => {
        if (!isInt(p)) {
          fail(`${op}: padding must give each of the ${rank} spatial dimensions an int or a ` +
               `(before, after) pair of ints, got ${repr(value)}`);
        }
        return [p, p];
      });
    } else {
      fail(`${op}: padding must be an int, a tuple of ${rank} ints, a tuple of ${rank} (before, after) ` +
           `pairs, 'same' or 'valid', got ${repr(value)}`);
    }
    if (pairs.some(([b, a]) => b < 0 || a < 0)) fail(`${op}: padding must be non-negative, got padding=${repr(value)}`);
    return pairs;
  }

  // ------------------------------------------------------------------ tconv.core.shapes
  const effectiveKernel = (k, d) => d * (k - 1) + 1;
  const transposedSize = (n, k, s, [b, a], d, o) => (n - 1) * s - b - a + effectiveKernel(k, d) + o;
  const fullSize = (n, k, s, d) => transposedSize(n, k, s, [0, 0], d, 0);
  const outputPaddingLimit = (s, d) => Math.max(s, d);

  function samePads(L, k, s, d) {
    const n = Math.ceil(L / s);
    const total = Math.max((n - 1) * s + effectiveKernel(k, d) - L, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  }

  /** spec.check_output_padding, the one wording of PyTorch's rule. */
  function checkOutputPadding(op, opad, s, d) {
    if (opad.some((o, i) => o >= outputPaddingLimit(s[i], d[i]))) {
      fail(`${op}: output_padding must be smaller than either stride or dilation in every dimension, ` +
           `got output_padding=${repr(opad)}, stride=${repr(s)}, dilation=${repr(d)}`);
    }
  }

  /** padding.check_pads. */
  function checkPads(pads, sizes, mode, op) {
    pads.forEach(([b, a], dim) => {
      const widest = Math.max(b, a), size = sizes[dim];
      if (mode === 'reflect' && widest >= size) {
        fail(`${op}: padding_mode='reflect' needs padding smaller than the padded size in every ` +
             `dimension, got padding ${repr([b, a])} for size ${size} in dimension ${dim}`);
      }
      if (mode === 'circular' && widest > size) {
        fail(`${op}: padding_mode='circular' needs padding no larger than the padded size in every ` +
             `dimension, got padding ${repr([b, a])} for size ${size} in dimension ${dim}`);
      }
    });
  }

  /** padding.source_index for a position q of the padded domain (output coordinates q - before). */
  function sourceIndex(p, size, mode) {
    if (p >= 0 && p < size) return p;
    if (mode === 'circular') return ((p % size) + size) % size;
    if (mode === 'reflect') return p < 0 ? -p : 2 * (size - 1) - p;
    if (mode === 'replicate') return p < 0 ? 0 : size - 1;
    return -1;
  }

  /**
   * The geometry of the page's layer, checked in the order tconv checks it:
   * ConvTranspose{rank}d(C_in, C_out, kernel_size, stride, padding, output_padding, groups,
   * dilation=..., padding_mode=...) (core.layers.ConvLayer.__init__), then the call on an input of
   * shape (C_in, *input_size) (core.spec.transposed_spec). `fields` holds the controls' texts.
   * Returns the geometry or throws a RuleError whose message is tconv's.
   */
  function geometry(fields) {
    const rank = Number(fields.rank);
    if (rank !== 1 && rank !== 2) fail(`the page shows 1-d and 2-d layers, got rank=${repr(pyValue(fields.rank))}`);
    const op = `ConvTranspose${rank}d`;
    const value = name => pyValue(fields[name]);
    // the layer's constructor
    const [cin] = intTuple(op, 'in_channels', value('in_channels'), 1, 1);
    const [cout] = intTuple(op, 'out_channels', value('out_channels'), 1, 1);
    const [groups] = intTuple(op, 'groups', value('groups'), 1, 1);
    if (cin % groups || cout % groups) {
      fail(`${op}: in_channels (${cin}) and out_channels (${cout}) must both be divisible by groups (${groups})`);
    }
    const k = intTuple(op, 'kernel_size', value('kernel_size'), rank, 1);
    const s = intTuple(op, 'stride', value('stride'), rank, 1);
    const d = intTuple(op, 'dilation', value('dilation'), rank, 1);
    const opad = intTuple(op, 'output_padding', value('output_padding'), rank, 0);
    checkOutputPadding(op, opad, s, d);
    let pads = paddingPairs(op, value('padding'), rank);
    const mode = fields.padding_mode;
    if (!MODES.includes(mode)) {
      fail(`${op}: padding_mode must be one of ${repr(MODES)}, got ${repr(mode == null ? '' : String(mode))}`);
    }
    // the call on an input of shape (C_in, *input_size)
    const n = intTuple(op, 'input_size', value('input_size'), rank, 0);
    if (Math.min(...n) < 1) fail(`${op}: input spatial size must be positive, got input of shape ${repr([cin, ...n])}`);
    const same = pads === 'same';
    let L;
    if (same) {
      if (opad.some(o => o)) {
        fail(`${op}: output_padding must be 0 with padding='same' (the output size is input size ` +
             `x stride), got output_padding=${repr(opad)}`);
      }
      L = n.map((ni, i) => ni * s[i]);
      pads = n.map((ni, i) => samePads(ni * s[i], k[i], s[i], d[i]));
    } else {
      if (pads === 'valid') pads = n.map(() => [0, 0]);
      checkOutputPadding(op, opad, s, d);
      L = n.map((ni, i) => transposedSize(ni, k[i], s[i], pads[i], d[i], opad[i]));
      if (Math.min(...L) < 1) {
        fail(`${op}: the output size ${repr(L)} must be positive in every dimension; it is ` +
             `(in-1)*stride - padding_before - padding_after + dilation*(kernel-1) + ` +
             `output_padding + 1 with in=${repr(n)}, stride=${repr(s)}, padding=${repr(pads)}, ` +
             `dilation=${repr(d)}, kernel=${repr(k)}, output_padding=${repr(opad)}`);
      }
    }
    if (mode !== 'zeros') checkPads(pads, L, mode, op);
    const full = n.map((ni, i) => fullSize(ni, k[i], s[i], d[i]));
    // spec.extra: the pixels past the last kernel window (output_padding, or 'same''s append)
    const extra = L.map((Li, i) => Li + pads[i][0] + pads[i][1] - full[i]);
    const g = {
      rank, op, n, k, s, d, opad, pads, same, mode, cin, cout, groups, L, full, extra,
      cs: cin / groups, cl: cout / groups,
      domain: full.map((f, i) => f + extra[i]), // the full scatter plus the output_padding strip
      span: k.map((ki, i) => effectiveKernel(ki, d[i])),
    };
    // spec.core_crop and algorithms.zero_insertion_border
    g.coreCrop = pads.map(([b, a], i) => (mode === 'zeros' ? [b, a - extra[i]] : [0, -extra[i]]));
    g.border = g.coreCrop.map(([cb, ca], i) => [d[i] * (k[i] - 1) - cb, d[i] * (k[i] - 1) - ca]);
    g.params = {
      rank, input_size: n, kernel_size: k, stride: s,
      padding: same ? 'same' : pads.map(([b]) => b), output_padding: opad, dilation: d,
      padding_mode: mode, in_channels: cin, out_channels: cout, groups,
    };
    return g;
  }

  /** The page's own limits: what it can draw (tconv has accepted the layer by now). */
  function checkLimits(g) {
    const pin = g.cin * prod(g.n), taps = prod(g.k), pout = g.cout * prod(g.L);
    if (g.cin > LIMITS.channels || g.cout > LIMITS.channels) {
      fail(`the page draws up to ${LIMITS.channels} input and output channels, got in_channels=${g.cin}, ` +
           `out_channels=${g.cout} (tconv itself takes any number)`);
    }
    if (pin > LIMITS.inputElements) {
      fail(`the page draws up to ${LIMITS.inputElements} input elements (in_channels x input size), ` +
           `got ${pin} (tconv itself takes any size)`);
    }
    if (taps > LIMITS.kernelTaps) {
      fail(`the page draws kernels of up to ${LIMITS.kernelTaps} taps, got ${taps} (tconv itself takes any size)`);
    }
    if (pout > LIMITS.outputElements || g.cout * prod(g.domain) > 4 * LIMITS.outputElements) {
      fail(`the page draws outputs of up to ${LIMITS.outputElements} elements (out_channels x output size), ` +
           `got ${pout} (tconv itself takes any size)`);
    }
  }

  // ------------------------------------------------------------------ index helpers (C order)
  function prod(a) { return a.reduce((p, v) => p * v, 1); }
  /** Every index of `shape`, C order. */
  function indices(shape) {
    const out = [];
    const total = prod(shape);
    for (let f = 0; f < total; f++) out.push(unflat(f, shape));
    return out;
  }
  function unflat(f, shape) {
    const idx = new Array(shape.length);
    for (let i = shape.length - 1; i >= 0; i--) { idx[i] = f % shape[i]; f = Math.floor(f / shape[i]); }
    return idx;
  }
  function flat(idx, shape) {
    let f = 0;
    for (let i = 0; i < shape.length; i++) f = f * shape[i] + idx[i];
    return f;
  }
  /** A flat array as nested lists of `shape`. */
  function nest(data, shape) {
    if (shape.length === 0) return data[0];
    const build = (offset, dim) => {
      if (dim === shape.length - 1) return Array.from(data.slice(offset, offset + shape[dim]));
      const step = prod(shape.slice(dim + 1));
      return Array.from({length: shape[dim]}, (_, i) => build(offset + i * step, dim + 1));
    };
    return build(0, 0);
  }

  // ------------------------------------------------------------------ the layer, computed
  /**
   * Every contribution x[c, i] * w[c, o_g, t] of the layer: it lands on position q = i*s + t*d of
   * the domain (the full scatter plus the output_padding strip) and reaches output pixel
   * j = source_index(q - before) (zeros mode: only inside the window; the rest is cropped).
   * From this one list: the output, the running sums, W, the selected pixel's terms and the overlap.
   * `x`: flat (C_in, *n), `w`: flat (C_in, C_out/groups, *k), finite numbers.
   */
  function compute(g, x, w) {
    const nIdx = indices(g.n), kIdx = indices(g.k);
    const pin = nIdx.length, ptap = kIdx.length, pout = prod(g.L), pdom = prod(g.domain);
    // per input position and tap: the domain position and the output pixel (shared by all channels)
    const land = [];
    for (let e = 0; e < pin; e++) {
      for (let t = 0; t < ptap; t++) {
        const q = nIdx[e].map((i, dim) => i * g.s[dim] + kIdx[t][dim] * g.d[dim]);
        const j = q.map((qi, dim) => sourceIndex(qi - g.pads[dim][0], g.L[dim], g.mode));
        land.push({q: flat(q, g.domain), j: j.some(v => v < 0) ? -1 : flat(j, g.L), border:
          q.some((qi, dim) => qi < g.pads[dim][0] || qi >= g.pads[dim][0] + g.L[dim])});
      }
    }
    const contributions = []; // ordered by input channel, input position, tap, output channel
    const starts = [];        // starts[element]: its first contribution; element = c*pin + e
    const out = new Float64Array(g.cout * pout);
    const W = new Float64Array(g.cin * pin * g.cout * pout);
    const touched = new Uint8Array(W.length);
    const cols = g.cout * pout;
    for (let c = 0; c < g.cin; c++) {
      const group = Math.floor(c / g.cs);
      for (let e = 0; e < pin; e++) {
        starts.push(contributions.length);
        const xi = c * pin + e, xv = x[xi];
        for (let t = 0; t < ptap; t++) {
          const l = land[e * ptap + t];
          for (let og = 0; og < g.cl; og++) {
            const o = group * g.cl + og;
            const wi = (c * g.cl + og) * ptap + t, wv = w[wi];
            const product = xv * wv;
            const yi = l.j < 0 ? -1 : o * pout + l.j;
            contributions.push({c, e, t, og, o, xi, wi, q: l.q, yi, border: l.border, product});
            if (yi >= 0) {
              out[yi] += product;
              W[xi * cols + yi] += wv;
              touched[xi * cols + yi] = 1;
            }
          }
        }
      }
    }
    starts.push(contributions.length);
    return {g, x, w, nIdx, kIdx, pin, ptap, pout, pdom, contributions, starts, out, W, touched, cols};
  }

  /** The domain after the first `step` input elements, per output channel: flat (C_out, *domain). */
  function running(m, step) {
    const sum = new Float64Array(m.g.cout * m.pdom), hit = new Uint8Array(sum.length);
    const end = m.starts[Math.max(0, Math.min(step, m.starts.length - 1))];
    for (let i = 0; i < end; i++) {
      const t = m.contributions[i];
      sum[t.o * m.pdom + t.q] += t.product;
      hit[t.o * m.pdom + t.q] = 1;
    }
    return {sum, hit};
  }

  /** The contributions of input element `element` (c*pin + e). */
  function elementContributions(m, element) {
    return m.contributions.slice(m.starts[element], m.starts[element + 1]);
  }

  /** The terms of output pixel (o, j): [[x index], [w index], product] each, and their sum. */
  function terms(m, o, j) {
    const yi = o * m.pout + flat(j, m.g.L);
    const list = m.contributions.filter(t => t.yi === yi);
    let sum = 0;
    for (const t of list) sum += t.product;
    return {list, sum, value: m.out[yi]};
  }

  /** Domain positions that reach output pixel j (the kept one, and border ones that fold onto it). */
  function domainSources(m, j) {
    const g = m.g, perDim = j.map((jj, dim) => {
      const qs = [];
      for (let q = 0; q < g.domain[dim]; q++) {
        if (sourceIndex(q - g.pads[dim][0], g.L[dim], g.mode) === jj) qs.push(q);
      }
      return qs;
    });
    let combos = [[]];
    for (const qs of perDim) combos = combos.flatMap(c => qs.map(q => [...c, q]));
    return combos;
  }

  /** Per dimension: the border positions of the domain and where each goes (fold) or that it is cut. */
  function foldMap(g) {
    return g.domain.map((D, dim) => {
      const b = g.pads[dim][0], L = g.L[dim], moves = [];
      for (let q = 0; q < D; q++) {
        if (q >= b && q < b + L) continue;
        moves.push([q, sourceIndex(q - b, L, g.mode)]);
      }
      return moves;
    });
  }

  /** The zero-insertion view for input channel c: the processing image and its mask. */
  function zeroInsertion(m, c) {
    const g = m.g;
    const dil = g.n.map((ni, i) => (ni - 1) * g.s[i] + 1);
    const size = dil.map((v, i) => v + g.border[i][0] + g.border[i][1]);
    const image = new Float64Array(prod(size)), isInput = new Array(image.length).fill(false);
    m.nIdx.forEach((idx, e) => {
      const u = idx.map((i, dim) => i * g.s[dim] + g.border[dim][0]);
      if (u.every((v, dim) => v >= 0 && v < size[dim])) {
        const f = flat(u, size);
        image[f] = m.x[c * m.pin + e];
        isInput[f] = true;
      }
    });
    return {dil, size, image, isInput};
  }

  /** w[c, og] flipped in every dimension and dilated (zeros between taps): flat, shape g.span. */
  function flippedDilated(m, c, og) {
    const g = m.g, kernel = new Float64Array(prod(g.span)), isTap = new Array(kernel.length).fill(false);
    m.kIdx.forEach((t, ti) => {
      const u = t.map((tt, dim) => (g.k[dim] - 1 - tt) * g.d[dim]);
      const f = flat(u, g.span);
      kernel[f] = m.w[(c * g.cl + og) * m.ptap + ti];
      isTap[f] = true;
    });
    return {kernel, isTap};
  }

  /** explainer.steps.overlap: kernel taps per output position mod stride, in the interior. */
  function overlap(k, s, d) {
    const counts = new Array(s).fill(0);
    for (let t = 0; t < k; t++) counts[(t * d) % s] += 1;
    return {kernel: k, stride: s, dilation: d, counts, even: new Set(counts).size === 1};
  }

  const UNEVEN = 'uneven coverage: neighbouring outputs get different numbers of taps, the source of ' +
    'checkerboard artifacts (Odena et al., Distill 2016); use a kernel divisible by the stride';

  /** Taps per output pixel (one channel in and out) and the verdict of `tconv overlap`. */
  function coverage(m) {
    const g = m.g, taps = new Array(m.pout).fill(0);
    for (const t of m.contributions) {
      if (t.c === 0 && t.og === 0 && t.yi >= 0) taps[t.yi] += 1;
    }
    const perDim = g.k.map((k, i) => overlap(k, g.s[i], g.d[i]));
    const even = perDim.every(o => o.even);
    return {taps, perDim, even, verdict: even ? 'even coverage' : UNEVEN};
  }

  /** The output-size formula per dimension, in tconv's words (explainer.steps.SizeFormula.text). */
  function formulaLines(g) {
    return g.n.map((n, i) => `(${n}-1)*${g.s[i]} - ${g.pads[i][0]} - ${g.pads[i][1]} + ` +
      `${g.d[i]}*(${g.k[i]}-1) + ${g.extra[i]} + 1 = ${g.L[i]}`);
  }

  return {
    MODES, LIMITS, RuleError, PyFloat, repr, pyValue, intTuple, paddingPairs, samePads, sourceIndex,
    geometry, checkLimits, compute, running, elementContributions, terms, domainSources, foldMap,
    zeroInsertion, flippedDilated, overlap, coverage, formulaLines, prod, indices, unflat, flat, nest,
    UNEVEN,
  };
})();
