// heatmap.js: view 3, the m × n score heatmap. Rows are query positions, columns key positions,
// on a grid of at most 512 positions spaced range/512 apart. The scores come from the worker
// (two apply calls and the dot products); hovering or the arrow keys set m and n.

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

export function createHeatmap({ setState, getState }) {
  const canvas = document.getElementById('heatmap');
  const legend = document.getElementById('heat-legend');
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
    legend.innerHTML = `<span class="bar" style="background:${gradientCss}"></span>`
      + `<span>${fixed(-max, 1)}</span><span>0</span><span>${fixed(max, 1)}</span>`
      + `<span class="muted">${grid} × ${grid} positions${heavy.stride > 1 ? `, every ${heavy.stride}th` : ''}</span>`;
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
    canvas.dataset.m = String(state.m);
    canvas.dataset.n = String(state.n);
    canvas.dataset.rope = String(state.rope);
    canvas.dataset.grid = String(grid);
    canvas.dataset.cell = String(state.rope ? heavy.heat[i * grid + j] : raw);
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
          rows.push([String(dd * heavy.stride), fixed(mn, 4), fixed(mx - mn, 6)]);
        }
        return { head: ['m − n', 'score', 'spread along the diagonal'], rows };
      });
    },
  };
}
