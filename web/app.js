// app.js: the page's state, its URL, the controls, and the views. The state is one plain object;
// every control carries data-key (the state key it edits). A change updates the state, writes
// the URL (history.replaceState: shareable, restored on load), recomputes the light frame with the
// module on the main thread and asks the worker for the heatmap and decay curves when they depend
// on what changed.
//
// Test hooks: #status[data-ready, data-build], data-* attributes on the dials and charts,
// #play[data-playing], window.__ropePage (state, last frame, heavy result generation).

import { loadRope } from '../js/index.js';
import { computeFrame, rotaryDim } from './model.js';
import { createPlayer } from './play.js';
import { createDials } from './views/dials.js';
import { createDecay } from './views/decay.js';
import { createHeatmap } from './views/heatmap.js';
import { createSpectrum } from './views/spectrum.js';
import { createPairing } from './views/pairing.js';
import { createPartial } from './views/partial.js';
import { createComputation } from './views/computation.js';
import { createSeed } from './views/seed.js';
import { forgetSizes, formatTime } from './views/format.js';

const DEFAULTS = {
  hd: 64, base: 10000, pairing: 'half', pct: 1, range: 512, vec: 'random', seed: 1,
  m: 12, n: 7, lock: false, rope: true, scaling: 'none', factor: 4, train: 128, pair: 0,
  sd: 4, sb: 10000, sp: 'half', so: 0,
};

const int = (min, max) => (v) => {
  const x = Math.round(Number(v));
  return Number.isFinite(x) ? Math.min(max, Math.max(min, x)) : undefined;
};
const oneOf = (...values) => (v) => {
  const s = String(v);
  return values.map(String).includes(s) ? (typeof values[0] === 'number' ? Number(s) : s) : undefined;
};
const bool = (v) => (v === true || v === '1' || v === 'true' || v === 'on' ? true
  : v === false || v === '0' || v === 'false' ? false : undefined);
const number = (v) => (v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v));

/** How each key is read from a control or the URL; undefined means "not valid, keep the old value". */
const PARSE = {
  hd: oneOf(4, 8, 16, 32, 64, 128, 256),
  base: oneOf(100, 10000, 500000, 1000000),
  pairing: oneOf('half', 'interleaved'),
  pct: oneOf(0.25, 0.5, 0.75, 1),
  range: oneOf(64, 128, 256, 512, 1024, 2048, 4096),
  vec: oneOf('random', 'seed'),
  seed: int(1, 2 ** 31 - 1),
  m: int(0, 4095),
  n: int(0, 4095),
  lock: bool,
  rope: bool,
  scaling: oneOf('none', 'linear', 'dynamic', 'yarn', 'llama3', 'longrope'),
  factor: oneOf(2, 4, 8, 16),
  train: oneOf(16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
  pair: int(0, 127),
  sd: oneOf(2, 4),
  sb: number,   // the seed section shows the library's message for a bad base: keep what was typed
  sp: oneOf('half', 'interleaved'),
  so: number,
};

// Keys the worker's result does not depend on.
const LIGHT_KEYS = new Set(['m', 'n', 'lock', 'rope', 'pair', 'sd', 'sb', 'sp', 'so']);

/** Clamps what depends on other keys (positions within the range, the pair within dim/2). */
function normalize(state) {
  state.m = Math.min(state.m, state.range - 1);
  state.n = Math.min(state.n, state.range - 1);
  const half = rotaryDim(state.hd, state.pct) / 2;
  state.pair = Math.min(state.pair, half - 1);
  if (state.vec === 'seed' && state.hd !== 4) state.vec = 'random';
  return state;
}

function readUrl() {
  const state = { ...DEFAULTS };
  const params = new URLSearchParams(location.search);
  for (const [key, parse] of Object.entries(PARSE)) {
    if (!params.has(key)) continue;
    const value = parse(params.get(key));
    if (value !== undefined) state[key] = value;
  }
  return normalize(state);
}

function writeUrl(state) {
  const params = new URLSearchParams();
  for (const key of Object.keys(PARSE)) {
    if (state[key] !== DEFAULTS[key]) params.set(key, typeof state[key] === 'boolean' ? (state[key] ? '1' : '0') : String(state[key]));
  }
  const search = params.toString();
  const url = `${location.pathname}${search ? `?${search}` : ''}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, '', url);
}

const controls = [...document.querySelectorAll('[data-key]')];

function syncControls(state) {
  for (const el of controls) {
    const value = state[el.dataset.key];
    if (el.type === 'checkbox') el.checked = value;
    else if (document.activeElement !== el || el.type !== 'number') el.value = String(value);
  }
  const mEl = document.getElementById('m');
  const nEl = document.getElementById('n');
  mEl.max = nEl.max = String(state.range - 1);
  mEl.value = String(state.m);
  nEl.value = String(state.n);
  document.getElementById('m-out').textContent = `= ${state.m}`;
  document.getElementById('n-out').textContent = `= ${state.n}`;
  document.getElementById('pair').max = String(rotaryDim(state.hd, state.pct) / 2 - 1);
  document.getElementById('vectors').querySelector('[value="seed"]').disabled = state.hd !== 4;
}

async function main() {
  const status = document.getElementById('status');
  const timingsBox = document.getElementById('timings');
  const errorBox = document.getElementById('global-error');
  let rw;
  try {
    rw = await loadRope();
  } catch (error) {
    status.textContent = `Could not load the WebAssembly module: ${error.message}`;
    status.dataset.ready = 'error';
    return;
  }
  const build = rw.simd ? 'simd' : 'scalar';
  status.dataset.build = build;
  status.textContent = rw.simd
    ? 'Computed live by the SIMD build (WebAssembly SIMD128).'
    : 'Computed live by the scalar build: this browser has no WebAssembly SIMD.';
  status.classList.add(rw.simd ? 'ok' : 'warn');

  let state = readUrl();
  let frame = null;
  let heavy = null;
  let heavyGeneration = 0;
  const timings = { frame: null, heavy: null };

  const setState = (changes) => {
    const next = { ...state, ...changes };
    // Lock m − n: moving one position moves the other by the same amount.
    if (state.lock && next.lock && ('m' in changes || 'n' in changes) && !('m' in changes && 'n' in changes)) {
      const delta = state.m - state.n;
      if ('m' in changes) next.n = next.m - delta;
      else next.m = next.n + delta;
      const low = Math.min(next.m, next.n);
      const high = Math.max(next.m, next.n);
      if (low < 0) { next.m -= low; next.n -= low; }
      if (high > next.range - 1) { next.m -= high - (next.range - 1); next.n -= high - (next.range - 1); }
    }
    const heavyChanged = Object.keys(changes).some((key) => !LIGHT_KEYS.has(key) && changes[key] !== state[key]);
    state = normalize(next);
    render(heavyChanged);
  };

  const ctx = { setState, getState: () => state, rw };
  const views = {
    dials: createDials(ctx), decay: createDecay(ctx), heatmap: createHeatmap(ctx), spectrum: createSpectrum(ctx),
    pairing: createPairing(ctx), partial: createPartial(ctx), computation: createComputation(ctx),
  };
  let lastViewMs = {};
  const seed = createSeed(ctx);
  const player = createPlayer(ctx);

  // The worker loads its own instance of the same build.
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  let requested = 0;
  worker.onmessage = ({ data }) => {
    if (data.id !== requested) return;  // a newer request is on its way
    delete document.body.dataset.heavyPending;
    if (data.error) {
      errorBox.textContent = data.error;
      return;
    }
    heavy = data.result;
    heavyGeneration++;
    timings.heavy = heavy.timings;
    for (const view of Object.values(views)) view.heavy?.(state, heavy, frame);
    showTimings();
    document.body.dataset.heavy = String(heavyGeneration);
  };
  const requestHeavy = () => {
    requested++;
    document.body.dataset.heavyPending = 'true';
    worker.postMessage({ id: requested, state, simd: rw.simd });
  };

  function showTimings() {
    const parts = [];
    if (timings.frame) {
      parts.push(`q·k: rope.scores ${formatTime(timings.frame.scoresMs)}`);
      parts.push(`clocks: rope.apply of q and k ${formatTime(timings.frame.applyMs)}`);
    }
    if (timings.heavy) {
      const h = timings.heavy;
      parts.push(`in a worker: heatmap rope.scores of ${heavy.grid} × ${heavy.grid} positions ${formatTime(h.heatMs)}, `
        + `decay curves ${h.decayCalls} calls ${formatTime(h.decayMs)}`);
    }
    timingsBox.textContent = parts.join(' · ');
  }

  // The URL follows the state a moment later: browsers throttle history updates during a drag.
  let urlTimer = 0;
  function render(heavyChanged) {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => writeUrl(state), 120);
    syncControls(state);
    try {
      frame = computeFrame(rw, state);
      errorBox.textContent = '';
    } catch (error) {
      errorBox.textContent = error.message;
      return;
    }
    timings.frame = frame.timings;
    const viewMs = {};
    for (const [name, view] of Object.entries(views)) {
      const t0 = performance.now();
      view.render(state, frame, heavy);
      viewMs[name] = performance.now() - t0;
    }
    lastViewMs = viewMs;
    seed.render(state);
    player.stateChanged(state);
    showTimings();
    if (heavyChanged) requestHeavy();
  }

  // Controls: every data-key element edits its key.
  for (const el of controls) {
    const key = el.dataset.key;
    el.addEventListener('input', () => {
      const raw = el.type === 'checkbox' ? el.checked : el.value;
      const value = PARSE[key](raw);
      if (value === undefined && !['sb', 'so'].includes(key)) return;
      setState({ [key]: value ?? NaN });
    });
  }
  document.getElementById('settings').addEventListener('submit', (event) => event.preventDefault());
  document.getElementById('controls').addEventListener('submit', (event) => event.preventDefault());
  document.getElementById('reroll').addEventListener('click', () => {
    setState({ vec: 'random', seed: 1 + Math.floor(Math.random() * 1e6) });
  });
  document.getElementById('preset-seed').addEventListener('click', () => {
    setState({ hd: 4, vec: 'seed', pct: 1, base: 10000, pairing: 'half', scaling: 'none', m: 1, n: 0, lock: false, pair: 0 });
    document.getElementById('seed-heading').scrollIntoView({ behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth', block: 'start' });
  });

  // Canvas sizes and colours are measured once per resize or theme change, not at every redraw.
  let resizeTimer = 0;
  const remeasure = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      forgetSizes();
      render(false);
      for (const view of Object.values(views)) if (heavy) view.heavy?.(state, heavy, frame);
    }, 50);
  };
  window.addEventListener('resize', remeasure);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', remeasure);

  window.__ropePage = { get state() { return state; }, get frame() { return frame; }, get heavy() { return heavy; }, get viewMs() { return lastViewMs; }, setState };
  render(true);
  status.dataset.ready = 'true';
}

main();
