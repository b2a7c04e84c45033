// decay.js: view 2, q·k against relative distance (the long-term decay), for the current q and k
// and averaged over random vectors with k = q. Both curves are scaled so distance 0 is 1.

import { colours, dataTable, fitCanvas, fixed } from './format.js';

// On a phone the chart is narrow: taller, so the oscillation and the decay stay readable.
const narrowLayout = () => matchMedia('(max-width: 40rem)').matches;

export function createDecay() {
  const canvas = document.getElementById('decay');
  const table = dataTable(document.getElementById('decay-data'), 'Score against distance (distance 0 = 1), from the module');
  let last = null;
  let id = 0;

  // The curves are drawn once per result into `base`; a redraw copies it and adds the m − n line.
  const base = document.createElement('canvas');
  let baseKey = '';
  let geometry = null;

  function draw(state, heavy) {
    const { g, width, height } = fitCanvas(canvas, narrowLayout() ? 0.8 : 0.6);
    const key = `${canvas.width}x${canvas.height}:${state.train}:${heavy ? heavy.id : ''}`;
    if (key !== baseKey || !geometry) {
      base.width = canvas.width;
      base.height = canvas.height;
      const bg = base.getContext('2d');
      bg.setTransform(canvas.width / width, 0, 0, canvas.height / height, 0, 0);
      geometry = drawBase(bg, width, height, state, heavy);
      baseKey = key;
    }
    g.save();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(base, 0, 0);
    g.restore();
    if (geometry.ready) geometry.marker(g, state.m - state.n);
  }

  function drawBase(g, width, height, state, heavy) {
    const c = colours();
    const pad = { l: 44, r: 12, t: 12, b: 34 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    g.font = '12px system-ui, sans-serif';
    g.fillStyle = c.muted;
    g.strokeStyle = c.line;
    g.lineWidth = 1;
    if (!heavy || heavy.range !== state.range) {
      g.fillText('computing…', pad.l + 8, pad.t + 16);
      return { ready: false };
    }
    const range = heavy.range;
    const current = heavy.decay;
    const c0 = current[0] || 1;
    let lo = -0.25;
    let hi = 1;
    for (let d = 0; d < range; d++) {
      lo = Math.min(lo, current[d] / c0, heavy.average[d]);
      hi = Math.max(hi, current[d] / c0, heavy.average[d]);
    }
    const x = (d) => pad.l + (d / (range - 1)) * w;
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * h;

    // Past the training length: shaded.
    if (state.train < range) {
      g.fillStyle = c.unseen;
      g.fillRect(x(state.train), pad.t, pad.l + w - x(state.train), h);
    }
    // Axes, zero line, ticks.
    g.strokeStyle = c.line;
    g.beginPath();
    g.moveTo(pad.l, y(0)); g.lineTo(pad.l + w, y(0));
    g.moveTo(pad.l, pad.t); g.lineTo(pad.l, pad.t + h); g.lineTo(pad.l + w, pad.t + h);
    g.stroke();
    g.fillStyle = c.muted;
    g.textAlign = 'right';
    for (const v of [lo, 0, 1, hi]) g.fillText(fixed(v, v === 0 || v === 1 ? 0 : 2), pad.l - 6, y(v) + 4);
    g.textAlign = 'center';
    for (let i = 0; i <= 4; i++) {
      const d = Math.round((i / 4) * (range - 1));
      g.fillText(String(d), x(d), pad.t + h + 16);
    }
    g.fillText('distance m − n', pad.l + w / 2, pad.t + h + 30);

    const line = (values, scale, colour, widthPx) => {
      g.strokeStyle = colour;
      g.lineWidth = widthPx;
      g.beginPath();
      // At most 2 points per pixel column: min and max, so dense oscillation stays visible.
      const columns = Math.ceil(w);
      for (let px = 0; px < columns; px++) {
        const d0 = Math.floor((px / columns) * range);
        const d1 = Math.max(d0 + 1, Math.floor(((px + 1) / columns) * range));
        let mn = Infinity;
        let mx = -Infinity;
        for (let d = d0; d < d1 && d < range; d++) {
          mn = Math.min(mn, values[d] / scale);
          mx = Math.max(mx, values[d] / scale);
        }
        if (px === 0) g.moveTo(pad.l + px, y(mx));
        g.lineTo(pad.l + px, y(mx));
        if (mn !== mx) g.lineTo(pad.l + px, y(mn));
      }
      g.stroke();
    };
    line(heavy.average, 1, c.avg, 2);
    line(current, c0, c.q, 1.5);

    // Lines for m − n and the training length.
    const marker = (d, colour, dash) => {
      if (d < 0 || d >= range) return;
      g.strokeStyle = colour;
      g.lineWidth = 2;
      g.setLineDash(dash);
      g.beginPath();
      g.moveTo(x(d), pad.t);
      g.lineTo(x(d), pad.t + h);
      g.stroke();
      g.setLineDash([]);
    };
    marker(state.train, c.train, [5, 4]);
    canvas.dataset.d0 = String(current[0]);
    canvas.dataset.average1 = String(heavy.average[1]);
    canvas.dataset.range = String(range);
    return {
      ready: true,
      marker: (gg, d) => {
        if (d < 0 || d >= range) return;
        gg.strokeStyle = c.marker;
        gg.lineWidth = 2;
        gg.beginPath();
        gg.moveTo(x(d), pad.t);
        gg.lineTo(x(d), pad.t + h);
        gg.stroke();
      },
    };
  }

  function tableFor(heavy) {
    table(() => {
      const rows = [];
      const step = Math.max(1, Math.floor(heavy.range / 64));
      const c0 = heavy.decay[0] || 1;
      for (let d = 0; d < heavy.range; d += step) {
        rows.push([String(d), fixed(heavy.decay[d], 4), fixed(heavy.decay[d] / c0, 4), fixed(heavy.average[d], 4)]);
      }
      return { head: ['distance', 'q·k', 'q·k ÷ q·k at 0', 'average, k = q'], rows };
    });
  }

  return {
    render(state, frame, heavy) {
      last = heavy;
      draw(state, last);
    },
    heavy(state, result) {
      const heavy = { ...result, id: ++id };
      last = heavy;
      draw(state, heavy);
      tableFor(heavy);
    },
  };
}
