// demo.js: runs the seed's RoPE example through the wasm module and recomputes it whenever a
// control changes. Results are also written to data attributes (data-build, data-ready on
// #status, data-output on #output-table) so tests/browser.test.js can read them.

import { loadRope } from '../js/index.js';

// The seed's test vector: 3 tokens of 4 features, shape [seq, batch, heads, head_dim].
const X = new Float32Array([1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10]);
const SHAPE = [3, 1, 1, 4];
const [SEQ, , , HEAD_DIM] = SHAPE;

const status = document.getElementById('status');
const form = document.getElementById('controls');
const errorBox = document.getElementById('error');
const thetas = document.getElementById('thetas');
const timing = document.getElementById('timing');
const inputTable = document.getElementById('input-table');
const outputTable = document.getElementById('output-table');
const passNote = document.getElementById('pass-note');

function readParams() {
  return {
    dim: Number(form.elements.dim.value),
    base: form.elements.base.valueAsNumber,
    pairing: form.elements.pairing.value,
    offset: form.elements.offset.valueAsNumber,
  };
}

/** Fills a table with one row per position; columns from `dim` on are marked as pass-through. */
function renderTable(table, symbol, values, offset, dim) {
  const headRow = document.createElement('tr');
  const corner = document.createElement('th');
  corner.scope = 'col';
  corner.textContent = 'Position';
  headRow.append(corner);
  for (let f = 0; f < HEAD_DIM; f++) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.innerHTML = `${symbol}<sub>${f}</sub>`;
    if (f >= dim) th.className = 'pass';
    headRow.append(th);
  }
  table.tHead.replaceChildren(headRow);

  const rows = [];
  for (let s = 0; s < SEQ; s++) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = String(offset + s);
    tr.append(th);
    for (let f = 0; f < HEAD_DIM; f++) {
      const td = document.createElement('td');
      td.textContent = values[s * HEAD_DIM + f].toFixed(4);
      if (f >= dim) td.className = 'pass';
      tr.append(td);
    }
    rows.push(tr);
  }
  table.tBodies[0].replaceChildren(...rows);
}

/**
 * Time of one call of fn in milliseconds. One call of this size takes microseconds, below the
 * timer's resolution, so calls are repeated in batches of at least 1 ms. The fastest batch counts:
 * other work on the machine (and the engine's first, unoptimized runs) can only add time.
 */
function timeCall(fn) {
  let best = Infinity;
  for (let batch = 0; batch < 5; batch++) {
    let calls = 0;
    let elapsed = 0;
    const start = performance.now();
    do {
      fn();
      calls++;
      elapsed = performance.now() - start;
    } while (elapsed < 1);
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

function formatTime(ms) {
  return ms < 1 ? `${(ms * 1000).toFixed(2)} µs` : `${ms.toFixed(3)} ms`;
}

function recompute(rw) {
  const params = readParams();
  let rope;
  try {
    // The library checks every argument and throws an error that names it (base <= 0, a
    // fractional offset, ...): show that message instead of a result.
    rope = rw.rotaryEmbedding({ dim: params.dim, base: params.base, pairing: params.pairing });
    const options = { shape: SHAPE, layout: 'sbhd', offset: params.offset };
    const y = rope.apply(X, options);
    const perCall = timeCall(() => rope.apply(X, options));

    errorBox.textContent = '';
    renderTable(inputTable, 'x', X, params.offset, params.dim);
    renderTable(outputTable, 'y', y, params.offset, params.dim);
    outputTable.dataset.output = JSON.stringify(Array.from(y));
    // Four significant digits without trailing zeros: 1, 0.01 rather than 1.000, 0.01000.
    thetas.textContent = Array.from(rope.inverseFrequencies, (t) => String(Number(t.toPrecision(4)))).join(', ');
    timing.textContent = `${formatTime(perCall)} (best of 5 batches of repeated calls)`;
    outputTable.classList.remove('stale');
    passNote.hidden = params.dim >= HEAD_DIM;
  } catch (error) {
    errorBox.textContent = error.message;
    thetas.textContent = '–';
    timing.textContent = '–';
    delete outputTable.dataset.output;
    outputTable.classList.add('stale');
  } finally {
    rope?.dispose();
  }
}

async function main() {
  let rw;
  try {
    rw = await loadRope();
  } catch (error) {
    status.textContent = `Could not load the WebAssembly module: ${error.message}`;
    status.dataset.ready = 'error';
    return;
  }
  status.dataset.build = rw.simd ? 'simd' : 'scalar';
  status.textContent = rw.simd
    ? 'Loaded the SIMD build (WebAssembly SIMD128).'
    : 'Loaded the scalar build: this browser has no WebAssembly SIMD.';
  status.classList.add(rw.simd ? 'ok' : 'warn');

  // The numbers are recomputed as the user types; pressing Enter must not reload the page.
  form.addEventListener('submit', (event) => event.preventDefault());
  form.addEventListener('input', () => recompute(rw));
  recompute(rw);
  status.dataset.ready = 'true';
}

main();
