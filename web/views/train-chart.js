// train-chart.js: the training view's loss curve. Training loss of every step (thin), its centred
// moving average (bold: no lag, unlike an exponential average), and the validation loss (dots
// joined by a line), against the optimizer step, on a canvas with axes and labels; a data table
// holds the numbers.
//
// Test hooks on the canvas: data-points, data-valid-points, data-first-loss, data-last-smoothed,
// data-last-valid.

import { colours, dataTable, fitCanvas, sig } from './format.js';

/** The half-width of the moving average for a run of `total` steps: about 4% of the run in all. */
const halfWidth = (total) => Math.min(100, Math.max(1, Math.round(total / 50)));

/** The centred moving average of `values` over 2k + 1 points (fewer at the ends). */
export function movingAverage(values, k) {
  const prefix = new Float64Array(values.length + 1);
  values.forEach((v, i) => { prefix[i + 1] = prefix[i] + v; });
  return values.map((_, i) => {
    const a = Math.max(0, i - k);
    const b = Math.min(values.length, i + k + 1);
    return (prefix[b] - prefix[a]) / (b - a);
  });
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function createLossChart({ canvas, details }) {
  const table = dataTable(details, 'Loss (cross-entropy in nats per character) at each step');
  let steps = [];      // step of each training report
  let train = [];      // its training loss
  let smooth = [];     // moving average of train, recomputed at each draw
  let lr = [];
  let valid = [];      // [{step, loss}]
  let total = 1;       // the run's last step: the x axis spans [first, total]
  let first = 0;       // the step the history starts after (a loaded checkpoint's)
  let frame = 0;

  function reset({ fromStep = 0, totalSteps = 1 } = {}) {
    steps = [];
    train = [];
    smooth = [];
    lr = [];
    valid = [];
    first = fromStep;
    total = Math.max(totalSteps, fromStep + 1);
    schedule();
  }

  function add(report) {
    if (Number.isFinite(report.trainLoss)) {
      steps.push(report.step);
      train.push(report.trainLoss);
      lr.push(report.lr);
    }
    if (report.validLoss !== undefined) valid.push({ step: report.step, loss: report.validLoss });
    total = Math.max(total, report.steps ?? total, report.step);
    schedule();
  }

  function setTotal(totalSteps) {
    total = Math.max(totalSteps, first + 1, steps.at(-1) ?? 0);
    schedule();
  }

  function schedule() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
      fillTable();
    });
  }

  function draw() {
    smooth = movingAverage(train, halfWidth(total - first));
    const narrow = (canvas.parentElement?.clientWidth ?? 600) < 480;
    const { g, width, height } = fitCanvas(canvas, narrow ? 0.75 : 0.68);
    const c = colours();
    const pad = { l: 52, r: 14, t: 14, b: 42 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    g.font = '12px system-ui, sans-serif';
    g.lineJoin = 'round';

    let lo = Infinity;
    let hi = -Infinity;
    for (const v of train) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (const { loss } of valid) { lo = Math.min(lo, loss); hi = Math.max(hi, loss); }
    const empty = !Number.isFinite(lo);
    if (empty) { lo = 0; hi = 5; }
    if (hi - lo < 0.1) { lo -= 0.05; hi += 0.05; }
    const margin = 0.04 * (hi - lo);
    lo = Math.max(0, lo - margin);
    hi += margin;
    const x0 = first;
    const x1 = Math.max(total, x0 + 1);
    const x = (s) => pad.l + ((s - x0) / (x1 - x0)) * w;
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * h;

    // Grid and axes.
    g.strokeStyle = c.line;
    g.fillStyle = c.muted;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const v of niceTicks(lo, hi, narrow ? 4 : 6)) {
      g.beginPath();
      g.moveTo(pad.l, Math.round(y(v)) + 0.5);
      g.lineTo(pad.l + w, Math.round(y(v)) + 0.5);
      g.stroke();
      g.fillText(sig(v, 3), pad.l - 6, y(v));
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const s of niceTicks(x0, x1, narrow ? 3 : 6)) {
      if (s < x0 || s > x1 || !Number.isInteger(s)) continue;
      g.beginPath();
      g.moveTo(Math.round(x(s)) + 0.5, pad.t + h);
      g.lineTo(Math.round(x(s)) + 0.5, pad.t + h + 4);
      g.stroke();
      g.fillText(String(s), x(s), pad.t + h + 6);
    }
    g.strokeStyle = c.muted;
    g.beginPath();
    g.moveTo(pad.l + 0.5, pad.t);
    g.lineTo(pad.l + 0.5, pad.t + h + 0.5);
    g.lineTo(pad.l + w, pad.t + h + 0.5);
    g.stroke();
    g.fillText('optimizer step', pad.l + w / 2, pad.t + h + 24);
    g.save();
    g.translate(13, pad.t + h / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = 'middle';
    g.fillText('loss (nats per character)', 0, 0);
    g.restore();

    if (empty) {
      g.textAlign = 'left';
      g.textBaseline = 'alphabetic';
      g.fillStyle = c.muted;
      g.fillText('No steps yet.', pad.l + 12, pad.t + 24);
    } else {
      // Training loss: min and max of each pixel column (thin), then its moving average (bold).
      const polyline = (values, colour, lineWidth, alpha) => {
        g.strokeStyle = colour;
        g.globalAlpha = alpha;
        g.lineWidth = lineWidth;
        g.beginPath();
        let column = -1;
        let mn = 0;
        let mx = 0;
        const flush = () => {
          if (column < 0) return;
          g.lineTo(column, y(mx));
          if (mn !== mx) g.lineTo(column, y(mn));
        };
        values.forEach((v, i) => {
          const px = Math.round(x(steps[i]));
          if (px !== column) {
            if (column < 0) g.moveTo(px, y(v));
            flush();
            column = px;
            mn = v;
            mx = v;
          } else {
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
          }
        });
        flush();
        g.stroke();
        g.globalAlpha = 1;
      };
      polyline(train, c.q, 1, 0.35);
      polyline(smooth, c.q, 2.5, 1);
      if (valid.length) {
        g.strokeStyle = c.k;
        g.fillStyle = c.k;
        g.lineWidth = 2;
        g.beginPath();
        valid.forEach(({ step, loss }, i) => (i ? g.lineTo(x(step), y(loss)) : g.moveTo(x(step), y(loss))));
        g.stroke();
        for (const { step, loss } of valid) {
          g.beginPath();
          g.arc(x(step), y(loss), 3.5, 0, 2 * Math.PI);
          g.fill();
        }
      }
    }
    canvas.dataset.points = String(train.length);
    canvas.dataset.validPoints = String(valid.length);
    if (train.length) {
      canvas.dataset.firstLoss = String(train[0]);
      canvas.dataset.lastSmoothed = String(smooth.at(-1));
    }
    if (valid.length) canvas.dataset.lastValid = String(valid.at(-1).loss);
    const summary = train.length
      ? `Loss curve: ${train.length} steps, training loss ${sig(train[0], 4)} at step ${steps[0]}, ${sig(smooth.at(-1), 4)} (smoothed) at step ${steps.at(-1)}`
        + (valid.length ? `; validation loss ${sig(valid.at(-1).loss, 4)} at step ${valid.at(-1).step}` : '')
      : 'Loss curve: no steps yet';
    canvas.setAttribute('aria-label', summary);
  }

  function fillTable() {
    table(() => {
      // Every validation step, plus about 200 evenly spaced training steps.
      const every = Math.max(1, Math.ceil(steps.length / 200));
      const validAt = new Map(valid.map((v) => [v.step, v.loss]));
      const rows = [];
      steps.forEach((s, i) => {
        if (i % every === 0 || i === steps.length - 1 || validAt.has(s)) {
          rows.push([String(s), train[i].toFixed(4), smooth[i].toFixed(4), validAt.has(s) ? validAt.get(s).toFixed(4) : '', sig(lr[i], 3)]);
        }
      });
      return { head: ['step', 'training loss', 'smoothed', 'validation loss', 'learning rate'], rows };
    });
  }

  return { reset, add, setTotal, redraw: schedule, get validCount() { return valid.length; } };
}
