// train.js: the training view (web/train.html). The page only draws: web/train-worker.js owns the
// wasm module, the model and the training loop, and reports every step.
//
// The run's settings (config, steps, evalEvery, seed, threads) are in the URL. The text is
// downloaded only when Start is pressed with "Download" selected, then kept in the Cache API.
//
// Test hooks: #status[data-ready, data-build, data-threads], body[data-state, data-step], the
// data-* attributes of the loss chart, the samples and the attention maps, window.__trainPage.

import { TRAIN_CONFIGS } from '../js/train-configs.js';
import { createAttention } from './views/train-attention.js';
import { createLossChart } from './views/train-chart.js';
import { forgetSizes } from './views/format.js';

const $ = (id) => document.getElementById(id);
const els = {
  status: $('status'), error: $('global-error'), form: $('run'),
  config: $('config'), steps: $('steps'), evalEvery: $('eval-every'), seed: $('seed'), threads: $('threads'),
  configNote: $('config-note'), sourceUrl: $('source-url'), sourceFile: $('source-file'),
  dataUrl: $('data-url'), dataFile: $('data-file'), dataNote: $('data-note'),
  start: $('start'), pause: $('pause'), resume: $('resume'),
  progress: $('progress'), live: $('live'), modelNote: $('model-note'),
  statStep: $('stat-step'), statTrain: $('stat-train'), statValid: $('stat-valid'),
  statSpeed: $('stat-speed'), statElapsed: $('stat-elapsed'), statEta: $('stat-eta'),
  download: $('download'), downloadLink: $('download-link'), checkpointFile: $('checkpoint-file'),
  sampleForm: $('sample-form'), prompt: $('prompt'), temperature: $('temperature'), sampleLength: $('sample-length'),
  sampleNow: $('sample-now'), sampleError: $('sample-error'), samples: $('samples'),
  attentionText: $('attention-text'),
};

const MAX_SAMPLES = 6;
const DEFAULT_URL = els.dataUrl.value;

// ------------------------------------------------------------------------------------------------
// settings <-> URL

const defaultsFor = (configName) => ({ steps: TRAIN_CONFIGS[configName].steps, evalEvery: TRAIN_CONFIGS[configName].evalEvery });

function readUrl() {
  const params = new URLSearchParams(location.search);
  const config = Object.hasOwn(TRAIN_CONFIGS, params.get('config')) ? params.get('config') : 'tiny';
  const int = (key, min, fallback) => {
    const v = params.get(key);
    return v !== null && /^\d+$/.test(v) && Number(v) >= min && Number.isSafeInteger(Number(v)) ? Number(v) : fallback;
  };
  const defaults = defaultsFor(config);
  const threads = ['1', '2'].includes(params.get('threads')) ? params.get('threads') : 'auto';
  return { config, steps: int('steps', 1, defaults.steps), evalEvery: int('evalEvery', 0, defaults.evalEvery), seed: int('seed', 0, 0), threads };
}

function writeUrl() {
  const config = els.config.value;
  const defaults = defaultsFor(config);
  const params = new URLSearchParams();
  if (config !== 'tiny') params.set('config', config);
  if (els.steps.value !== String(defaults.steps)) params.set('steps', els.steps.value);
  if (els.evalEvery.value !== String(defaults.evalEvery)) params.set('evalEvery', els.evalEvery.value);
  if (els.seed.value !== '0') params.set('seed', els.seed.value);
  if (els.threads.value !== 'auto') params.set('threads', els.threads.value);
  const search = params.toString();
  const url = `${location.pathname}${search ? `?${search}` : ''}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, '', url);
}

function describeConfig(name) {
  const c = TRAIN_CONFIGS[name];
  const m = c.model;
  const o = c.optimizer;
  const schedule = o.schedule.type === 'noam'
    ? `Noam schedule (lr ${o.lr}, ${o.schedule.warmup} warm-up steps)`
    : `lr ${o.lr}, ${o.schedule.warmup} warm-up steps then cosine to ${o.schedule.finalFraction * 100}%`;
  const what = {
    tiny: 'A quick look: a few hundred steps take seconds to a minute.',
    small: 'The reference\'s run: 2,000 steps reached validation loss 1.57 in PyTorch. Expect tens of minutes.',
    labml: 'The seed experiment, the labml.ai RoPE transformer: a long run (hours).',
  }[name];
  return `${what} d_model ${m.dModel}, ${m.layers} layers × ${m.heads} heads (head dimension ${m.dModel / m.heads}), `
    + `d_ff ${m.dFF}; ${c.seq} characters × ${c.batch} per step; ${o.type === 'adam' ? 'Adam' : 'AdamW'}, ${schedule}, clip ${o.clipNorm}.`;
}

// ------------------------------------------------------------------------------------------------
// formatting

function clock(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
const count = (n) => Math.round(n).toLocaleString('en-US');
const bytes = (n) => (n < 1e6 ? `${(n / 1e3).toFixed(0)} kB` : `${(n / 1e6).toFixed(1)} MB`);

// ------------------------------------------------------------------------------------------------
// the page

const chart = createLossChart({ canvas: $('loss-chart'), details: $('loss-data') });
const attention = createAttention({
  grid: $('attention-grid'), legend: $('attention-legend'), readout: $('attention-readout'),
  note: $('attention-note'), details: $('attention-data'),
});

let phase = 'loading';    // loading idle starting running pausing paused finished loaded error
let ready = null;         // the worker's 'ready' message
let sessionInfo = null;   // the worker's last 'session' or 'loaded' message
let localText = null;     // {name, text} of the picked file
let cachedDownload = null; // {url, text} of the last downloaded text
let currentStep = 0;
let resumable = false;
let latest = null;        // the last progress report
let downloadUrl = null;   // the blob: URL of the last checkpoint
let threadNote = '';      // why training runs on fewer threads than asked, or ''

const worker = new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module' });
const send = (message, transfer) => worker.postMessage(message, transfer ?? []);

function setPhase(next) {
  phase = next;
  document.body.dataset.state = next;
  const busy = ['loading', 'starting', 'pausing'].includes(next);
  const hasModel = ['running', 'paused', 'finished', 'loaded'].includes(next);
  els.start.disabled = busy || next === 'running';
  els.pause.disabled = next !== 'running';
  els.resume.disabled = !(['paused', 'finished'].includes(next) || (next === 'loaded' && resumable));
  els.download.disabled = !hasModel;
  els.checkpointFile.disabled = busy;
  els.sampleNow.disabled = !hasModel;
  els.start.textContent = ['paused', 'finished', 'loaded'].includes(next) ? 'Start over' : 'Start';
}

function showError(message) {
  els.error.textContent = message;
}

function announce(text) {
  els.live.textContent = text;
}

function readSettings() {
  const problems = [];
  const int = (el, min, label) => {
    const v = el.value.trim();
    if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
      problems.push(`${label} must be a whole number ≥ ${min}.`);
      el.setAttribute('aria-invalid', 'true');
      return null;
    }
    el.removeAttribute('aria-invalid');
    return Number(v);
  };
  const settings = {
    configName: els.config.value,
    steps: int(els.steps, 1, 'Steps'),
    evalEvery: int(els.evalEvery, 0, 'Validate every'),
    seed: int(els.seed, 0, 'Seed'),
    threads: els.threads.value === 'auto' ? undefined : Number(els.threads.value),
  };
  if (problems.length) throw new Error(problems.join(' '));
  return settings;
}

function sendSampleSettings() {
  const temperature = Number(els.temperature.value);
  const length = Number(els.sampleLength.value);
  send({
    type: 'settings',
    prompt: els.prompt.value,
    temperature: Number.isFinite(temperature) && temperature >= 0 ? temperature : 0.8,
    sampleTokens: Number.isInteger(length) && length >= 1 ? Math.min(length, 1000) : 160,
    attentionText: els.attentionText.value,
  });
}

/** The text to train on: the picked file, or the address downloaded once and cached. */
async function trainingText() {
  if (els.sourceFile.checked) {
    if (!localText) throw new Error('Pick a text file first (or choose Download).');
    return localText.text;
  }
  const url = els.dataUrl.value.trim() || DEFAULT_URL;
  if (cachedDownload?.url === url) return cachedDownload.text;
  let cache = null;
  try {
    cache = await caches.open('rope-wasm-training-data');
    const hit = await cache.match(url);
    if (hit) {
      const text = await hit.text();
      cachedDownload = { url, text };
      els.dataNote.textContent = `${url}: ${count(text.length)} characters (from the browser's cache).`;
      return text;
    }
  } catch {
    cache = null;  // no Cache API here (an insecure context): download every time
  }
  els.status.textContent = `Downloading ${url}…`;
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`Could not download ${url} (${error.message}). Pick a local text file instead.`);
  }
  if (!response.ok) throw new Error(`Downloading ${url} failed with HTTP ${response.status}. Pick a local text file instead.`);
  const copy = response.clone();
  const text = await response.text();
  cache?.put(url, copy).catch(() => {});
  cachedDownload = { url, text };
  els.dataNote.textContent = `${url}: ${count(text.length)} characters, downloaded.`;
  return text;
}

function showStatus() {
  if (!ready) return;
  const build = ready.simd ? 'SIMD build (WebAssembly SIMD128)' : 'scalar build (this browser has no WebAssembly SIMD)';
  els.status.dataset.build = ready.simd ? 'simd' : 'scalar';
  const warn = !ready.simd || (sessionInfo?.threads && threadNote !== '');
  els.status.classList.toggle('ok', !warn);
  els.status.classList.toggle('warn', warn);
  if (sessionInfo?.threads) {
    els.status.dataset.threads = String(sessionInfo.threads);
    els.status.textContent = `Training with the ${build} on ${sessionInfo.threads} thread${sessionInfo.threads > 1 ? 's' : ''}`
      + `${sessionInfo.threads > 1 ? (ready.sharedMemory ? ' (Web Workers sharing memory)' : ' (Web Workers, by message)') : ''}.`
      + (threadNote ? ` ${threadNote}` : '');
  } else {
    const cores = Math.min(2, ready.cores);
    els.status.textContent = `Ready: the ${build}; training will use up to ${cores} thread${cores > 1 ? 's' : ''}.`;
  }
}

function resetRun({ fromStep = 0, totalSteps }) {
  chart.reset({ fromStep, totalSteps });
  latest = null;
  els.samples.replaceChildren();
  for (const el of [els.statTrain, els.statValid, els.statSpeed, els.statElapsed, els.statEta]) el.textContent = '–';
  els.statStep.textContent = `${fromStep} / ${totalSteps}`;
  els.progress.max = totalSteps;
  els.progress.value = fromStep;
}

// Stats are redrawn at most once a frame, however fast the steps come.
let statsFrame = 0;
function showProgress() {
  if (statsFrame) return;
  statsFrame = requestAnimationFrame(() => {
    statsFrame = 0;
    const r = latest;
    if (!r) return;
    els.statStep.textContent = `${count(r.step)} / ${count(r.steps)}`;
    els.statTrain.textContent = r.trainLoss.toFixed(3);
    els.statSpeed.textContent = count(r.tokensPerSecond);
    els.statElapsed.textContent = clock(r.elapsedSeconds);
    els.statEta.textContent = r.step >= r.steps ? 'done' : clock(r.etaSeconds);
    els.progress.max = r.steps;
    els.progress.value = r.step;
  });
}

function describeModel(info, extra = '') {
  const c = info.config;
  els.modelNote.textContent = `${count(info.paramCount)} parameters: d_model ${c.dModel}, ${c.layers} layers × ${c.heads} heads, `
    + `d_ff ${c.dFF}, vocabulary of ${[...info.vocabulary].length} characters${extra}`;
}

// ------------------------------------------------------------------------------------------------
// samples

const samples = new Map();  // id -> {article, out}

function sampleStart(message) {
  if (message.error) {
    els.sampleError.textContent = message.error;
    return;
  }
  els.sampleError.textContent = '';
  const article = document.createElement('article');
  article.className = 'sample';
  article.dataset.step = String(message.step);
  const header = document.createElement('h3');
  header.textContent = `Step ${count(message.step)}${message.label ? ` · ${message.label}` : ''}`;
  const pre = document.createElement('pre');
  const prompt = document.createElement('span');
  prompt.className = 'prompt';
  prompt.textContent = message.prompt;
  const out = document.createElement('span');
  out.className = 'generated';
  pre.append(prompt, out);
  article.append(header, pre);
  els.samples.prepend(article);
  while (els.samples.children.length > MAX_SAMPLES) els.samples.lastElementChild.remove();
  samples.set(message.id, { article, out });
}

function sampleToken(message) {
  const s = samples.get(message.id);
  if (s) s.out.textContent += message.text;
}

function sampleEnd(message) {
  const s = samples.get(message.id);
  if (!s) return;
  s.out.textContent = message.text;
  s.article.dataset.done = 'true';
  samples.delete(message.id);
}

// ------------------------------------------------------------------------------------------------
// the worker's messages

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'ready':
      ready = data;
      els.status.dataset.ready = 'true';
      showStatus();
      sendSampleSettings();
      setPhase('idle');
      break;
    case 'session':
      sessionInfo = data;
      resumable = true;
      currentStep = data.step;
      showStatus();
      describeModel(data, `; ${data.run.seq} characters × ${data.run.batch} per step in ${data.run.microBatches} micro-batches; `
        + `${count(data.trainChars)} training and ${count(data.validChars)} validation characters.`);
      chart.setTotal(data.run.steps);
      break;
    case 'loaded': {
      sessionInfo = null;
      attention.clear();
      resumable = data.resumable;
      currentStep = data.step;
      const t = data.training;
      if (t && Object.hasOwn(TRAIN_CONFIGS, t.configName)) {
        els.config.value = t.configName;
        els.steps.value = String(t.steps > data.step ? t.steps : data.step + TRAIN_CONFIGS[t.configName].evalEvery);
        els.evalEvery.value = String(t.evalEvery);
        writeUrl();
        els.configNote.textContent = describeConfig(t.configName);
      }
      resetRun({ fromStep: data.step, totalSteps: Number(els.steps.value) || data.step + 1 });
      describeModel(data, `. Loaded ${data.name} at step ${count(data.step)}`
        + (resumable ? `: Resume continues it on the text above (its characters must be in this vocabulary).` : ': it has no training state, so it can only sample.'));
      showStatus();
      els.status.dataset.threads = '';
      announce(`Loaded the checkpoint ${data.name} at step ${data.step}.`);
      setPhase('loaded');
      document.body.dataset.step = String(data.step);
      break;
    }
    case 'state':
      currentStep = data.step;
      document.body.dataset.step = String(data.step);
      if (data.state === 'running') {
        announce(`Training: step ${data.step} of ${data.steps}.`);
      } else if (data.state === 'paused') {
        announce(`Paused at step ${data.step}.`);
      } else if (data.state === 'finished') {
        announce(`Finished: ${data.step} steps${latest?.validLoss !== undefined ? `, validation loss ${latest.validLoss.toFixed(3)}` : ''}.`);
        els.statEta.textContent = 'done';
      }
      setPhase(data.state === 'error' ? (sessionInfo ? 'paused' : 'idle') : data.state);
      break;
    case 'progress':
      latest = data;
      currentStep = data.step;
      document.body.dataset.step = String(data.step);
      chart.add(data);
      showProgress();
      if (data.validLoss !== undefined) {
        els.statValid.textContent = data.validLoss.toFixed(3);
        announce(`Step ${data.step} of ${data.steps}: validation loss ${data.validLoss.toFixed(3)}, training loss ${data.trainLoss.toFixed(3)}.`);
      }
      break;
    case 'validating':
      els.statValid.textContent = 'validating…';
      break;
    case 'sample-start': sampleStart(data); break;
    case 'sample-token': sampleToken(data); break;
    case 'sample-end': sampleEnd(data); break;
    case 'attention': attention.render(data); break;
    case 'checkpoint': {
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([data.bytes], { type: 'application/octet-stream' }));
      const link = els.downloadLink;
      link.href = downloadUrl;
      link.download = data.name;
      link.textContent = `${data.name} (${bytes(data.bytes.byteLength)})`;
      link.hidden = false;
      link.dataset.bytes = String(data.bytes.byteLength);
      announce(`Checkpoint ready: ${data.name}.`);
      link.click();
      break;
    }
    case 'note':
      threadNote = data.text;
      showStatus();
      announce(data.text);
      break;
    case 'error':
      showError(data.during === 'training' || data.during === 'start' || data.during === 'resume' || data.during === 'load'
        ? data.message : `${data.during}: ${data.message}`);
      if (data.during === 'load') els.checkpointFile.value = '';
      break;
    default:
      break;
  }
};

worker.onerror = (event) => {
  showError(`The training worker failed: ${event.message ?? 'unknown error'}`);
  els.status.dataset.ready = 'error';
};

// ------------------------------------------------------------------------------------------------
// controls

const initial = readUrl();
els.config.value = initial.config;
els.steps.value = String(initial.steps);
els.evalEvery.value = String(initial.evalEvery);
els.seed.value = String(initial.seed);
els.threads.value = initial.threads;
els.configNote.textContent = describeConfig(initial.config);
resetRun({ totalSteps: initial.steps });

els.config.addEventListener('change', () => {
  const defaults = defaultsFor(els.config.value);
  els.steps.value = String(defaults.steps);
  els.evalEvery.value = String(defaults.evalEvery);
  els.configNote.textContent = describeConfig(els.config.value);
  writeUrl();
});
for (const el of [els.steps, els.evalEvery, els.seed, els.threads]) el.addEventListener('input', writeUrl);
els.steps.addEventListener('input', () => {
  const steps = Number(els.steps.value);
  if (Number.isInteger(steps) && steps > currentStep && phase !== 'running') chart.setTotal(steps);
});
els.form.addEventListener('submit', (event) => event.preventDefault());

els.dataFile.addEventListener('change', async () => {
  const file = els.dataFile.files[0];
  if (!file) return;
  try {
    const text = await file.text();
    localText = { name: file.name, text };
    els.sourceFile.checked = true;
    const distinct = new Set(text).size;
    els.dataNote.textContent = `${file.name}: ${count(text.length)} characters, ${distinct} distinct: `
      + `${count(Math.floor(text.length * 0.9))} to train on, ${count(text.length - Math.floor(text.length * 0.9))} to validate.`;
    els.dataNote.dataset.chars = String(text.length);
  } catch (error) {
    showError(`Could not read ${file.name}: ${error.message}`);
  }
});
els.dataUrl.addEventListener('input', () => { els.sourceUrl.checked = true; });

els.start.addEventListener('click', async () => {
  showError('');
  if (['paused', 'finished', 'loaded'].includes(phase) && currentStep > 0
      && !confirm(`Start over with a new model? The current one (step ${currentStep}) is discarded: download its checkpoint first to keep it.`)) {
    return;
  }
  let settings;
  try {
    settings = readSettings();
  } catch (error) {
    showError(error.message);
    return;
  }
  setPhase('starting');
  try {
    const text = await trainingText();
    sessionInfo = null;
    threadNote = '';
    resetRun({ totalSteps: settings.steps });
    attention.clear();
    sendSampleSettings();
    announce(`Starting the ${settings.configName} configuration for ${settings.steps} steps.`);
    send({ type: 'start', text, ...settings });
    showStatus();
  } catch (error) {
    showError(error.message);
    showStatus();
    setPhase(sessionInfo ? 'paused' : 'idle');
  }
});

els.pause.addEventListener('click', () => {
  send({ type: 'pause' });
  setPhase('pausing');
});

els.resume.addEventListener('click', async () => {
  showError('');
  let settings;
  try {
    settings = readSettings();
  } catch (error) {
    showError(error.message);
    return;
  }
  if (settings.steps <= currentStep) {
    showError(`The model is at step ${currentStep}: set Steps above it to train on.`);
    els.steps.focus();
    return;
  }
  const wasLoaded = phase === 'loaded';
  setPhase('starting');
  try {
    const message = { type: 'resume', steps: settings.steps, evalEvery: settings.evalEvery, threads: settings.threads };
    if (wasLoaded) {
      message.text = await trainingText();
      threadNote = '';
    }
    chart.setTotal(settings.steps);
    sendSampleSettings();
    send(message);
  } catch (error) {
    showError(error.message);
    setPhase(wasLoaded ? 'loaded' : 'paused');
  }
});

els.download.addEventListener('click', () => {
  send({ type: 'checkpoint' });
});

els.checkpointFile.addEventListener('change', async () => {
  const file = els.checkpointFile.files[0];
  if (!file) return;
  showError('');
  try {
    const data = new Uint8Array(await file.arrayBuffer());
    send({ type: 'load', bytes: data, name: file.name }, [data.buffer]);
    setPhase('starting');
  } catch (error) {
    showError(`Could not read ${file.name}: ${error.message}`);
  }
});

let settingsTimer = 0;
for (const el of [els.prompt, els.temperature, els.sampleLength]) {
  el.addEventListener('input', () => {
    clearTimeout(settingsTimer);
    settingsTimer = setTimeout(sendSampleSettings, 200);
  });
}
els.sampleForm.addEventListener('submit', (event) => {
  event.preventDefault();
  clearTimeout(settingsTimer);
  sendSampleSettings();
  send({ type: 'sample' });
});

let attentionTimer = 0;
els.attentionText.addEventListener('input', () => {
  clearTimeout(attentionTimer);
  attentionTimer = setTimeout(() => {
    sendSampleSettings();
    send({ type: 'attention' });
  }, 250);
});

// Leaving the page ends the run: ask first while a model is training.
window.addEventListener('beforeunload', (event) => {
  if (phase === 'running' || phase === 'pausing') event.preventDefault();
});

// Canvas sizes and colours are measured once per resize or theme change.
let resizeTimer = 0;
const remeasure = () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    forgetSizes();
    chart.redraw();
    attention.repaint();
  }, 50);
};
window.addEventListener('resize', remeasure);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', remeasure);

window.__trainPage = {
  get phase() { return phase; },
  get latest() { return latest; },
  get session() { return sessionInfo; },
};

setPhase('loading');
send({ type: 'init' });
