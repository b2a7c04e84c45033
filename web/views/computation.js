// computation.js: view 7, the rotation of one pair at position m with live numbers: the inputs,
// the cos and sin the module used (read back by rotating the unit vector (1, 0) of that pair:
// the module's cached values, attention scaling included), the formula, the module's output, and
// the call timings and cache state.

import { fixed, formatTime, sig } from './format.js';

/** A factor of a product: negative ones in parentheses, so "a − (−b)" never reads "a − −b". */
const factor = (v) => (v < 0 ? `(${fixed(v, 4)})` : fixed(v, 4));

export function createComputation() {
  const root = document.getElementById('computation');
  return {
    render(state, frame) {
      const { unit, q, qr, attentionScaling, cacheInfo, timings } = frame;
      const { pair, a, b, cos, sin } = unit;
      const theta = frame.theta[pair];
      const x1 = q[a];
      const x2 = q[b];
      const y1 = x1 * cos - x2 * sin;
      const y2 = x2 * cos + x1 * sin;
      const s = attentionScaling !== 1 ? ` (× attention scaling ${sig(attentionScaling, 4)})` : '';
      root.dataset.cos = String(cos);
      root.dataset.sin = String(sin);
      root.dataset.y1 = String(qr[a]);
      root.dataset.y2 = String(qr[b]);
      root.innerHTML = `
        <p>Pair <var>i</var> = ${pair} is features ${a} and ${b} of <var>q</var> (${frame.pairing} pairing).
          θ<sub>${pair}</sub> = ${sig(theta, 6)} rad per position, so at <var>m</var> = ${state.m} the angle is
          ${state.m} × ${sig(theta, 6)} = ${sig(state.m * theta, 6)} rad.</p>
        <div class="formula">
          <div>cos = <b>${fixed(cos, 6)}</b>, sin = <b>${fixed(sin, 6)}</b>${s} <span class="muted">the module's cached values</span></div>
          <div><var>x</var><sub>1</sub> = q[${a}] = ${fixed(x1, 6)}, <var>x</var><sub>2</sub> = q[${b}] = ${fixed(x2, 6)}</div>
          <div><span class="term"><var>y</var><sub>1</sub> = <var>x</var><sub>1</sub> cos − <var>x</var><sub>2</sub> sin</span>
            <span class="term">= ${factor(x1)} × ${factor(cos)} − ${factor(x2)} × ${factor(sin)}</span>
            <span class="term">= ${fixed(y1, 6)};</span> <span class="term">module: <b>${fixed(qr[a], 6)}</b></span></div>
          <div><span class="term"><var>y</var><sub>2</sub> = <var>x</var><sub>2</sub> cos + <var>x</var><sub>1</sub> sin</span>
            <span class="term">= ${factor(x2)} × ${factor(cos)} + ${factor(x1)} × ${factor(sin)}</span>
            <span class="term">= ${fixed(y2, 6)};</span> <span class="term">module: <b>${fixed(qr[b], 6)}</b></span></div>
        </div>
        <p class="note">The module's cos/sin cache holds positions ${cacheInfo.first} to ${cacheInfo.first + cacheInfo.rows - 1}
          (${cacheInfo.rows} rows; ${cacheInfo.rowsComputed} computed by this embedding).
          <code>rope.apply</code> of <var>q</var> at <var>m</var> and <var>k</var> at <var>n</var>: ${formatTime(timings.applyMs)};
          of the unit vector: ${formatTime(timings.unitMs)}.</p>`;
    },
  };
}
