// browser-train.test.js: the training view (web/train.html) in Debian's Chromium, driven by
// playwright-core as tests/browser.test.js does. A small local text is picked with the file
// picker (the default Tiny Shakespeare URL is never fetched: this machine is offline), the tiny
// configuration trains for 30 steps in the page's worker, and the test checks the loss curve,
// validation, samples, the attention maps of every layer and head (rows sum to 1), pause and
// resume, the checkpoint download (decoded here in Node by js/checkpoint.js) and loading it back.
// Screenshots at 1280x800 and 390 px go to test-artifacts/.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { decodeCheckpoint } from '../js/checkpoint.js';
import { TRAIN_CONFIGS } from '../js/train-configs.js';
import { startServer } from '../web/server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const artifactsDir = path.join(repoRoot, 'test-artifacts');
const shakespeare = path.resolve(repoRoot, '..', 'shared', 'data', 'tinyshakespeare.txt');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync',
];
const DEFAULT_DATA_HOST = 'raw.githubusercontent.com';

/**
 * A small text to train on: the first 60,000 characters of Tiny Shakespeare when the shared copy
 * is here, else a generated one (what the model learns does not matter, only that it learns).
 */
async function smallText() {
  if (existsSync(shakespeare)) return (await readFile(shakespeare, 'utf8')).slice(0, 60_000);
  const words = ['the', 'king', 'is', 'dead', 'long', 'live', 'queen', 'and', 'all', 'her', 'men', 'to', 'be', 'or', 'not'];
  let text = '';
  for (let i = 0; text.length < 60_000; i++) text += `${words[(i * 7) % words.length]}${i % 11 === 10 ? '.\n' : ' '}`;
  return text;
}

let server;
let baseUrl;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error('install Chromium: apt-get install -y chromium');
  server = await startServer({ port: 0 });
  baseUrl = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

/**
 * Opens the training view and waits until its worker has loaded the module. `problems` collects
 * console errors, uncaught exceptions, failed requests and HTTP errors; `requests` every URL.
 */
async function openTrainer(query = '', { viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
  const page = await browser.newPage({ viewport, colorScheme, acceptDownloads: true });
  const problems = [];
  const requests = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('request', (request) => requests.push(request.url()));
  page.on('requestfailed', (request) => {
    // A download from a blob: link ends its navigation with ERR_ABORTED; that is the download.
    if (request.url().startsWith('blob:')) return;
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(`${baseUrl}/web/train.html${query}`);
  await page.waitForSelector('#status[data-ready="true"]', { timeout: 30_000 });
  await page.waitForSelector('body[data-state="idle"]', { timeout: 30_000 });
  return { page, problems, requests };
}

const waitForState = (page, state, timeout = 240_000) => page.waitForSelector(`body[data-state="${state}"]`, { timeout });

async function pickText(page, text, name = 'shakespeare-60k.txt') {
  await page.setInputFiles('#data-file', { name, mimeType: 'text/plain', buffer: Buffer.from(text, 'utf8') });
  await page.waitForFunction((n) => document.getElementById('data-note').dataset.chars === String(n), [...text].length);
}

const chartData = (page) => page.$eval('#loss-chart', (el) => ({ ...el.dataset }));
const attentionData = (page) => page.evaluate(() => {
  const grid = document.getElementById('attention-grid');
  return {
    grid: { ...grid.dataset },
    maps: [...grid.querySelectorAll('figure.attn-map')].map((f) => ({
      layer: Number(f.dataset.layer), head: Number(f.dataset.head),
      rowSumMin: Number(f.dataset.rowSumMin), rowSumMax: Number(f.dataset.rowSumMax),
      href: f.querySelector('a').getAttribute('href'), label: f.querySelector('a').getAttribute('aria-label'),
    })),
  };
});

/** Every layer x head has a map whose rows (queries) each sum to 1. */
function checkAttention(attention, layers, heads) {
  assert.equal(Number(attention.grid.layers), layers);
  assert.equal(Number(attention.grid.heads), heads);
  assert.equal(attention.maps.length, layers * heads);
  const seen = new Set(attention.maps.map((m) => `${m.layer}/${m.head}`));
  for (let l = 0; l < layers; l++) for (let h = 0; h < heads; h++) assert.ok(seen.has(`${l}/${h}`), `no map for layer ${l} head ${h}`);
  for (const m of attention.maps) {
    assert.ok(Math.abs(m.rowSumMin - 1) < 1e-4 && Math.abs(m.rowSumMax - 1) < 1e-4,
      `layer ${m.layer} head ${m.head}: rows sum to [${m.rowSumMin}, ${m.rowSumMax}]`);
  }
}

describe('training view in Chromium', { timeout: 600_000 }, () => {
  let downloaded;      // the checkpoint file's name and bytes
  let trained;

  test('loads with no errors, labels every control, fetches nothing until Start, and is linked from the RoPE page', async () => {
    const { page, problems, requests } = await openTrainer('?steps=30&evalEvery=10');
    try {
      assert.equal(await page.$eval('#status', (el) => el.dataset.build), 'simd');
      assert.match(await page.textContent('#status'), /SIMD/);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      assert.equal(await page.inputValue('#steps'), '30');
      assert.equal(await page.inputValue('#eval-every'), '10');
      assert.equal(await page.inputValue('#config'), 'tiny');
      // Every control has a label (its own <label> or aria-label).
      const unlabelled = await page.$$eval('input, select, textarea', (els) => els
        .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label')).map((el) => el.id || el.outerHTML));
      assert.deepEqual(unlabelled, []);
      assert.ok(await page.$('[aria-live="polite"]#live'), 'a live region for progress');
      // Keyboard: Tab reaches the configuration and the Start button.
      await page.focus('#config');
      await page.keyboard.press('ArrowDown');
      assert.equal(await page.inputValue('#config'), 'small');
      assert.equal(await page.inputValue('#steps'), String(TRAIN_CONFIGS.small.steps), 'a configuration brings its steps');
      assert.match(page.url(), /config=small/);
      await page.keyboard.press('ArrowUp');
      assert.equal(await page.inputValue('#config'), 'tiny');

      assert.ok(!requests.some((url) => url.includes(DEFAULT_DATA_HOST)), 'the default text was fetched before Start');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
    const rope = await (await fetch(`${baseUrl}/web/index.html`)).text();
    assert.match(rope, /href="train\.html"/, 'the RoPE page links to the training view');
  });

  test('trains tiny for 30 steps: loss curve, validation, samples, attention maps, pause and resume, checkpoint download', async () => {
    const text = await smallText();
    const vocabulary = [...new Set(text)].sort().join('');
    const { page, problems, requests } = await openTrainer('?steps=30&evalEvery=10');
    try {
      await pickText(page, text);
      assert.equal(await page.isChecked('#source-file'), true, 'picking a file selects it as the source');
      // Pause as soon as step 3 is reported: clicked from inside the page, since a tiny step takes
      // about 10 ms. The worker stops between two steps.
      await page.evaluate(() => {
        const observer = new MutationObserver(() => {
          if (Number(document.body.dataset.step) >= 3 && document.body.dataset.state === 'running') {
            observer.disconnect();
            document.getElementById('pause').click();
          }
        });
        observer.observe(document.body, { attributes: true, attributeFilter: ['data-step', 'data-state'] });
      });
      await page.click('#start');
      await waitForState(page, 'paused', 120_000);
      const pausedAt = Number(await page.$eval('body', (el) => el.dataset.step));
      assert.ok(pausedAt >= 3 && pausedAt < 30, `paused at step ${pausedAt}`);
      assert.equal(await page.isDisabled('#pause'), true);
      assert.equal(await page.isEnabled('#resume'), true);
      assert.match(await page.textContent('#live'), new RegExp(`Paused at step ${pausedAt}`));
      await page.waitForTimeout(300);
      assert.equal(Number(await page.$eval('body', (el) => el.dataset.step)), pausedAt, 'no step while paused');
      await page.click('#resume');
      await waitForState(page, 'finished');
      assert.equal(await page.$eval('body', (el) => el.dataset.step), '30');

      const threads = Number(await page.$eval('#status', (el) => el.dataset.threads));
      assert.ok(threads === 1 || threads === 2, `threads ${threads}`);
      console.log(`# trained on ${threads} thread(s): ${await page.textContent('#status')}`);

      // The loss curve: one point per step, the training loss fell, a validation point every 10 steps.
      const chart = await chartData(page);
      assert.equal(Number(chart.points), 30);
      assert.equal(Number(chart.validPoints), 3);
      assert.ok(Number(chart.lastSmoothed) < Number(chart.firstLoss) - 0.3,
        `training loss ${chart.firstLoss} -> ${chart.lastSmoothed} (smoothed) did not fall`);
      assert.ok(Number(chart.firstLoss) > 3 && Number(chart.firstLoss) < 5, `first loss ${chart.firstLoss}: about ln(vocab)`);
      assert.ok(Number(chart.lastValid) < Number(chart.firstLoss), `validation loss ${chart.lastValid}`);
      assert.match(await page.textContent('#stat-valid'), /^\d+\.\d{3}$/);
      assert.match(await page.textContent('#stat-speed'), /^[\d,]+$/);
      assert.equal(await page.textContent('#stat-eta'), 'done');
      assert.match(await page.textContent('#live'), /Finished: 30 steps, validation loss \d/);
      // The data table behind the chart.
      await page.click('#loss-data summary');
      await page.waitForSelector('#loss-data tbody tr');  // filled when opened (the toggle event)
      const rows = await page.$$eval('#loss-data tbody tr', (trs) => trs.length);
      assert.equal(rows, 30);
      await page.click('#loss-data summary');

      // Samples after each validation: the latest at step 30, continuing the prompt.
      await page.waitForSelector('#samples .sample[data-step="30"][data-done="true"]', { timeout: 60_000 });
      const sample = await page.$eval('#samples .sample[data-step="30"]', (el) => ({
        prompt: el.querySelector('.prompt').textContent, generated: el.querySelector('.generated').textContent,
      }));
      assert.equal(sample.prompt, 'It is ');
      assert.equal([...sample.generated].length, 160);
      assert.ok([...sample.generated].every((c) => vocabulary.includes(c)));
      assert.ok((await page.$$('#samples .sample')).length >= 3, 'a sample per validation');

      // Attention maps: 2 layers x 4 heads, rows sum to 1, each linked to the RoPE page.
      await page.waitForSelector('#attention-grid[data-step="30"]', { timeout: 60_000 });
      const { layers, heads, dModel } = TRAIN_CONFIGS.tiny.model;
      const attention = await attentionData(page);
      checkAttention(attention, layers, heads);
      assert.equal(attention.grid.seq, '32', 'the text is cut to the context of 32');
      for (const m of attention.maps) {
        const params = new URLSearchParams(m.href.split('?')[1]);
        assert.ok(m.href.startsWith('index.html?'), m.href);
        assert.equal(params.get('hd'), String(dModel / heads));
        assert.equal(params.get('base'), '10000');
        assert.equal(params.get('pct'), '1');
        assert.equal(params.get('train'), '32');
        assert.equal(params.get('m'), '31');
        assert.match(m.label, /layer \d, head \d/);
      }
      // Editing the text recomputes the maps for it.
      await page.fill('#attention-text', 'It is the king');
      await page.waitForSelector('#attention-grid[data-seq="14"]', { timeout: 30_000 });
      checkAttention(await attentionData(page), layers, heads);
      // A head's link opens the RoPE page with its settings.
      const href = await page.$eval('figure.attn-map[data-layer="1"][data-head="2"] a', (a) => a.href);
      const rope = await browser.newPage();
      try {
        await rope.goto(href);
        await rope.waitForSelector('#status[data-ready="true"]', { timeout: 30_000 });
        assert.equal(await rope.inputValue('#head-dim'), String(dModel / heads));
        assert.equal(await rope.inputValue('#m'), '13');
      } finally {
        await rope.close();
      }

      // Sample now, from an edited prompt.
      await page.fill('#prompt', 'KING');
      await page.click('#sample-now');
      await page.waitForFunction(() => document.querySelector('#samples .sample .prompt')?.textContent === 'KING'
        && document.querySelector('#samples .sample')?.dataset.done === 'true', null, { timeout: 30_000 });

      // The checkpoint download.
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#download')]);
      assert.equal(download.suggestedFilename(), 'rope-wasm-tiny-step30.safetensors');
      const file = await download.path();
      const bytes = new Uint8Array(await readFile(file));
      const checkpoint = decodeCheckpoint(bytes);
      assert.equal(checkpoint.step, 30);
      assert.equal(checkpoint.vocab, vocabulary);
      assert.equal(checkpoint.config.training.configName, 'tiny');
      assert.equal(checkpoint.config.training.steps, 30);
      assert.equal(checkpoint.config.training.evalEvery, 10);
      const V = vocabulary.length;
      const { dFF } = TRAIN_CONFIGS.tiny.model;
      const expected = {
        'src_embed.weight': [V, dModel],
        'generator.weight': [V, dModel],
        'generator.bias': [V],
        'norm.weight': [dModel],
        'norm.bias': [dModel],
      };
      for (let l = 0; l < layers; l++) {
        for (const part of ['query', 'key', 'value', 'output']) {
          expected[`layers.${l}.self_attn.${part}.weight`] = [dModel, dModel];
          expected[`layers.${l}.self_attn.${part}.bias`] = [dModel];
        }
        expected[`layers.${l}.ff_layer1.weight`] = [dFF, dModel];
        expected[`layers.${l}.ff_layer2.weight`] = [dModel, dFF];
        expected[`layers.${l}.norm_self_attn.weight`] = [dModel];
        expected[`layers.${l}.norm_ff.weight`] = [dModel];
      }
      assert.equal(Object.keys(checkpoint.weights).length, 5 + 16 * layers, 'the state_dict has 16 tensors per layer and 5 more');
      for (const [name, shape] of Object.entries(expected)) {
        assert.ok(checkpoint.weights[name], `the checkpoint has no ${name} (it has ${Object.keys(checkpoint.weights).join(', ')})`);
        assert.deepEqual(checkpoint.weights[name].shape, shape, name);
        assert.ok(checkpoint.weights[name].data.every(Number.isFinite), `${name} is finite`);
      }
      assert.ok(checkpoint.optimizer, 'the optimizer state is saved');
      assert.equal(checkpoint.optimizer.step, 30);
      // The Adam moments: every weight once, concatenated in the order of optimizer.names.
      const names = checkpoint.optimizer.names;
      assert.deepEqual([...names].sort(), Object.keys(checkpoint.weights).sort());
      const paramCount = names.reduce((total, name) => total + checkpoint.weights[name].data.length, 0);
      assert.equal(checkpoint.optimizer.expAvg.length, paramCount);
      assert.equal(checkpoint.optimizer.expAvgSq.length, paramCount);
      assert.ok(checkpoint.optimizer.expAvgSq.some((v) => v > 0), 'the second moments were trained');
      assert.equal(await page.$eval('#download-link', (a) => a.hidden), false);
      assert.match(await page.textContent('#download-link'), /rope-wasm-tiny-step30\.safetensors \(\d+ kB\)/);

      // Back to the default text for the screenshots, and remember the maps to compare after loading.
      await page.fill('#attention-text', 'To be, or not to be: that is the question.');
      await page.waitForSelector('#attention-grid[data-seq="32"]', { timeout: 30_000 });
      trained = { checksum: await page.$eval('#attention-grid', (el) => el.dataset.checksum), text, vocabulary };
      downloaded = { name: download.suggestedFilename(), bytes };

      await mkdir(artifactsDir, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(artifactsDir, 'train-1280x800-first-screen.png') });
      await page.screenshot({ path: path.join(artifactsDir, 'train-1280x800.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.evaluate(() => window.dispatchEvent(new Event('resize')));
      await page.waitForTimeout(200);
      await page.screenshot({ path: path.join(artifactsDir, 'train-390x844.png'), fullPage: true });
      const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scrollWidth <= 390, `the page is ${scrollWidth} px wide at a 390 px viewport`);

      assert.ok(!requests.some((url) => url.includes(DEFAULT_DATA_HOST)), 'the default text was fetched although a file was picked');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('a downloaded checkpoint loads back: same attention maps, samples, and training continues from it', async (t) => {
    if (!downloaded) {
      t.skip('the training test did not produce a checkpoint');
      return;
    }
    const { page, problems } = await openTrainer('', { colorScheme: 'dark' });
    try {
      await page.setInputFiles('#checkpoint-file', { name: downloaded.name, mimeType: 'application/octet-stream', buffer: Buffer.from(downloaded.bytes) });
      await waitForState(page, 'loaded', 60_000);
      assert.equal(await page.$eval('body', (el) => el.dataset.step), '30');
      assert.equal(await page.inputValue('#config'), 'tiny');
      assert.match(await page.textContent('#model-note'), /Loaded .*step 30/);
      // The same weights give the same maps for the same text.
      await page.waitForSelector('#attention-grid[data-step="30"]', { timeout: 30_000 });
      const attention = await attentionData(page);
      checkAttention(attention, TRAIN_CONFIGS.tiny.model.layers, TRAIN_CONFIGS.tiny.model.heads);
      assert.equal(attention.grid.checksum, trained.checksum, 'the loaded model computes other attention maps');
      await page.waitForSelector('#samples .sample[data-done="true"]', { timeout: 30_000 });
      assert.match(await page.textContent('#samples .sample h3'), /Step 30 · loaded checkpoint/);

      // Continue training to step 40 on the same text.
      await pickText(page, trained.text);
      await page.fill('#steps', '40');
      await page.click('#resume');
      await waitForState(page, 'finished');
      assert.equal(await page.$eval('body', (el) => el.dataset.step), '40');
      const chart = await chartData(page);
      assert.equal(Number(chart.points), 10, 'steps 31 to 40');
      assert.ok(Number(chart.lastValid) < 4, `validation loss ${chart.lastValid} after resuming`);

      // A file that is not a checkpoint gives a clear error and keeps the model.
      await page.setInputFiles('#checkpoint-file', { name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a checkpoint') });
      await page.waitForFunction(() => document.getElementById('global-error').textContent.length > 0, null, { timeout: 30_000 });
      assert.match(await page.textContent('#global-error'), /^broken\.safetensors is not a checkpoint this page can read: .*(header|bytes)/i);
      await waitForState(page, 'finished', 30_000);
      assert.equal(await page.isEnabled('#download'), true);
      assert.equal(await page.$eval('#attention-grid', (el) => el.querySelectorAll('figure').length), 8, 'the maps stay');

      await mkdir(artifactsDir, { recursive: true });
      await page.screenshot({ path: path.join(artifactsDir, 'train-dark-1280x800.png'), fullPage: true });
      // The broken file's error is on the page, not in the console.
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
