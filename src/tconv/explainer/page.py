"""One self-contained HTML page (no network, no server) to step through a 2-d transposed convolution.

A person sets input size, kernel size, stride, padding, output_padding and dilation, and steps through
the scatter view one input element at a time; the page shows the size formula, the running sum with
the landing region shaded and the crop, and the output. It starts from an :class:`Explanation`'s
input and kernel (values embedded); other sizes use the values 1..n.

The page's arithmetic — the output-size formula, the output_padding rule and the scatter itself — is
tconv's one deliberate second implementation of those rules, in JavaScript: the page works offline
from disk, with no Python behind it, so it cannot call :mod:`tconv.core.shapes`. The tests keep the
two in step by changing the page's controls in headless Chromium and checking its numbers (and its
refusals) against tconv's.

For tests and links, the URL fragment can set controls as a person would (each is set and its
``input`` event fired): ``page.html#stride=2&padding=1&step=3``.
"""

from __future__ import annotations

import json

from .steps import Explanation

_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>tconv: transposed convolution, step by step</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.controls label { display: inline-block; margin: 0 1em 0.5em 0; }
.controls input { width: 4em; }
table.grid { border-collapse: collapse; margin: 0.3em 1.5em 1em 0; display: inline-table; }
table.grid td { border: 1px solid #999; min-width: 2.2em; height: 2em; text-align: center;
  font-family: monospace; }
td.land { background: #fdd49e; } td.src { background: #fdae6b; } td.cut { color: #aaa;
  background: #f0f0f0; }
.panel { display: inline-block; vertical-align: top; }
#formula { font-family: monospace; white-space: pre; }
</style></head><body>
<h1>Transposed convolution, step by step</h1>
<p>Each input element is multiplied by the kernel and added into the output at
<code>index &times; stride</code> (the scatter view); the output then loses <code>padding</code>
pixels at each border and gains <code>output_padding</code> at the end. Grey cells are cropped.</p>
<div class="controls">
<label>input rows <input id="in_h" type="number" min="1" max="8"></label>
<label>input cols <input id="in_w" type="number" min="1" max="8"></label>
<label>kernel <input id="k" type="number" min="1" max="6"></label>
<label>stride <input id="stride" type="number" min="1" max="5"></label>
<label>padding <input id="padding" type="number" min="0" max="6"></label>
<label>output_padding <input id="output_padding" type="number" min="0" max="4"></label>
<label>dilation <input id="dilation" type="number" min="1" max="4"></label>
<label>step <input id="step" type="range" min="0" max="4"> <span id="step_text"></span></label>
</div>
<div id="error" style="color: crimson"></div>
<div id="formula"></div>
<div class="panel"><h3>input x</h3><div id="input"></div></div>
<div class="panel"><h3>kernel w</h3><div id="kernel"></div></div>
<div class="panel"><h3>full scatter (running sum)</h3><div id="running"></div></div>
<div class="panel"><h3>output y</h3><div id="output"></div></div>
<pre id="output-json" hidden></pre>
<script>
const START = __START__;
const $ = id => document.getElementById(id);
function values(rows, cols, given) {
  if (given && given.length === rows && given[0].length === cols) return given;
  const a = []; let v = 1;
  for (let i = 0; i < rows; i++) { const r = []; for (let j = 0; j < cols; j++) r.push(v++); a.push(r); }
  return a;
}
function table(a, cls) {
  let h = '<table class="grid">';
  a.forEach((row, i) => { h += '<tr>' + row.map((v, j) =>
    `<td class="${cls ? cls(i, j) : ''}">${+v.toPrecision(6)}</td>`).join('') + '</tr>'; });
  return h + '</table>';
}
function read() {
  const g = id => parseInt($(id).value, 10);
  return {h: g('in_h'), w: g('in_w'), k: g('k'), s: g('stride'), p: g('padding'),
          op: g('output_padding'), d: g('dilation'), step: g('step')};
}
function render() {
  const c = read();
  const x = values(c.h, c.w, START.input), w = values(c.k, c.k, START.kernel);
  const span = c.d * (c.k - 1) + 1;
  const fh = (c.h - 1) * c.s + span + c.op, fw = (c.w - 1) * c.s + span + c.op;
  const oh = fh - 2 * c.p, ow = fw - 2 * c.p;
  $('error').textContent = '';
  if (c.op >= c.s && c.op >= c.d) { $('error').textContent =
    'output_padding must be smaller than stride or dilation'; return; }
  if (oh < 1 || ow < 1) { $('error').textContent = 'the output would be empty'; return; }
  const n = c.h * c.w; $('step').max = n; const step = Math.min(c.step, n);
  $('step_text').textContent = `${step} of ${n} input elements added`;
  $('formula').textContent =
    `rows: (${c.h}-1)*${c.s} - ${c.p} - ${c.p} + ${c.d}*(${c.k}-1) + ${c.op} + 1 = ${oh}\n` +
    `cols: (${c.w}-1)*${c.s} - ${c.p} - ${c.p} + ${c.d}*(${c.k}-1) + ${c.op} + 1 = ${ow}`;
  const run = Array.from({length: fh}, () => new Array(fw).fill(0));
  const full = Array.from({length: fh}, () => new Array(fw).fill(0));
  let last = null;
  for (let e = 0; e < n; e++) {
    const i = Math.floor(e / c.w), j = e % c.w;
    for (let a = 0; a < c.k; a++) for (let b = 0; b < c.k; b++) {
      const r = i * c.s + a * c.d, q = j * c.s + b * c.d, v = x[i][j] * w[a][b];
      full[r][q] += v; if (e < step) run[r][q] += v;
    }
    if (e === step - 1) last = [i, j];
  }
  const landed = (r, q) => last && r >= last[0] * c.s && r < last[0] * c.s + span &&
    q >= last[1] * c.s && q < last[1] * c.s + span && (r - last[0] * c.s) % c.d === 0 &&
    (q - last[1] * c.s) % c.d === 0;
  const cut = (r, q) => r < c.p || q < c.p || r >= c.p + oh || q >= c.p + ow;
  const y = []; for (let r = 0; r < oh; r++) y.push(full.slice(c.p + r, c.p + r + 1)[0].slice(c.p, c.p + ow));
  $('input').innerHTML = table(x, (i, j) => last && i === last[0] && j === last[1] ? 'src' : '');
  $('kernel').innerHTML = table(w);
  $('running').innerHTML = table(run, (r, q) => landed(r, q) ? 'land' : (cut(r, q) ? 'cut' : ''));
  $('output').innerHTML = table(y);
  $('output-json').textContent = JSON.stringify(y);
}
for (const [id, v] of Object.entries(START.controls)) $(id).value = v;
document.querySelectorAll('input').forEach(el => el.addEventListener('input', render));
// a URL fragment sets controls as a person would: #stride=2&padding=1
for (const part of location.hash.slice(1).split('&').filter(Boolean)) {
  const [id, v] = part.split('=');
  if ($(id)) { $(id).value = v; $(id).dispatchEvent(new Event('input')); }
}
render();
</script></body></html>
"""


def page(e: Explanation) -> str:
    """The HTML page for ``e`` (a 2-d, one-channel, square-kernel explanation sets its start)."""
    if e.rank != 2 or e.input.shape[0] != 1 or e.weight.shape[:2] != (1, 1):
        raise ValueError("the page shows 2-d, one-channel problems: explain one input and one kernel")
    kh, kw = e.weight.shape[2:]
    if kh != kw or len({b for b, _ in e.pads} | {a for _, a in e.pads}) != 1 or \
            len(set(e.stride)) != 1 or len(set(e.dilation)) != 1 or len(set(e.output_padding)) != 1:
        raise ValueError("the page uses one kernel size, stride, padding, output_padding and "
                         "dilation for both dimensions")
    start = {
        "input": e.input[0].tolist(),
        "kernel": e.weight[0, 0].tolist(),
        "controls": {"in_h": e.input.shape[1], "in_w": e.input.shape[2], "k": kh,
                     "stride": e.stride[0], "padding": e.pads[0][0],
                     "output_padding": e.output_padding[0], "dilation": e.dilation[0],
                     "step": e.input.shape[1] * e.input.shape[2]},
    }
    return _PAGE.replace("__START__", json.dumps(start))


def write_page(e: Explanation, path: str) -> None:
    """Write :func:`page` to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page(e))
