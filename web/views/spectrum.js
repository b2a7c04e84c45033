// spectrum.js: view 4, the wavelength 2π/θ_i of each pair (log scale), unscaled and as the
// chosen scaling leaves it, with the training context length marked. The marker's label goes
// where no curve passes (on a phone the curves cross the marker near its middle, and a fixed
// place put the label on them); its box and the curves are in data attributes for the tests.

import { colours, dataTable, fitCanvas, sig, sizeGeneration } from './format.js';

const narrowLayout = () => matchMedia('(max-width: 40rem)').matches;

/** Points of `lines` (arrays of [x, y]) that fall in `box` grown by `margin`, sampled every pixel. */
function pointsInBox(box, lines, margin) {
  const x0 = box.x - margin;
  const x1 = box.x + box.width + margin;
  const y0 = box.y - margin;
  const y1 = box.y + box.height + margin;
  let hits = 0;
  for (const points of lines) {
    for (let p = 0; p < points.length; p++) {
      const [ax, ay] = points[p];
      const [bx, by] = points[Math.min(p + 1, points.length - 1)];
      const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay)));
      for (let t = 0; t <= steps; t++) {
        const x = ax + ((bx - ax) * t) / steps;
        const y = ay + ((by - ay) * t) / steps;
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) hits++;
      }
    }
  }
  return hits;
}

/**
 * Where a label of `width` × `height` beside the horizontal line at `lineY` touches none of
 * `lines` and `avoid` (boxes): right below the line, then above it on the left, above on the
 * right, below on the left, then anywhere along the line (two curves can cross it at both ends);
 * failing all, the place that touches least.
 */
function placeLabel({ width, height, lineY, plot, lines, avoid }) {
  const left = plot.x + 6;
  const right = plot.x + plot.width - 6 - width;
  const below = lineY + 5;
  const above = lineY - 5 - height;
  const along = [];
  for (let x = right; x > left; x -= 8) along.push([x, below], [x, above]);
  const candidates = [[right, below], [left, above], [right, above], [left, below], ...along]
    .map(([x, y]) => ({ x, y, width, height }))
    .filter((b) => b.y >= plot.y && b.y + b.height <= plot.y + plot.height);
  let best = { x: left, y: Math.max(plot.y, above), width, height };
  let bestHits = Infinity;
  for (const box of candidates) {
    const overlapsBox = avoid.some((a) => box.x < a.x + a.width && a.x < box.x + box.width && box.y < a.y + a.height && a.y < box.y + box.height);
    const hits = pointsInBox(box, lines, 3) + (overlapsBox ? 1000 : 0);
    if (hits === 0) return { box, hits };
    if (hits < bestHits) [best, bestHits] = [box, hits];
  }
  return { box: best, hits: bestHits };
}

export function createSpectrum() {
  const canvas = document.getElementById('spectrum');
  const note = document.getElementById('spectrum-note');
  const table = dataTable(document.getElementById('spectrum-data'), 'Frequencies and wavelengths of each pair, from the module');

  let lastKey = '';
  function render(state, frame) {
    // Only the frequencies, the training length and the canvas size change this picture.
    const key = `${Array.from(frame.theta).join()}:${frame.thetaPlain[frame.half - 1]}:${state.train}:${state.scaling}:${state.factor}:${frame.attentionScaling}:${sizeGeneration}:${state.scaling === 'dynamic' ? Math.max(state.m, state.n) : ''}`;
    if (key === lastKey) return;
    lastKey = key;
    const { g, width, height } = fitCanvas(canvas, narrowLayout() ? 0.7 : 0.33);
    const c = colours();
    const half = frame.half;
    const waves = Array.from(frame.theta, (t) => 2 * Math.PI / t);
    const plain = Array.from(frame.thetaPlain, (t) => 2 * Math.PI / t);
    const pad = { l: 52, r: 12, t: 12, b: 34 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    const lo = Math.floor(Math.log10(Math.min(...waves, ...plain, state.train)));
    const hi = Math.ceil(Math.log10(Math.max(...waves, ...plain, state.train * 2)));
    const x = (i) => pad.l + (half > 1 ? i / (half - 1) : 0.5) * w;
    const y = (v) => pad.t + (1 - (Math.log10(v) - lo) / (hi - lo)) * h;

    // Above the training length: pairs that never completed a turn in training.
    g.fillStyle = c.unseen;
    g.fillRect(pad.l, pad.t, w, y(state.train) - pad.t);
    g.font = '12px system-ui, sans-serif';
    g.strokeStyle = c.line;
    g.lineWidth = 1;
    g.fillStyle = c.muted;
    g.textAlign = 'right';
    for (let e = lo; e <= hi; e++) {
      g.beginPath();
      g.moveTo(pad.l, y(10 ** e));
      g.lineTo(pad.l + w, y(10 ** e));
      g.stroke();
      g.fillText(e <= 4 ? String(10 ** e) : `1e${e}`, pad.l - 6, y(10 ** e) + 4);
    }
    g.textAlign = 'center';
    for (let i = 0; i <= 4; i++) {
      const p = Math.round((i / 4) * (half - 1));
      g.fillText(String(p), x(p), pad.t + h + 16);
    }
    g.fillText('pair i (fast → slow)', pad.l + w / 2, pad.t + h + 30);
    g.textAlign = 'left';
    g.fillStyle = c.muted;
    const title = 'wavelength, positions (log)';
    g.fillText(title, pad.l + 6, pad.t + 12);
    const titleBox = { x: pad.l + 6, y: pad.t, width: g.measureText(title).width, height: 14 };

    const line = (values, colour, dash, widthPx) => {
      g.strokeStyle = colour;
      g.lineWidth = widthPx;
      g.setLineDash(dash);
      g.beginPath();
      values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
      g.stroke();
      g.setLineDash([]);
      if (half <= 64) {
        g.fillStyle = colour;
        values.forEach((v, i) => { g.beginPath(); g.arc(x(i), y(v), 2.2, 0, 2 * Math.PI); g.fill(); });
      }
    };
    line(plain, c.avg, [6, 4], 2);
    line(waves, c.q, [], 2);
    g.strokeStyle = c.train;
    g.lineWidth = 2;
    g.setLineDash([5, 4]);
    g.beginPath();
    g.moveTo(pad.l, y(state.train));
    g.lineTo(pad.l + w, y(state.train));
    g.stroke();
    g.setLineDash([]);

    // The marker's label, clear of both curves (dots included) and of the axis title, with a halo
    // in the panel colour so that the shading under it does not blur it.
    const curves = [plain, waves].map((values) => values.map((v, i) => [x(i), y(v)]));
    const plot = { x: pad.l, y: pad.t, width: w, height: h };
    // The full label where it fits; on a narrow chart two curves may leave room only for less.
    let label;
    let box;
    for (const text of [`training context ${state.train}`, `training ${state.train}`, String(state.train)]) {
      const place = placeLabel({ width: g.measureText(text).width, height: 13, lineY: y(state.train), plot, lines: curves, avoid: [titleBox] });
      if (!box || place.hits === 0) [label, box] = [text, place.box];
      if (place.hits === 0) break;
    }
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.lineJoin = 'round';
    g.lineWidth = 3;
    g.strokeStyle = c.panel;
    g.strokeText(label, box.x, box.y + 1);
    g.fillStyle = c.train;
    g.fillText(label, box.x, box.y + 1);
    g.textBaseline = 'alphabetic';
    const round = (v) => Math.round(v * 10) / 10;
    canvas.dataset.trainLabel = JSON.stringify({ text: label, x: round(box.x), y: round(box.y), width: round(box.width), height: box.height });
    canvas.dataset.curves = JSON.stringify(curves.map((points) => points.map(([px, py]) => [round(px), round(py)])));
    canvas.dataset.plot = JSON.stringify({ x: plot.x, y: plot.y, width: round(plot.width), height: round(plot.height) });

    const slow = plain.filter((v) => v > state.train).length;
    const ratio = frame.theta[half - 1] / frame.thetaPlain[half - 1];
    const scalingName = document.querySelector(`#scaling option[value="${state.scaling}"]`).textContent;
    note.textContent = `${slow} of ${half} pairs have a wavelength longer than the training context of ${state.train}. `
      + (state.scaling === 'none'
        ? 'No scaling: positions past the training context turn the slow pairs to angles the model never saw.'
        : `${scalingName} × ${state.scaling === 'longrope' ? '' : state.factor}: the slowest pair now turns ${sig(ratio, 3)} × as fast`
          + ` and the fastest ${sig(frame.theta[0] / frame.thetaPlain[0], 3)} ×`
          + `${frame.attentionScaling !== 1 ? `; cos and sin are multiplied by ${sig(frame.attentionScaling, 4)}` : ''}`
          + `${state.scaling === 'dynamic' ? ` (dynamic NTK rescales only when a call reaches past ${state.train}: here, positions ${Math.max(state.m, state.n) + 1})` : ''}.`);
    canvas.dataset.thetaLast = String(frame.theta[half - 1]);
    canvas.dataset.thetaFirst = String(frame.theta[0]);
    canvas.dataset.attentionScaling = String(frame.attentionScaling);

    table(() => ({
      head: ['pair', 'θ unscaled', 'θ in force', 'wavelength unscaled', 'wavelength in force', 'turns in training'],
      rows: plain.map((_, i) => [String(i), sig(frame.thetaPlain[i]), sig(frame.theta[i]), sig(plain[i]), sig(waves[i]),
        sig(((state.train - 1) * frame.thetaPlain[i]) / (2 * Math.PI), 3)]),
    }));
  }

  return { render };
}
