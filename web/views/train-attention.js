// train-attention.js: the training view's attention maps, one heatmap per layer and head of the
// model being trained, for a short text: row = query position (the character that looks), column
// = key position (the character looked at); causal, so the cells above the diagonal are masked.
// Colour ∝ √weight, so that the small weights of a spread-out head stay visible. Each head links to
// the RoPE page (web/index.html) with its settings: head dimension dModel/heads, base, rotated
// share, the training context, and the distance this head attends to most from the last character.
//
// Test hooks on each figure.attn-map: data-layer, data-head, data-row-sum-min, data-row-sum-max,
// data-mean-distance; on the grid: data-layers, data-heads, data-seq, data-step, data-checksum.

import { dataTable } from './format.js';

// The RoPE page's choices (web/app.js PARSE): a setting outside them cannot be shown there.
const PAGE = {
  hd: [4, 8, 16, 32, 64, 128, 256],
  base: [100, 10000, 500000, 1000000],
  pct: [0.25, 0.5, 0.75, 1],
  range: [64, 128, 256, 512, 1024, 2048, 4096],
  train: [16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
};

// Sequential ramps from "no attention" to "all of it", one per theme (both monotonic in lightness).
const RAMPS = {
  light: [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]],
  dark: [[24, 24, 30], [37, 64, 110], [47, 127, 193], [127, 196, 245], [240, 248, 255]],
};
const MASKED = { light: [226, 226, 232], dark: [42, 42, 50] };

function lut(stops) {
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const s = Math.min(stops.length - 2, Math.floor(t));
    const f = t - s;
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.round(stops[s][ch] * (1 - f) + stops[s + 1][ch] * f);
  }
  return out;
}
const LUTS = { light: lut(RAMPS.light), dark: lut(RAMPS.dark) };
const HINT = 'Point at a map to read one weight; the data table has each head\'s averages.';
const theme = () => (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');

export function gradientCss() {
  return `linear-gradient(to right, ${RAMPS[theme()].map((s) => `rgb(${s.join(',')})`).join(', ')})`;
}

/** The RoPE page's URL for one head: its settings, m = the last query, n = its likeliest key. */
export function ropePageUrl(config, seq, m, n) {
  const hd = config.dModel / config.heads;
  const params = new URLSearchParams();
  const unsupported = [];
  const put = (key, value, label) => {
    if (PAGE[key].includes(value)) params.set(key, String(value));
    else unsupported.push(label);
  };
  put('hd', hd, `head dimension ${hd}`);
  put('base', config.base, `base ${config.base}`);
  put('pct', config.ropePercentage, `rotated share ${config.ropePercentage}`);
  const range = PAGE.range.find((r) => r >= seq) ?? 4096;
  params.set('range', String(range));
  if (PAGE.train.includes(seq)) params.set('train', String(seq));
  params.set('m', String(Math.min(m, range - 1)));
  params.set('n', String(Math.min(n, range - 1)));
  return { href: `index.html?${params}`, unsupported };
}

/** Row sums, mean distance attended, entropy, weight on itself and on the first token, per head. */
export function headStats(map, head, seq) {
  let rowMin = Infinity;
  let rowMax = -Infinity;
  let distance = 0;
  let entropy = 0;
  let self = 0;
  let firstToken = 0;
  let argmaxLast = 0;
  const offset = head * seq * seq;
  for (let i = 0; i < seq; i++) {
    let sum = 0;
    for (let j = 0; j < seq; j++) {
      const w = map[offset + i * seq + j];
      sum += w;
      distance += w * (i - j);
      if (w > 0) entropy -= w * Math.log(w);
    }
    rowMin = Math.min(rowMin, sum);
    rowMax = Math.max(rowMax, sum);
    self += map[offset + i * seq + i];
    firstToken += map[offset + i * seq];
  }
  const last = offset + (seq - 1) * seq;
  for (let j = 1; j < seq; j++) if (map[last + j] > map[last + argmaxLast]) argmaxLast = j;
  return { rowMin, rowMax, distance: distance / seq, entropy: entropy / seq, self: self / seq, firstToken: firstToken / seq, argmaxLast };
}

export function createAttention({ grid, legend, readout, note, details }) {
  const table = dataTable(details, 'Each head, averaged over the query positions of the text');
  let shapeKey = '';
  let figures = [];   // [layer][head] -> {figure, canvas, link}
  let last = null;

  function build(layers, heads) {
    grid.replaceChildren();
    grid.classList.toggle('many', heads > 8);
    figures = [];
    for (let l = 0; l < layers; l++) {
      const row = document.createElement('div');
      row.className = 'attn-layer';
      row.setAttribute('role', 'group');
      const title = document.createElement('h3');
      title.className = 'attn-layer-title';
      title.id = `attn-layer-${l}`;
      title.textContent = `Layer ${l + 1}`;
      row.setAttribute('aria-labelledby', title.id);
      const list = document.createElement('div');
      list.className = 'attn-heads';
      const cells = [];
      for (let h = 0; h < heads; h++) {
        const figure = document.createElement('figure');
        figure.className = 'attn-map';
        figure.dataset.layer = String(l);
        figure.dataset.head = String(h);
        const canvas = document.createElement('canvas');
        canvas.setAttribute('role', 'img');
        const caption = document.createElement('figcaption');
        // Many heads get small maps and short captions (the link's aria-label says it all).
        const many = heads > 8;
        const name = document.createElement('span');
        name.textContent = many ? `H${h + 1}` : `Head ${h + 1}`;
        if (many) name.title = `Head ${h + 1}`;
        const link = document.createElement('a');
        link.textContent = many ? 'RoPE' : 'RoPE page';
        link.target = '_blank';
        link.rel = 'noopener';
        link.className = 'rope-link';
        caption.append(name, link);
        figure.append(canvas, caption);
        list.append(figure);
        canvas.addEventListener('pointermove', (event) => hover(event, l, h, canvas));
        canvas.addEventListener('pointerleave', () => { readout.textContent = HINT; });
        cells.push({ figure, canvas, link });
      }
      row.append(title, list);
      grid.append(row);
      figures.push(cells);
    }
  }

  function hover(event, layer, head, canvas) {
    if (!last) return;
    const { seq, maps, text } = last;
    const box = canvas.getBoundingClientRect();
    const j = Math.min(seq - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * seq)));
    const i = Math.min(seq - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * seq)));
    const chars = [...text];
    const w = maps[layer][head * seq * seq + i * seq + j];
    readout.textContent = j > i
      ? `Layer ${layer + 1}, head ${head + 1}: query ${i} ${JSON.stringify(chars[i])} cannot see key ${j} ${JSON.stringify(chars[j])} (causal mask).`
      : `Layer ${layer + 1}, head ${head + 1}: query ${i} ${JSON.stringify(chars[i])} gives key ${j} ${JSON.stringify(chars[j])} weight ${w.toFixed(3)}.`;
  }

  // One ImageData for every map of a render (same size); a canvas is resized only when the text's
  // length changes (resizing reallocates its backing store).
  function paint(canvas, map, head, seq, image, t) {
    if (canvas.width !== seq || canvas.height !== seq) {
      canvas.width = seq;
      canvas.height = seq;
    }
    const px = image.data;
    const colours = LUTS[t];
    const masked = MASKED[t];
    const offset = head * seq * seq;
    for (let i = 0; i < seq; i++) {
      for (let j = 0; j < seq; j++) {
        const p = (i * seq + j) * 4;
        if (j > i) {
          px[p] = masked[0]; px[p + 1] = masked[1]; px[p + 2] = masked[2];
        } else {
          const v = Math.max(0, Math.min(1, map[offset + i * seq + j]));
          const idx = Math.round(Math.sqrt(v) * 255) * 3;
          px[p] = colours[idx]; px[p + 1] = colours[idx + 1]; px[p + 2] = colours[idx + 2];
        }
        px[p + 3] = 255;
      }
    }
    canvas.getContext('2d').putImageData(image, 0, 0);
  }

  let generation = 0;
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

  async function render(result) {
    const mine = ++generation;
    if (result.error) {
      note.textContent = result.error;
      note.classList.add('error-text');
      return;
    }
    note.classList.remove('error-text');
    const { maps, config, text } = result;
    const layers = maps.length;
    const heads = config.heads;
    const seq = [...text].length;
    last = { ...result, seq };
    const key = `${layers}x${heads}`;
    const fresh = key !== shapeKey;
    if (fresh) {
      build(layers, heads);
      shapeKey = key;
    }
    const rows = [];
    let checksum = 0;
    const image = new ImageData(seq, seq);
    const t = theme();
    const hd = config.dModel / heads;
    for (let l = 0; l < layers; l++) {
      // New canvases are slow to paint the first time (each makes its context): one layer a
      // frame then, so that a big model's 96 maps never hold the page for long.
      if (fresh && l > 0) {
        await nextFrame();
        if (mine !== generation) return;
      }
      for (let h = 0; h < heads; h++) {
        const { figure, canvas, link } = figures[l][h];
        paint(canvas, maps[l], h, seq, image, t);
        const s = headStats(maps[l], h, seq);
        figure.dataset.rowSumMin = String(s.rowMin);
        figure.dataset.rowSumMax = String(s.rowMax);
        figure.dataset.meanDistance = String(s.distance);
        canvas.setAttribute('aria-label', `Layer ${l + 1}, head ${h + 1}: attention weights of ${seq} characters; `
          + `mean distance attended ${s.distance.toFixed(1)} characters, weight on its own position ${s.self.toFixed(2)}`);
        const { href, unsupported } = ropePageUrl(config, seq, seq - 1, s.argmaxLast);
        link.href = href;
        const settings = `head dimension ${hd}, base ${config.base.toLocaleString('en-US')}, ${Math.round(config.ropePercentage * 100)}% rotated`;
        link.setAttribute('aria-label', `Open layer ${l + 1}, head ${h + 1} in the RoPE page (${settings}; m ${seq - 1}, n ${s.argmaxLast}, the key it weighs most from the last character)`);
        link.title = unsupported.length ? `The RoPE page cannot show: ${unsupported.join(', ')}` : `${settings}; m = ${seq - 1}, n = ${s.argmaxLast}`;
        rows.push([`${l + 1} / ${h + 1}`, s.distance.toFixed(2), s.entropy.toFixed(3), s.self.toFixed(3), s.firstToken.toFixed(3), s.rowMax.toFixed(6)]);
        for (let i = 0; i < maps[l].length; i += 7) checksum += maps[l][i] * ((i % 13) + 1);
      }
    }
    if (!readout.textContent) readout.textContent = HINT;
    grid.dataset.layers = String(layers);
    grid.dataset.heads = String(heads);
    grid.dataset.seq = String(seq);
    grid.dataset.step = String(result.step);
    grid.dataset.checksum = String(checksum);
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.background = gradientCss();
    const scale = document.createElement('span');
    scale.append('weight 0 ', bar, ' 1 (colour ∝ √weight, so 0.25 is mid-way)');
    const masked = document.createElement('span');
    const swatch = document.createElement('span');
    swatch.className = 'key-swatch masked';
    masked.append(swatch, 'masked: a key after the query (causal)');
    legend.replaceChildren(scale, masked);
    note.textContent = `${layers} layers × ${heads} heads at step ${result.step}, for "${text}" (${seq} characters`
      + `${result.truncated ? `: the model's context of ${result.contextLength}, the rest is cut off` : ''}). `
      + 'Rows: the query (the character looking); columns: the key (the character looked at).';
    table(() => ({ head: ['layer / head', 'mean distance', 'entropy (nats)', 'on itself', 'on the first', 'largest row sum'], rows }));
  }

  return {
    render,
    repaint() {
      if (last) render(last);
    },
    clear() {
      generation++;
      grid.replaceChildren();
      shapeKey = '';
      last = null;
      readout.textContent = '';
      note.textContent = 'Computing the maps…';
      note.classList.remove('error-text');
      legend.textContent = '';
    },
  };
}

