/* tconv explainer, code panel: the page's layer in PyTorch, Keras, ONNX and JAX, and its size formula.
 *
 * tconvCode(params) -> {torch, keras, onnx, jax, formula}: source text. It mirrors, in JavaScript
 * (the page works offline, with no Python behind it), what tconv.interop.convert does with
 *   convert(params, "tconv", target, input_shape=(1, in_channels, *input_size))
 * - the target's own arguments, written as Conversion.call writes them;
 * - the fixup (per dimension (before, after): crop +, append bias-valued pixels -) as code;
 * - convert's refusals in its own words, as a comment line ("# keras: convert: ...").
 * padding_mode circular/reflect/replicate exists in no framework's transposed convolution (convert
 * refuses it): each text says so and computes tconv's definition instead, the zeros layer with no
 * padding (the padded domain) followed by the fold of its border (tconv.core.padding.fold), as code.
 *
 * Every snippet works on the page's arrays in PyTorch's layout: x (N, C_in, *in), w (C_in,
 * C_out/groups, *k), b (C_out,) (NumPy, float32); the torch text's first line is the expression that
 * builds the module (tests eval it with nn = torch.nn), the lines after it use it as `layer` and x as
 * a tensor. tests/test_page_code.py runs this file in headless Chromium and checks every text against
 * convert() and the frameworks themselves.
 */
var tconvCode = (function () {
  "use strict";

  var MODES = ["zeros", "circular", "reflect", "replicate"];

  // ------------------------------------------------------------------ Python's repr

  function tuple(values) {
    return values.length === 1 ? "(" + values[0] + ",)" : "(" + values.join(", ") + ")";
  }

  function list(values) {
    return "[" + values.join(", ") + "]";
  }

  function pairs(ps) {
    return tuple(ps.map(tuple));
  }

  function str(s) {
    return "'" + s + "'";
  }

  function repr(v) {
    if (v === null || v === undefined) return "None";
    if (v === true) return "True";
    if (v === false) return "False";
    if (typeof v === "string") return str(v);
    if (Array.isArray(v)) return tuple(v.map(repr));
    if (v && v.list) return list(v.list.map(repr));
    return String(v);
  }

  function kwargs(params) {
    return Object.keys(params).map(function (k) { return k + "=" + repr(params[k]); }).join(", ");
  }

  function sum(a) {
    return a.reduce(function (s, v) { return s + v; }, 0);
  }

  // ------------------------------------------------------------------ tconv's arithmetic

  function span(k, d) { return d * (k - 1) + 1; }                       // effective_kernel
  function fullSize(n, k, s, d) { return (n - 1) * s + span(k, d); }    // full_size
  function opLimit(s, d) { return Math.max(s, d); }                     // output_padding_limit

  function samePads(L, k, s, d) {                                       // same_pads
    var n = Math.ceil(L / s);
    var total = Math.max((n - 1) * s + span(k, d) - L, 0);
    var before = Math.floor(total / 2);
    return [before, total - before];
  }

  function sameTransposed(n, k, s, d) {                                 // same_transposed
    var pads = samePads(n * s, k, s, d);
    return [pads, n * s - (fullSize(n, k, s, d) - pads[0] - pads[1])];
  }

  // ------------------------------------------------------------------ reading the page's params

  function fail(message) {
    var e = new Error(message);
    e.convert = true;
    throw e;
  }

  function perDim(name, value, rank, minimum) {
    // int_tuple("convert: tconv", name, value, rank, minimum)
    var values = Array.isArray(value) ? value.slice() : [];
    if (typeof value === "number") for (var i = 0; i < rank; i++) values.push(value);
    if (values.length !== rank || !values.every(Number.isInteger)) {
      fail("convert: tconv: " + name + " must be an int or a tuple of " + rank + " ints (one per " +
           "spatial dimension), got " + JSON.stringify(value));
    }
    if (values.some(function (v) { return v < minimum; })) {
      fail("convert: tconv: " + name + " must be " + (minimum === 1 ? "positive" : "non-negative") +
           " in every dimension, got " + name + "=" + tuple(values));
    }
    return values;
  }

  function paddingOf(value, rank) {
    // padding_pairs("convert: tconv", padding, rank): 'same', or one (before, after) pair per dimension
    if (value === "same" || value === "valid") return value;
    if (Array.isArray(value) && value.length === rank && value.every(function (v) { return v === "same"; })) {
      return "same";
    }
    var ps = null;
    if (Number.isInteger(value)) {
      ps = [];
      for (var i = 0; i < rank; i++) ps.push([value, value]);
    } else if (Array.isArray(value) && value.length === rank) {
      ps = value.map(function (p) {
        if (Number.isInteger(p)) return [p, p];
        if (Array.isArray(p) && p.length === 2 && p.every(Number.isInteger)) return p.slice();
        return null;
      });
      if (ps.some(function (p) { return p === null; })) ps = null;
    }
    if (ps === null) {
      fail("convert: tconv: padding must give each of the " + rank + " spatial dimensions an int or a " +
           "(before, after) pair of ints, got " + JSON.stringify(value));
    }
    if (ps.some(function (p) { return p[0] < 0 || p[1] < 0; })) {
      fail("convert: tconv: padding must be non-negative, got padding=" +
           repr(value));
    }
    return ps;
  }

  /* The layer as tconv.interop.convert reads it (Canonical: crop (before, after) of the full scatter),
   * with the checks convert makes, in its order and words. For a padding mode other than zeros,
   * `mode` says the refusal and `fold` the border to fold; the canonical layer is then the zeros layer
   * without padding (crop (0, -output_padding)) that computes the padded domain. */
  function read(params) {
    var rank = params.rank === 1 || params.rank === 2 ? params.rank :
      (Array.isArray(params.kernel_size) ? params.kernel_size.length : 2);
    var n = Array.isArray(params.input_size) ? params.input_size :
      range(0, rank).map(function () { return params.input_size; });
    var cin = params.in_channels === undefined ? 1 : params.in_channels;
    var shape = [1, cin].concat(n);
    if (!shape.every(function (v) { return Number.isInteger(v) && v > 0; }) || n.length !== rank) {
      fail("convert: input_shape must be a tuple of positive ints, got " + tuple(shape));
    }
    var groups = perDim("groups", params.groups === undefined ? 1 : params.groups, 1, 1)[0];
    var kernel = perDim("kernel_size", params.kernel_size, rank, 1);
    var cout = perDim("out_channels", params.out_channels === undefined ? 1 : params.out_channels, 1, 1)[0];
    var stride = perDim("stride", params.stride === undefined ? 1 : params.stride, rank, 1);
    var dilation = perDim("dilation", params.dilation === undefined ? 1 : params.dilation, rank, 1);
    var op = perDim("output_padding", params.output_padding === undefined ? 0 : params.output_padding,
                    rank, 0);
    var modeName = params.padding_mode === undefined ? "zeros" : params.padding_mode;
    if (MODES.indexOf(modeName) < 0) {
      fail("convert: tconv: padding_mode must be one of ('zeros', 'circular', 'reflect', 'replicate'), " +
           "got " + repr(String(modeName)));
    }
    var mode = modeName === "zeros" ? null :
      "convert: only padding_mode='zeros' exists in every framework, got padding_mode=" + str(modeName);
    if (op.some(function (o, i) { return o >= opLimit(stride[i], dilation[i]); })) {
      fail("convert: tconv: output_padding must be smaller than either stride or dilation in every " +
           "dimension, got output_padding=" + tuple(op) + ", stride=" + tuple(stride) + ", dilation=" +
           tuple(dilation));
    }
    var pads = paddingOf(params.padding === undefined ? 0 : params.padding, rank);
    var same = pads === "same";
    if (pads === "valid") pads = n.map(function () { return [0, 0]; });
    var extra = op;
    if (same) {
      if (op.some(function (o) { return o !== 0; })) {
        fail("convert: tconv output_padding must be 0 with padding='same'");
      }
      var st = n.map(function (ni, i) { return sameTransposed(ni, kernel[i], stride[i], dilation[i]); });
      pads = st.map(function (t) { return t[0]; });
      extra = st.map(function (t) { return t[1]; });
    }
    [["in_channels", cin], ["out_channels", cout]].forEach(function (nc) {
      if (nc[1] % groups) {
        fail("convert: tconv " + nc[0] + " (" + nc[1] + ") must be divisible by groups (" + groups + ")");
      }
    });
    var full = n.map(function (ni, i) { return fullSize(ni, kernel[i], stride[i], dilation[i]); });
    var out = full.map(function (f, i) { return f - pads[i][0] - pads[i][1] + extra[i]; });
    if (Math.min.apply(null, out) < 1) {
      fail("convert: the tconv layer gives an empty output for input_shape " + tuple(shape));
    }
    if (mode) {  // tconv.core.padding.check_pads, as conv_transpose says it
      pads.forEach(function (p, i) {
        var widest = Math.max(p[0], p[1]);
        if (modeName === "reflect" && widest >= out[i]) {
          fail("conv_transpose: padding_mode='reflect' needs padding smaller than the padded size in " +
               "every dimension, got padding " + tuple(p) + " for size " + out[i] + " in dimension " + i);
        }
        if (modeName === "circular" && widest > out[i]) {
          fail("conv_transpose: padding_mode='circular' needs padding no larger than the padded size " +
               "in every dimension, got padding " + tuple(p) + " for size " + out[i] + " in dimension " + i);
        }
      });
    }
    var crop = pads.map(function (p, i) { return mode ? [0, -extra[i]] : [p[0], p[1] - extra[i]]; });
    return {
      rank: rank, n: n, in_channels: cin, out_channels: cout, groups: groups, kernel: kernel,
      stride: stride, dilation: dilation, crop: crop, bias: params.bias !== false, pads: pads,
      extra: extra, same: same, out: out, full: full, modeName: modeName, mode: mode,
    };
  }

  // ------------------------------------------------------------------ convert's _write, per target

  function kerasCrop(k, s, d, padding, op) {  // _keras_crop (Keras 3)
    var e = span(k, d), lo, hi;
    if (padding === "valid") {
      op = op === null ? Math.max(e, s) - e : op;
      lo = e - 1;
      hi = e - 1 + op;
    } else {
      var padLen = op === null ? s + e - 2 : e + (e % 2) - 2 + op;
      lo = Math.min(Math.floor(padLen / 2) + (padLen % 2), e - 1);
      hi = padLen - lo;
    }
    return [e - 1 - lo, e - 1 - hi];
  }

  function distance(got, want) {  // _distance
    var cuts = got.some(function (g, i) {
      return g[0] > Math.max(want[i][0], 0) || g[1] > Math.max(want[i][1], 0);
    });
    return (cuts ? 1 << 20 : 0) + sum(got.map(function (g, i) {
      return Math.abs(g[0] - want[i][0]) + Math.abs(g[1] - want[i][1]);
    }));
  }

  function lexLess(a, b) {
    for (var i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) return a[i] < b[i];
    }
    return false;
  }

  /* {params, got} (the target's arguments and the crop they give), or {error}. */
  function write(c, target) {
    var dims = c.kernel.map(function (k, i) { return [k, c.stride[i], c.dilation[i], c.crop[i]]; });
    if ((target === "keras" || target === "jax") && c.groups !== 1) {
      return {error: "convert: " + target + " has no grouped transposed convolution (groups=" + c.groups + ")"};
    }
    if (target === "onnx") {
      var pads = [], ops = [];
      dims.forEach(function (t) {
        var b = t[3][0], a = t[3][1];
        pads.push([Math.max(b, 0), Math.max(a, 0)]);
        ops.push(Math.min(Math.max(-a, 0), t[1] - 1));  // ONNX Runtime: output_padding < stride
      });
      return {
        params: {
          kernel_shape: {list: c.kernel}, strides: {list: c.stride},
          pads: {list: pads.map(function (p) { return p[0]; }).concat(pads.map(function (p) { return p[1]; }))},
          output_padding: {list: ops}, dilations: {list: c.dilation}, group: c.groups,
        },
        got: pads.map(function (p, i) { return [p[0], p[1] - ops[i]]; }),
      };
    }
    if (target === "torch") {
      var ps = [], tops = [], got = [];
      dims.forEach(function (t) {
        var s = t[1], d = t[2], b = t[3][0], a = t[3][1], best = null;
        for (var p = 0; p <= Math.max(b, 0); p++) {
          for (var o = 0; o < opLimit(s, d); o++) {
            var g = [p, p - o];
            if (g[1] <= a || g[1] <= 0) {
              var score = [Math.abs(g[0] - b) + Math.abs(g[1] - a), -p];
              if (best === null || lexLess(score, best[0])) best = [score, p, o, g];
            }
          }
        }
        ps.push(best[1]);
        tops.push(best[2]);
        got.push(best[3]);
      });
      return {
        params: {
          in_channels: c.in_channels, out_channels: c.out_channels, kernel_size: c.kernel,
          stride: c.stride, padding: ps, output_padding: tops, groups: c.groups, bias: c.bias,
          dilation: c.dilation,
        },
        got: got,
      };
    }
    if (target === "keras") {
      if (c.stride.some(function (s) { return s > 1; }) && c.dilation.some(function (d) { return d > 1; })) {
        return {error: "convert: keras refuses strides > 1 with dilation_rate > 1 (strides=" + tuple(c.stride) +
                       ", dilation_rate=" + tuple(c.dilation) + ")"};
      }
      var options = [];
      ["same", "valid"].forEach(function (padding) {
        var g1 = dims.map(function (t) { return kerasCrop(t[0], t[1], t[2], padding, null); });
        options.push([distance(g1, c.crop), padding, null, g1]);
        var kops = dims.map(function (t) {
          var bestO = 0, bestKey = null;
          for (var o = 0; o < t[1]; o++) {
            var key = [distance([kerasCrop(t[0], t[1], t[2], padding, o)], [t[3]]), o];
            if (bestKey === null || lexLess(key, bestKey)) {
              bestKey = key;
              bestO = o;
            }
          }
          return bestO;
        });
        var g2 = dims.map(function (t, i) { return kerasCrop(t[0], t[1], t[2], padding, kops[i]); });
        options.push([distance(g2, c.crop), padding, kops, g2]);
      });
      var chosen = null, chosenKey = null;
      options.forEach(function (opt) {
        var key = [opt[0], opt[1] !== "same" ? 1 : 0, opt[2] !== null ? 1 : 0];
        if (chosenKey === null || lexLess(key, chosenKey)) {
          chosenKey = key;
          chosen = opt;
        }
      });
      return {
        params: {
          filters: c.out_channels, kernel_size: c.kernel, strides: c.stride, padding: chosen[1],
          output_padding: chosen[2], data_format: "channels_last", dilation_rate: c.dilation,
          use_bias: c.bias,
        },
        got: chosen[3],
      };
    }
    // jax: explicit (lo, hi) pairs on the zero-inserted input, channels-first, PyTorch's weight as it is
    var sp = "DHW".slice(3 - c.rank);
    return {
      params: {
        strides: c.stride,
        padding: dims.map(function (t) { var e = span(t[0], t[2]); return [e - 1 - t[3][0], e - 1 - t[3][1]]; }),
        rhs_dilation: c.dilation,
        dimension_numbers: ["NC" + sp, "OI" + sp, "NC" + sp],
        transpose_kernel: true,
      },
      got: c.crop,
    };
  }

  function call(target, params, rank) {  // convert.call
    var args = kwargs(params);
    if (target === "torch") return "nn.ConvTranspose" + rank + "d(" + args + ")";
    if (target === "keras") return "keras.layers.Conv" + rank + "DTranspose(" + args + ")";
    if (target === "onnx") return 'onnx.helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], ' + args + ")";
    return "jax.lax.conv_transpose(x, w, " + args + ")";
  }

  // ------------------------------------------------------------------ array code, per library

  /* How each text's arrays are written: torch tensors, NumPy (onnx, keras after the layer) or jax.numpy. */
  var LIBS = {
    torch: {
      copy: function (e) { return e + ".clone()"; },
      add: function (target, e) { return target + " += " + e; },
      flip: function (e, axis) { return e + ".flip(" + axis + ")"; },
      sum: function (e, axis) { return e + ".sum(" + axis + ", keepdim=True)"; },
      pad: function (e, widths) {  // (before, after) per spatial dimension -> F.pad's reversed list
        var flat = [];
        widths.slice().reverse().forEach(function (w) { flat.push(w[0], w[1]); });
        return "torch.nn.functional.pad(" + e + ", " + tuple(flat) + ")";
      },
      bias: function (rank) { return "layer.bias.view(" + biasShape(rank) + ")"; },
    },
    np: {
      copy: function (e) { return e + ".copy()"; },
      add: function (target, e) { return target + " += " + e; },
      flip: function (e, axis) { return "np.flip(" + e + ", " + axis + ")"; },
      sum: function (e, axis) { return e + ".sum(" + axis + ", keepdims=True)"; },
      pad: function (e, widths) { return "np.pad(" + e + ", " + pairs([[0, 0], [0, 0]].concat(widths)) + ")"; },
      bias: function (rank) { return "b.reshape(" + biasShape(rank) + ")"; },
    },
    jnp: {
      copy: function (e) { return e; },
      add: function (target, e) {  // z[...] += e, functionally
        var at = target.replace(/^z\[/, "z.at[");
        return "z = " + at + ".add(" + e + ")";
      },
      flip: function (e, axis) { return "jnp.flip(" + e + ", " + axis + ")"; },
      sum: function (e, axis) { return e + ".sum(" + axis + ", keepdims=True)"; },
      pad: function (e, widths) { return "jnp.pad(" + e + ", " + pairs([[0, 0], [0, 0]].concat(widths)) + ")"; },
      bias: function (rank) { return "b.reshape(" + biasShape(rank) + ")"; },
    },
  };

  function biasShape(rank) {
    var s = ["-1"];
    for (var i = 0; i < rank; i++) s.push("1");
    return s.join(", ");
  }

  /* `name[..., lo:hi, :]`: a slice of spatial dimension i (channels-first). */
  function slice(name, rank, i, lo, hi) {
    var idx = ["...", lo + ":" + hi];
    for (var j = i + 1; j < rank; j++) idx.push(":");
    return name + "[" + idx.join(", ") + "]";
  }

  function shapeWords(sizes) {
    return "(N, " + sizes.join(", ") + ")";
  }

  function pl(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  /* The fixup as code on y (channels-first, spatial sizes `sizes`): crops by slicing, appended pixels
   * by padding `y - bias` (so that they hold the bias) or with zeros (`withBias` false). */
  function fixupCode(lib, c, fixup, sizes, withBias, target) {
    var lines = ["# " + target + " cannot express this window alone; crop (+) or append bias-valued " +
                 "pixels (-) to its output: " + pairs(fixup)];  // convert's note
    var cur = sizes.slice();
    var crops = fixup.map(function (f) { return [Math.max(f[0], 0), Math.max(f[1], 0)]; });
    if (crops.some(function (v) { return v[0] || v[1]; })) {
      var idx = [];
      crops.forEach(function (v, i) {
        idx.push(v[0] || v[1] ? v[0] + ":" + (cur[i] - v[1]) : ":");
        cur[i] -= v[0] + v[1];
      });
      while (idx[0] === ":") idx.shift();  // y[..., a:b, :]: the leading spatial axes whole
      lines.push("y = y[..., " + idx.join(", ") + "]  # crop: " + shapeWords([c.out_channels].concat(cur)));
    }
    var apps = fixup.map(function (f) { return [Math.max(-f[0], 0), Math.max(-f[1], 0)]; });
    if (apps.some(function (v) { return v[0] || v[1]; })) {
      apps.forEach(function (v, i) { cur[i] += v[0] + v[1]; });
      var words = shapeWords([c.out_channels].concat(cur));
      if (withBias) {
        lines.push("y = " + lib.pad("y - " + lib.bias(c.rank), apps) + " + " + lib.bias(c.rank) +
                   "  # append pixels holding the bias: " + words);
      } else {
        lines.push("y = " + lib.pad("y", apps) + "  # append zero pixels: " + words);
      }
    }
    return lines;
  }

  function pixels(first, last) {
    return first === last ? "pixel " + first : "pixels " + first + ".." + last;
  }

  /* tconv.core.padding.fold as code: y is the bias-free padded domain; each border pixel is added
   * onto the pixel the convolution with this padding mode copies it from. */
  function foldCode(lib, c) {
    var lines = [];
    var rank = c.rank;
    c.pads.forEach(function (p, i) {
      var pb = p[0], pa = p[1], L = c.out[i], axis = i - rank;
      if (!pb && !pa) return;
      var z = function (lo, hi) { return slice("z", rank, i, lo, hi); };
      var y = function (lo, hi) { return slice("y", rank, i, lo, hi); };
      lines.push("z = " + lib.copy(y(pb, pb + L)) + "  # dim " + i + ": the " + L +
                 " pixels inside the border " + tuple(p));
      if (c.modeName === "circular") {
        if (pb) lines.push(lib.add(z(L - pb, L), y(0, pb)) + "  # the " + pl(pb, "pixel") +
                           " before wrap onto the end");
        if (pa) lines.push(lib.add(z(0, pa), y(pb + L, pb + L + pa)) + "  # the " + pl(pa, "pixel") +
                           " after wrap onto the start");
      } else if (c.modeName === "reflect") {
        if (pb) lines.push(lib.add(z(1, pb + 1), lib.flip(y(0, pb), axis)) + "  # the " + pl(pb, "pixel") +
                           " before reflect onto " + pixels(1, pb));
        if (pa) lines.push(lib.add(z(L - 1 - pa, L - 1), lib.flip(y(pb + L, pb + L + pa), axis)) + "  # the " +
                           pl(pa, "pixel") + " after reflect onto " + pixels(L - 1 - pa, L - 2));
      } else {
        if (pb) lines.push(lib.add(z(0, 1), lib.sum(y(0, pb), axis)) + "  # the " + pl(pb, "pixel") +
                           " before add onto the first");
        if (pa) lines.push(lib.add(z(L - 1, L), lib.sum(y(pb + L, pb + L + pa), axis)) + "  # the " +
                           pl(pa, "pixel") + " after add onto the last");
      }
      lines.push("y = z");
    });
    return lines;
  }

  function modeLines(c, target) {
    return [
      "# " + target + ": " + c.mode,
      "# tconv's " + c.modeName + " mode is the exact adjoint of the " + c.modeName + " convolution: the " +
        "layer without padding computes the padded domain, then the border " + pairs(c.pads) +
        " is folded back onto the pixels it copies (tconv.core.padding.fold):",
    ];
  }

  function outWords(c) {
    return shapeWords([c.out_channels].concat(c.out));
  }

  function inWords(c) {
    return shapeWords([c.in_channels].concat(c.n));
  }

  /* After the target's own output y (channels-first, `hasBias`: whether it holds the bias): the fixup,
   * the fold for padding modes, the bias where the target adds none. */
  function tail(lib, c, w, target, hasBias) {
    var lines = [];
    var sizes = c.full.map(function (f, i) { return f - w.got[i][0] - w.got[i][1]; });
    var fixup = c.crop.map(function (want, i) { return [want[0] - w.got[i][0], want[1] - w.got[i][1]]; });
    var exact = fixup.every(function (f) { return f[0] === 0 && f[1] === 0; });
    if (c.mode) {
      if (hasBias && c.bias) lines.push("y = y - " + lib.bias(c.rank) + "  # the bias is added once, after the fold");
      if (!exact) lines = lines.concat(fixupCode(lib, c, fixup, sizes, false, target));
      lines = lines.concat(foldCode(lib, c));
      if (c.bias) lines.push("y = y + " + lib.bias(c.rank) + "  # " + outWords(c));
      return lines;
    }
    if (!hasBias && c.bias) {  // jax: fix up the bias-free output, then add the bias everywhere
      if (!exact) lines = lines.concat(fixupCode(lib, c, fixup, sizes, false, target));
      lines.push("y = y + " + lib.bias(c.rank) + "  # bias: lax.conv_transpose adds none; " + outWords(c));
      return lines;
    }
    if (!exact) lines = lines.concat(fixupCode(lib, c, fixup, sizes, c.bias, target));
    return lines;
  }

  function targetSizes(c, w) {
    return c.full.map(function (f, i) { return f - w.got[i][0] - w.got[i][1]; });
  }

  // ------------------------------------------------------------------ the four texts

  function torchText(c) {
    var w = write(c, "torch");
    var lines = [
      call("torch", w.params, c.rank),
      "# import torch; from torch import nn; layer = the module above, weight " +
        tuple([c.in_channels, c.out_channels / c.groups].concat(c.kernel)) + " (C_in, C_out/groups, *k)" +
        (c.bias ? ", bias (" + c.out_channels + ",)" : "") + "; x a tensor " + inWords(c),
    ];
    if (c.mode) lines = lines.concat(modeLines(c, "torch"));
    lines.push("y = layer(x)  # " + shapeWords([c.out_channels].concat(targetSizes(c, w))));
    return lines.concat(tail(LIBS.torch, c, w, "torch", true)).join("\n");
  }

  function refusal(target, c, w) {
    var lines = [];
    if (c.mode) lines.push("# " + target + ": " + c.mode);
    lines.push("# " + target + ": " + w.error);
    if (c.groups !== 1 && /grouped/.test(w.error)) {
      lines.push("# (the same layer: one layer per group on its C_in/groups input channels with " +
                 "C_out/groups outputs, outputs concatenated on the channel axis)");
    }
    return lines.join("\n");
  }

  function kerasText(c) {
    var w = write(c, "keras");
    if (w.error) return refusal("keras", c, w);
    var R = c.rank;
    var last = [0].concat(range(2, R + 2), [1]);          // channels-first -> channels-last
    var first = [0, R + 1].concat(range(1, R + 1));       // and back
    var kernel = range(2, R + 2).concat([1, 0]);          // (C_in, C_out, *k) -> (*k, C_out, C_in)
    var lines = ["import keras, numpy as np  # x " + inWords(c) + ", w " +
                 tuple([c.in_channels, c.out_channels].concat(c.kernel)) + ", b (" + c.out_channels +
                 ",): NumPy, PyTorch's layout"];
    if (c.mode) lines = lines.concat(modeLines(c, "keras"));
    lines.push("layer = " + call("keras", w.params, R));
    lines.push("layer.build(" + tuple(["None"].concat(c.n, [c.in_channels])) + ")  # channels-last (N, *in, C_in)");
    lines.push("layer.set_weights([w.transpose" + tuple(kernel) + (c.bias ? ", b" : "") +
               "])  # kernel (*k, C_out, C_in)");
    lines.push("y = keras.ops.convert_to_numpy(layer(x.transpose" + tuple(last) + ")).transpose" +
               tuple(first) + "  # channels-first again: " +
               shapeWords([c.out_channels].concat(targetSizes(c, w))));
    return lines.concat(tail(LIBS.np, c, w, "keras", true)).join("\n");
  }

  function onnxText(c) {
    var w = write(c, "onnx");
    var lines = ["import numpy as np, onnx, onnxruntime",
                 "from onnx import TensorProto, helper, numpy_helper",
                 "# x " + inWords(c) + ", W " + tuple([c.in_channels, c.out_channels / c.groups].concat(c.kernel)) +
                 " (C_in, C_out/groups, *k), B (" + c.out_channels + ",): float32 NumPy, PyTorch's layout"];
    if (c.mode) lines = lines.concat(modeLines(c, "onnx"));
    lines.push("node = " + call("onnx", w.params, c.rank));
    lines.push('graph = helper.make_graph([node], "tconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],');
    lines.push('                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],');
    lines.push('                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(' +
               (c.bias ? "b" : "np.zeros(" + c.out_channels + ", np.float32)") + ', "B")])');
    lines.push('model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)');
    lines.push('y = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]  # ' +
               shapeWords([c.out_channels].concat(targetSizes(c, w))));
    return lines.concat(tail(LIBS.np, c, w, "onnx", true)).join("\n");
  }

  function jaxText(c) {
    var w = write(c, "jax");
    if (w.error) return refusal("jax", c, w);
    var lines = ["import jax, jax.numpy as jnp  # x " + inWords(c) + ", w " +
                 tuple([c.in_channels, c.out_channels].concat(c.kernel)) + ", b (" + c.out_channels +
                 ",): PyTorch's layout",
                 "# w as it is: with transpose_kernel=True the kernel's O axis holds C_in, PyTorch's " +
                 "(C_in, C_out, *k), not flipped"];
    if (c.mode) lines = lines.concat(modeLines(c, "jax"));
    lines.push("y = " + call("jax", w.params, c.rank) + "  # " +
               shapeWords([c.out_channels].concat(targetSizes(c, w))));
    return lines.concat(tail(LIBS.jnp, c, w, "jax", false)).join("\n");
  }

  function range(a, b) {
    var r = [];
    for (var i = a; i < b; i++) r.push(i);
    return r;
  }

  // ------------------------------------------------------------------ the formula

  /* tconv explain's size formula, per dimension (SizeFormula.text), from whatever numbers the page
   * has (also when the layer is invalid: it shows why a size is empty). */
  function formula(params) {
    var lines = ["out = (in-1)*stride - pad_before - pad_after + dilation*(kernel-1) + output_padding + 1"];
    var rank = params.rank || (params.kernel_size || []).length;
    var get = function (key, dflt) {
      var v = params[key] === undefined ? dflt : params[key];
      if (typeof v === "number") v = range(0, rank).map(function () { return v; });
      return Array.isArray(v) ? v : null;
    };
    var n = get("input_size", 1), k = get("kernel_size", 1), s = get("stride", 1);
    var d = get("dilation", 1), op = get("output_padding", 0);
    var padding = params.padding === undefined ? 0 : params.padding;
    var same = padding === "same" || (Array.isArray(padding) && padding.length > 0 &&
                                      padding.every(function (p) { return p === "same"; }));
    var pads = same ? null : get("padding", 0);
    if (!n || !k || !s || !d || !op || (!same && !pads)) return lines.join("\n");
    for (var i = 0; i < rank; i++) {
      var ok = [n[i], k[i], s[i], d[i], op[i]].every(Number.isInteger) && s[i] > 0;
      var b, a, o = op[i];
      if (!ok) continue;
      if (same) {
        var st = sameTransposed(n[i], k[i], s[i], d[i]);
        b = st[0][0];
        a = st[0][1];
        o = st[1];
      } else {
        var p = pads[i];
        if (Array.isArray(p) && p.length === 2) {
          b = p[0];
          a = p[1];
        } else {
          b = a = p;
        }
        if (!Number.isInteger(b) || !Number.isInteger(a)) continue;
      }
      var size = (n[i] - 1) * s[i] - b - a + d[i] * (k[i] - 1) + o + 1;
      lines.push("dim " + i + ": (" + n[i] + "-1)*" + s[i] + " - " + b + " - " + a + " + " + d[i] + "*(" +
                 k[i] + "-1) + " + o + " + 1 = " + size);
    }
    if (same) {
      lines.push("padding='same': out = in*stride; pad_before, pad_after are the padding of the " +
                 "convolution that maps in*stride back to in (the odd pixel at the end); where the " +
                 "kernel is shorter than the stride, output_padding = stride - dilation*(kernel-1) - 1 " +
                 "pixels are appended");
    }
    var mode = params.padding_mode;
    if (mode && mode !== "zeros") {
      lines.push("padding_mode=" + str(mode) + ": the same sizes; the cropped border is folded back " +
                 "onto the pixels it copies instead of dropped");
    }
    return lines.join("\n");
  }

  // ------------------------------------------------------------------ tconvCode

  return function tconvCode(params) {
    var texts = {formula: formula(params || {})};
    var c;
    try {
      c = read(params || {});
    } catch (e) {
      if (!e.convert) throw e;
      ["torch", "keras", "onnx", "jax"].forEach(function (t) { texts[t] = "# " + t + ": " + e.message; });
      return texts;
    }
    texts.torch = torchText(c);
    texts.keras = kerasText(c);
    texts.onnx = onnxText(c);
    texts.jax = jaxText(c);
    return texts;
  };
})();
