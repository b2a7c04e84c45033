// pairing.js: view 5, which features form each rotation plane under 'half' and 'interleaved'.
// Both diagrams are drawn for a small dim (the current rotary dim when it is at most 16); the
// pairing in force is highlighted. The data table lists every pair of the current dim.

import { pairFeatures } from '../model.js';
import { dataTable } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
// Okabe–Ito, then repeated: one colour per plane.
const PAIR_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

function diagram(dim, pairing, active) {
  const cell = 26;
  const width = dim * cell + 8;
  const depthOf = (a, b) => 8 + Math.abs(b - a) * (dim / 2 > 4 ? 3 : 5);
  const maxDepth = pairing === 'half' ? depthOf(0, dim / 2) : depthOf(0, 1);
  const height = 28 + 0.75 * maxDepth + 6;  // a cubic with both controls at depth dips to 3/4 of it
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', `pair-diagram${active ? ' active' : ''}`);
  svg.setAttribute('role', 'img');
  const pairs = Array.from({ length: dim / 2 }, (_, i) => pairFeatures(i, dim, pairing));
  svg.setAttribute('aria-label', `${pairing} pairing for dim ${dim}: ${pairs.map(([a, b]) => `${a} with ${b}`).join(', ')}`);
  let html = '';
  pairs.forEach(([a, b], i) => {
    const colour = PAIR_COLOURS[i % PAIR_COLOURS.length];
    const xa = 4 + a * cell + cell / 2;
    const xb = 4 + b * cell + cell / 2;
    const depth = depthOf(a, b);
    html += `<path d="M ${xa} 28 C ${xa} ${28 + depth}, ${xb} ${28 + depth}, ${xb} 28" fill="none" stroke="${colour}" stroke-width="2.5"/>`;
    for (const f of [a, b]) {
      html += `<rect x="${4 + f * cell + 1}" y="4" width="${cell - 2}" height="22" rx="4" fill="${colour}" fill-opacity="0.22" stroke="${colour}" stroke-width="1.5"/>`
        + `<text x="${4 + f * cell + cell / 2}" y="19" text-anchor="middle" class="feature-label">${f}</text>`;
    }
  });
  svg.innerHTML = html;
  return svg;
}

export function createPairing() {
  const root = document.getElementById('pairing-diagram');
  const table = dataTable(document.getElementById('pairing-data'), 'The features of each plane, for the current rotary dim');
  let key = '';

  return {
    render(state, frame) {
      const { dim, pairing } = frame;
      const shown = dim <= 16 ? dim : 8;
      const k = `${shown}:${pairing}:${dim}`;
      root.dataset.pairing = pairing;
      root.dataset.pairs = frame.pairs.slice(0, 4).map((p) => `${p.a}-${p.b}`).join(' ');
      if (k !== key) {
        key = k;
        const blocks = ['half', 'interleaved'].map((p) => {
          const figure = document.createElement('figure');
          figure.className = `pair-figure${p === pairing ? ' active' : ''}`;
          const caption = document.createElement('figcaption');
          caption.innerHTML = `<strong>${p}</strong>${p === pairing ? ' (in use)' : ''}: `
            + (p === 'half' ? 'feature <var>i</var> with <var>i</var> + <var>d</var>/2' : 'feature 2<var>i</var> with 2<var>i</var> + 1');
          figure.append(caption, diagram(shown, p, p === pairing));
          return figure;
        });
        const note = document.createElement('p');
        note.className = 'note';
        note.textContent = shown === dim
          ? `Drawn for the current rotary dim d = ${dim}.`
          : `Drawn for d = 8; with the current d = ${dim}, pair 0 is features ${frame.pairs[0].a} and ${frame.pairs[0].b}, pair 1 is ${frame.pairs[1].a} and ${frame.pairs[1].b}.`;
        root.replaceChildren(...blocks, note);
      }
      table(() => ({
        head: ['pair', 'feature a', 'feature b'],
        rows: frame.pairs.map((p) => [String(p.i), String(p.a), String(p.b)]),
      }));
    },
  };
}
