// seed.js: view 8, the seed's own example [[1,2,3,4],[4,5,6,7],[7,8,9,10]] (shape [3, 1, 1, 4],
// sbhd) rotated by the module with its own dim, base, pairing and offset (state keys sd, sb, sp,
// so). The output is also written to #output-table's data-output for the tests.

import { SEED_X } from '../model.js';
import { fixed, formatTime } from './format.js';

const SHAPE = [3, 1, 1, 4];
const [SEQ, , , HEAD_DIM] = SHAPE;

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
      td.textContent = fixed(values[s * HEAD_DIM + f], 4);
      if (f >= dim) td.className = 'pass';
      tr.append(td);
    }
    rows.push(tr);
  }
  table.tBodies[0].replaceChildren(...rows);
}

/**
 * Time of one call of fn in milliseconds. One call of this size takes microseconds, below the
 * timer's resolution, so calls are repeated in batches of at least 1 ms; the fastest batch counts.
 */
function timeCall(fn) {
  let best = Infinity;
  for (let batch = 0; batch < 3; batch++) {
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

export function createSeed({ rw }) {
  const errorBox = document.getElementById('error');
  const thetas = document.getElementById('thetas');
  const timing = document.getElementById('timing');
  const inputTable = document.getElementById('input-table');
  const outputTable = document.getElementById('output-table');
  const passNote = document.getElementById('pass-note');
  let lastKey = '';

  return {
    render(state) {
      const params = { dim: state.sd, base: state.sb, pairing: state.sp, offset: state.so };
      const key = JSON.stringify(params);
      if (key === lastKey) return;  // only its own controls change it
      lastKey = key;
      let rope;
      try {
        // The library checks every argument and throws an error that names it: show that message.
        rope = rw.rotaryEmbedding({ dim: params.dim, base: params.base, pairing: params.pairing });
        const options = { shape: SHAPE, layout: 'sbhd', offset: params.offset };
        const y = rope.apply(SEED_X, options);
        const perCall = timeCall(() => rope.apply(SEED_X, options));
        errorBox.textContent = '';
        renderTable(inputTable, 'x', SEED_X, params.offset, params.dim);
        renderTable(outputTable, 'y', y, params.offset, params.dim);
        outputTable.dataset.output = JSON.stringify(Array.from(y));
        thetas.textContent = Array.from(rope.inverseFrequencies, (t) => String(Number(t.toPrecision(4)))).join(', ');
        timing.textContent = `${formatTime(perCall)} (best of 3 batches of repeated calls)`;
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
    },
  };
}
