// dials.js: view 1, one clock per feature pair with the rotated query (at m) and key (at n), the
// angle between them, and the arc of rotation angles training never reached. Each dial carries
// its numbers as data attributes (data-theta, data-rot-q, data-rot-k, data-between, data-features)
// for the tests and for anyone inspecting the page.

import { dataTable, fixed, sig } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const R = 40;

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent?.append(node);
  return node;
}

/** SVG arc path on the circle of radius r from angle a0 to a1 (radians, counter-clockwise, y up). */
function arc(r, a0, a1, wedge = false) {
  const sweep = a1 - a0;
  if (Math.abs(sweep) < 1e-9) return '';
  const large = Math.abs(sweep) > Math.PI ? 1 : 0;
  const x0 = r * Math.cos(a0);
  const y0 = -r * Math.sin(a0);
  const x1 = r * Math.cos(a1);
  const y1 = -r * Math.sin(a1);
  const dir = sweep > 0 ? 0 : 1;
  const path = `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 ${large} ${dir} ${x1.toFixed(2)} ${y1.toFixed(2)}`;
  return wedge ? `M 0 0 L ${x0.toFixed(2)} ${y0.toFixed(2)} ${path.slice(path.indexOf('A'))} Z` : path;
}

function makeDial() {
  const root = document.createElement('figure');
  root.className = 'dial';
  const svg = el('svg', { viewBox: '-48 -48 96 96', 'aria-hidden': 'true' });
  el('circle', { r: R, class: 'rim' }, svg);
  const unseen = el('path', { class: 'unseen' }, svg);
  const start = el('line', { class: 'start', x1: 0, y1: 0 }, svg);
  const between = el('path', { class: 'between' }, svg);
  const k = el('line', { class: 'vec k', x1: 0, y1: 0 }, svg);
  const q = el('line', { class: 'vec q', x1: 0, y1: 0 }, svg);
  const kTip = el('circle', { class: 'tip k', r: 3.2 }, svg);
  const qTip = el('circle', { class: 'tip q', r: 3.2 }, svg);
  const caption = document.createElement('figcaption');
  root.append(svg, caption);
  return { root, unseen, start, between, q, k, qTip, kTip, caption };
}

export function createDials({ getState }) {
  const container = document.getElementById('dials');
  const readout = document.getElementById('readout');
  const table = dataTable(document.getElementById('dials-data'), 'Each pair: rotated query and key, from the module');
  let dials = [];

  function render(state, frame) {
    const { pairs } = frame;
    while (dials.length < pairs.length) dials.push(makeDial());
    if (container.children.length !== pairs.length) container.replaceChildren(...dials.slice(0, pairs.length).map((d) => d.root));

    for (const p of pairs) {
      const d = dials[p.i];
      const scale = (R - 3) / Math.max(p.qNorm, p.kNorm, 1e-12);
      const qLen = Math.hypot(p.q[0], p.q[1]) * scale;
      const kLen = Math.hypot(p.k[0], p.k[1]) * scale;
      const qx = qLen * Math.cos(p.qAngle);
      const qy = -qLen * Math.sin(p.qAngle);
      const kx = kLen * Math.cos(p.kAngle);
      const ky = -kLen * Math.sin(p.kAngle);
      d.q.setAttribute('x2', qx.toFixed(2));
      d.q.setAttribute('y2', qy.toFixed(2));
      d.qTip.setAttribute('cx', qx.toFixed(2));
      d.qTip.setAttribute('cy', qy.toFixed(2));
      d.k.setAttribute('x2', kx.toFixed(2));
      d.k.setAttribute('y2', ky.toFixed(2));
      d.kTip.setAttribute('cx', kx.toFixed(2));
      d.kTip.setAttribute('cy', ky.toFixed(2));
      d.between.setAttribute('d', arc(14, p.kAngle, p.kAngle + p.between, true));

      // Training turned pair i through at most (train − 1)·θ_i (unscaled). Past that, up to a
      // full turn, are rotations the model never saw: shaded from q's unrotated direction.
      const q0 = p.qAngle - p.rotQ;
      const seen = (state.train - 1) * p.thetaPlain;
      const turned = state.m * p.theta;
      const unseenArc = seen < 2 * Math.PI;
      d.unseen.setAttribute('d', unseenArc ? arc(R, q0 + seen, q0 + 2 * Math.PI, true) : '');
      d.start.setAttribute('x2', (R * Math.cos(q0)).toFixed(2));
      d.start.setAttribute('y2', (-R * Math.sin(q0)).toFixed(2));
      const outside = unseenArc && turned > seen + 1e-9;
      d.root.classList.toggle('outside', outside);

      const period = 2 * Math.PI / p.theta;
      const caption = `<b>${p.i}</b> <span>θ ${p.theta < 0.01 ? p.theta.toExponential(1).replace('e-', 'e−') : sig(p.theta, 2)}</span>`;
      if (d.captionHtml !== caption) {
        d.caption.innerHTML = caption;
        d.captionHtml = caption;
      }
      const title = `Pair ${p.i}: features ${p.a} and ${p.b}; θ = ${sig(p.theta)} rad per position, wavelength ${sig(period)} positions`;
      if (d.title !== title) {
        d.root.title = title;
        d.title = title;
      }
      Object.assign(d.root.dataset, {
        pair: String(p.i), features: `${p.a},${p.b}`, theta: String(p.theta),
        rotQ: String(p.rotQ), rotK: String(p.rotK), between: String(p.between), dot: String(p.dot),
        outside: String(outside),
      });
    }

    const delta = state.m - state.n;
    readout.dataset.qk = String(frame.qk);
    readout.innerHTML = `<var>m</var>&nbsp;=&nbsp;${state.m}, <var>n</var>&nbsp;=&nbsp;${state.n}, `
      + `<var>m</var>&nbsp;−&nbsp;<var>n</var>&nbsp;=&nbsp;${delta}: `
      + `<strong><var>q</var>·<var>k</var>&nbsp;=&nbsp;<span id="qk">${fixed(frame.qk, 5)}</span></strong>`
      + ` <span class="muted">(without RoPE ${fixed(frame.qkRaw, 4)}; ${frame.dim} of ${frame.hd} features rotated`
      + `${frame.dim < frame.hd ? `, the others add ${fixed(frame.passDot, 4)}` : ''})</span>`;

    table(() => ({
      head: ['pair', 'features', 'θ', 'q rotated by (rad)', 'k rotated by (rad)', 'angle between (°)', 'q·k part'],
      rows: pairs.map((p) => [String(p.i), `${p.a}, ${p.b}`, sig(p.theta), fixed(p.rotQ, 4), fixed(p.rotK, 4),
        fixed(p.between * 180 / Math.PI, 2), fixed(p.dot, 4)]),
    }));
  }

  void getState;
  return { render };
}
