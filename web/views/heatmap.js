// heatmap.js: view 3, the m × n score heatmap. Rows are query positions, columns key positions,
// on a grid of at most 512 positions spaced range/512 apart. The scores come from the worker (one
// rope.scores call of the module); hovering or the arrow keys set m and n.

import { colours, dataTable, fixed } from './format.js';

// A diverging palette safe for colour-blind readers (ColorBrewer PuOr): purple < 0 < orange.
const STOPS = [[45, 0, 75], [128, 115, 172], [247, 247, 247], [224, 130, 20], [127, 59, 8]];
const LUT = new Uint8Array(256 * 3);
for (let i = 0; i < 256; i++) {
  const t = (i / 255) * (STOPS.length - 1);
  const s = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - s;
  for (let ch = 0; ch < 3; ch++) LUT[i * 3 + ch] = Math.round(STOPS[s][ch] * (1 - f) + STOPS[s + 1][ch] * f);
}
const gradientCss = `linear-gradient(to right, ${STOPS.map((s) => `rgb(${s.join(',')})`).join(', ')})`;

const SVG = 'http://www.w3.org/2000/svg';

/**
 * The cells with |i − j| ≥ k0 on a grid × grid board as two staircase paths (x = column, y = row),
 * cell edges exact so the hatching covers whole cells at any grid size.
 */
function bandPath(grid, k0) {
  if (k0 >= grid) return '';
  let lower = `M 0 ${grid}`;
  let upper = `M ${grid} 0`;
  for (let j = 0; j + k0 < grid; j++) {
    lower += ` L ${j} ${j + k0} L ${j + 1} ${j + k0}`;
    upper += ` L ${j + k0} ${j} L ${j + k0} ${j + 1}`;
  }
  return `${lower} L ${grid - k0} ${grid} Z ${upper} L ${grid} ${grid - k0} Z`;
}

export function createHeatmap({ setState, getState }) {
  const canvas = document.getElementById('heatmap');
  const legend = document.getElementById('heat-legend');
  const note = document.getElementById('heat-note');
  // Hatching over the cells whose distance turns some pair past what training reached: an SVG
  // over the canvas in grid units, so the stripes stay crisp while the canvas is pixelated.
  const overlay = document.getElementById('heat-unseen');
  overlay.innerHTML = '<defs><pattern id="heat-hatch" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    + '<rect class="hatch-light" x="0" y="0" height="1"></rect><rect class="hatch-dark" y="0" height="1"></rect></pattern></defs>'
    + '<path class="band" fill="url(#heat-hatch)"></path><path class="edge"></path>';
  const pattern = overlay.querySelector('pattern');
  const [light, dark] = pattern.querySelectorAll('rect');
  const band = overlay.querySelector('.band');
  const edge = overlay.querySelector('.edge');
  let overlayKey = '';
  const table = dataTable(document.getElementById('heat-data'), 'Score on each diagonal m − n (every cell of a diagonal), from the module');
  let heavy = null;
  let image = null;
  let imageKey = '';
  let raw = 0;

  function buildImage(state) {
    const grid = heavy.grid;
    const key = `${heavy.id}:${state.rope}:${state.rope ? '' : raw}`;
    if (image && key === imageKey) return;
    imageKey = key;
    let max = 1e-12;
    for (let i = 0; i < heavy.heat.length; i++) max = Math.max(max, Math.abs(heavy.heat[i]));
    heavy.max = max;
    const g = canvas.getContext('2d');
    image = g.createImageData(grid, grid);
    const px = image.data;
    for (let i = 0; i < grid * grid; i++) {
      const v = state.rope ? heavy.heat[i] : raw;
      const idx = Math.max(0, Math.min(255, Math.round(((v / max) * 0.5 + 0.5) * 255)));
      px[i * 4] = LUT[idx * 3];
      px[i * 4 + 1] = LUT[idx * 3 + 1];
      px[i * 4 + 2] = LUT[idx * 3 + 2];
      px[i * 4 + 3] = 255;
    }
    // The scale reads like the bar: its ends where the bar ends, 0 (white) at its middle.
    legend.innerHTML = `<span class="scale"><span>${fixed(-max, 1)}</span>`
      + `<span class="bar" style="background:${gradientCss}" title="0 in the middle"></span><span>${fixed(max, 1)}</span></span>`
      + `<span class="muted">q·k, ${grid} × ${grid} positions${heavy.stride > 1 ? `, every ${heavy.stride}th` : ''}</span>`;
  }

  function draw(state) {
    if (!heavy || heavy.range !== state.range) return;
    const grid = heavy.grid;
    if (canvas.width !== grid) {
      canvas.width = grid;
      canvas.height = grid;
    }
    buildImage(state);
    const g = canvas.getContext('2d');
    g.putImageData(image, 0, 0);
    // The selected cell: a crosshair through row m and column n.
    const c = colours();
    const i = Math.floor(state.m / heavy.stride);
    const j = Math.floor(state.n / heavy.stride);
    const lw = Math.max(1, grid / 256);
    g.fillStyle = c.fg;
    g.globalAlpha = 0.35;
    g.fillRect(0, i, grid, lw);
    g.fillRect(j, 0, lw, grid);
    g.globalAlpha = 1;
    g.strokeStyle = c.fg;
    g.lineWidth = lw;
    const box = Math.max(3, grid / 64);
    g.strokeRect(j - box / 2, i - box / 2, box, box);
    drawUnseen(state);
    canvas.dataset.m = String(state.m);
    canvas.dataset.n = String(state.n);
    canvas.dataset.rope = String(state.rope);
    canvas.dataset.grid = String(grid);
    canvas.dataset.cell = String(state.rope ? heavy.heat[i * grid + j] : raw);
  }

  /** First grid distance past what training reached (grid when none), for the result and state. */
  function unseenFrom() {
    const { grid, stride, seen } = heavy;
    return Number.isFinite(seen) ? Math.min(grid, Math.floor(seen / stride) + 1) : grid;
  }

  function drawUnseen(state) {
    const grid = heavy.grid;
    // Without RoPE no pair turns at all: nothing is out of training's range.
    const k0 = state.rope ? unseenFrom() : grid;
    const key = `${heavy.id}:${k0}`;
    if (key === overlayKey) return;
    overlayKey = key;
    const cells = k0 < grid ? (grid - k0) * (grid - k0 + 1) : 0;
    overlay.setAttribute('viewBox', `0 0 ${grid} ${grid}`);
    const p = grid / 40;  // stripes as wide whatever the grid
    pattern.setAttribute('width', String(p));
    pattern.setAttribute('height', String(p));
    light.setAttribute('width', String(p * 0.45));
    dark.setAttribute('x', String(p * 0.45));
    dark.setAttribute('width', String(p * 0.15));
    light.setAttribute('height', String(p));
    dark.setAttribute('height', String(p));
    band.setAttribute('d', bandPath(grid, k0));
    edge.setAttribute('d', k0 < grid ? `M 0 ${k0} L ${grid - k0} ${grid} M ${k0} 0 L ${grid} ${grid - k0}` : '');
    overlay.toggleAttribute('hidden', cells === 0);  // SVG elements have no .hidden property
    const from = k0 < grid ? k0 * heavy.stride : null;
    canvas.dataset.unseenCells = String(cells);
    canvas.dataset.unseenFrom = from === null ? 'none' : String(from);
    canvas.dataset.seenDistance = String(heavy.seen);
    const scaled = state.scaling !== 'none';
    note.textContent = !state.rope
      ? 'RoPE off: no pair turns, so no cell is outside what training saw.'
      : from === null
        ? `Every distance shown (up to ${heavy.range - 1}) turns each pair no further than training with ${state.train} positions did${scaled ? ' (with this scaling)' : ''}: nothing is hatched.`
        : `Hatched from |m − n| = ${from}: ${cells.toLocaleString('en-US')} of ${(grid * grid).toLocaleString('en-US')} cells turn some pair further than training with ${state.train} positions ever did`
          + `${scaled ? ` (the scaling stretches that from ${state.train} to ${Math.floor(heavy.seen) + 1})` : ''}.`;
  }

  function pick(event) {
    if (!heavy) return;
    const rect = canvas.getBoundingClientRect();
    const grid = heavy.grid;
    const j = Math.min(grid - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * grid)));
    const i = Math.min(grid - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * grid)));
    setState({ m: i * heavy.stride, n: j * heavy.stride });
  }
  canvas.addEventListener('pointermove', pick);
  canvas.addEventListener('pointerdown', pick);
  canvas.addEventListener('keydown', (event) => {
    const state = getState();
    const step = heavy?.stride ?? 1;
    const moves = { ArrowUp: ['m', -step], ArrowDown: ['m', step], ArrowLeft: ['n', -step], ArrowRight: ['n', step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const [key, delta] = move;
    setState({ [key]: Math.min(state.range - 1, Math.max(0, state[key] + delta)) });
  });

  let id = 0;
  return {
    render(state, frame) {
      raw = frame.qkRaw;  // q·k without rotation: every cell of the RoPE-off picture
      draw(state);
    },
    heavy(state, result) {
      heavy = { ...result, id: ++id };
      image = null;
      draw(state);
      table(() => {
        const rows = [];
        const grid = heavy.grid;
        const step = Math.max(1, Math.floor(grid / 48));
        for (let dd = -(grid - 1); dd < grid; dd += step) {
          let mn = Infinity;
          let mx = -Infinity;
          for (let i = Math.max(0, dd); i < Math.min(grid, grid + dd); i++) {
            const v = heavy.heat[i * grid + (i - dd)];
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
          }
          rows.push([String(dd * heavy.stride), fixed(mn, 4), fixed(mx - mn, 6), Math.abs(dd * heavy.stride) > heavy.seen ? 'no' : 'yes']);
        }
        return { head: ['m − n', 'score', 'spread along the diagonal', 'angles seen in training'], rows };
      });
    },
  };
}
