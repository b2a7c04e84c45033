// partial.js: view 6, partial rotation. One column per feature of q: before RoPE (top row) and
// after the module rotated it to position m (bottom row). Features from the rotary dim on pass
// through: the page checks they come back bit for bit and says so.

import { colours, dataTable, fitCanvas, fixed } from './format.js';

function valueColour(v, max, mid) {
  // Same diverging palette as the heatmap, coarser: purple < 0 < orange, from `mid` at 0.
  const t = Math.max(-1, Math.min(1, v / max));
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  const [r, g, b] = t < 0 ? [mix(mid[0], 94, -t), mix(mid[1], 60, -t), mix(mid[2], 153, -t)]
    : [mix(mid[0], 230, t), mix(mid[1], 97, t), mix(mid[2], 1, t)];
  return `rgb(${r},${g},${b})`;
}

// Zero is near white on a light page; on a dark one, a dark grey: near-zero features would
// otherwise glare as the brightest columns of the chart.
const zeroColour = () => (matchMedia('(prefers-color-scheme: dark)').matches ? [52, 52, 62] : [247, 247, 247]);

export function createPartial() {
  const canvas = document.getElementById('partial-canvas') ?? (() => {
    const c = document.createElement('canvas');
    c.id = 'partial-canvas';
    c.className = 'chart';
    c.setAttribute('role', 'img');
    c.setAttribute('aria-label', 'Features of q before and after RoPE; pass-through features unchanged');
    document.getElementById('partial').append(c);
    return c;
  })();
  const note = document.getElementById('partial-note');
  const table = dataTable(document.getElementById('partial-data'), 'q before and after RoPE at position m, from the module');

  return {
    render(state, frame) {
      const { hd, dim, q, qr } = frame;
      const { g, width, height } = fitCanvas(canvas, 0.34);
      const c = colours();
      const pad = { l: 58, r: 4, t: 22, b: 8 };
      const w = (width - pad.l - pad.r) / hd;
      const rowH = (height - pad.t - pad.b - 6) / 2;
      const mid = zeroColour();
      let max = 1e-12;
      for (let f = 0; f < hd; f++) max = Math.max(max, Math.abs(q[f]), Math.abs(qr[f]));
      let unchanged = 0;
      let changed = 0;
      for (let f = 0; f < hd; f++) {
        g.fillStyle = valueColour(q[f], max, mid);
        g.fillRect(pad.l + f * w, pad.t, Math.max(1, w - (w > 4 ? 1 : 0)), rowH);
        g.fillStyle = valueColour(qr[f], max, mid);
        g.fillRect(pad.l + f * w, pad.t + rowH + 6, Math.max(1, w - (w > 4 ? 1 : 0)), rowH);
        if (f >= dim && qr[f] === q[f]) unchanged++;
        if (f < dim && qr[f] !== q[f]) changed++;
      }
      g.font = '12px system-ui, sans-serif';
      g.fillStyle = c.muted;
      g.textAlign = 'right';
      g.fillText('before', pad.l - 6, pad.t + rowH / 2 + 4);
      g.fillText(`m = ${state.m}`, pad.l - 6, pad.t + rowH * 1.5 + 10);
      // Brackets over the rotated and the pass-through features.
      g.textAlign = 'left';
      g.fillStyle = c.q;
      g.fillRect(pad.l, 12, dim * w - 2, 3);
      g.fillText(`rotated 0…${dim - 1}`, pad.l, 10);
      if (dim < hd) {
        g.fillStyle = c.muted;
        g.fillRect(pad.l + dim * w + 2, 12, (hd - dim) * w - 2, 3);
        g.textAlign = 'right';
        g.fillText(`pass-through ${dim}…${hd - 1}`, pad.l + hd * w, 10);
        g.strokeStyle = c.fg;
        g.lineWidth = 1;
        g.setLineDash([3, 3]);
        g.strokeRect(pad.l + dim * w + 0.5, pad.t - 2, (hd - dim) * w - 1, rowH * 2 + 10);
        g.setLineDash([]);
      }
      canvas.dataset.rotaryDim = String(dim);
      canvas.dataset.unchanged = String(unchanged);
      canvas.dataset.changed = String(changed);
      note.textContent = dim < hd
        ? `The module rotated ${dim} of ${hd} features (${changed} changed at position ${state.m}); the other ${hd - dim} `
          + `came back ${unchanged === hd - dim ? 'bit for bit unchanged' : `changed in ${hd - dim - unchanged} places (unexpected)`}, `
          + `adding ${fixed(frame.passDot, 4)} to q·k at every distance.`
        : `All ${hd} features are rotated. Choose a smaller "Rotated features" share above to see pass-through features.`;
      table(() => ({
        head: ['feature', 'q', `q at m = ${state.m}`, 'rotated?'],
        rows: Array.from({ length: hd }, (_, f) => [String(f), fixed(q[f], 5), fixed(qr[f], 5), f < dim ? 'yes' : 'no, passes through']),
      }));
    },
  };
}
