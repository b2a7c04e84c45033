// spectrum.js: view 4, the wavelength 2π/θ_i of each pair (log scale), unscaled and as the
// chosen scaling leaves it, with the training context length marked.

import { colours, dataTable, fitCanvas, sig, sizeGeneration } from './format.js';

const narrowLayout = () => matchMedia('(max-width: 40rem)').matches;

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
    g.fillText('wavelength, positions (log)', pad.l + 6, pad.t + 12);

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
    g.fillStyle = c.train;
    g.textAlign = 'left';
    g.fillText(`training context ${state.train}`, pad.l + 6, y(state.train) - 6);

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
