// browser.test.js: web/server.js over raw HTTP, then the page and the package in Debian's
// Chromium (driven by playwright-core): no console errors or failed requests, the SIMD build,
// the seed's example and a conformance case against PyTorch, cross-origin isolation; the
// interactive views (dials turn by Δm·θ_i, the scores are the module's rope.scores, lock m − n
// and its animation keep q·k, pairing / base / scaling / partial rotation change what they should,
// the heatmap's diagonals, URL state), the phone layout, and screenshots.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadRope } from '../js/index.js';
import { ropeOptions, vectors } from '../web/model.js';
import { startServer } from '../web/server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const referenceDir = path.resolve(repoRoot, '..', 'shared', 'reference');
const artifactsDir = path.join(repoRoot, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync',
];

// Conformance tests need PyTorch's outputs; without them they skip and say why.
const skipReference = existsSync(referenceDir)
  ? false
  : `reference data not found at ${referenceDir} (PyTorch outputs to compare against)`;

/** Reads a reference case: its JSON and each array as a typed array, by name. */
async function readCase(name) {
  const meta = JSON.parse(await readFile(path.join(referenceDir, 'cases', `${name}.json`), 'utf8'));
  const arrays = {};
  for (const { name: arrayName, dtype, file } of meta.arrays) {
    const bytes = await readFile(path.join(referenceDir, 'cases', file));
    // Copy into a fresh, aligned buffer: Buffer slices may start at any byte offset.
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    arrays[arrayName] = dtype === 'f64' ? new Float64Array(buffer)
      : dtype === 'i32' ? new Int32Array(buffer) : new Float32Array(buffer);
  }
  return { meta, arrays };
}

/** A request with the path sent byte for byte (fetch and new URL would normalize '..'). */
function rawRequest(port, method, requestPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: requestPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let server;
let baseUrl;

before(async () => {
  server = await startServer({ port: 0 });
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

describe('web/server.js', () => {
  test('refuses paths that escape the root', async () => {
    const attempts = [
      '/../../etc/passwd',
      '/web/../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/web/..%2f..%2f..%2fetc%2fpasswd',
    ];
    for (const attempt of attempts) {
      const { status, body } = await rawRequest(server.address().port, 'GET', attempt);
      assert.ok(status === 403 || status === 404, `${attempt}: expected 403 or 404, got ${status}`);
      assert.doesNotMatch(body, /root:/, `${attempt} leaked a file`);
    }
  });

  test('hides dotfiles and missing files, lists no folders', async () => {
    const port = server.address().port;
    assert.equal((await rawRequest(port, 'GET', '/.git/config')).status, 404);
    assert.equal((await rawRequest(port, 'GET', '/no-such-file.js')).status, 404);
    assert.equal((await rawRequest(port, 'GET', '/js/')).status, 404);  // a folder without index.html
  });

  test('serves .wasm as application/wasm with the isolation headers', async () => {
    const { status, headers } = await rawRequest(server.address().port, 'GET', '/dist/rope-simd.wasm');
    assert.equal(status, 200);
    assert.equal(headers['content-type'], 'application/wasm');
    assert.equal(headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal(headers['cross-origin-resource-policy'], 'same-origin');
  });

  test('redirects / to the page, answers HEAD, refuses other methods', async () => {
    const port = server.address().port;
    const root = await rawRequest(port, 'GET', '/');
    assert.equal(root.status, 302);
    assert.equal(root.headers.location, '/web/');
    // A shared link to / keeps its state in the query string.
    const shared = await rawRequest(port, 'GET', '/?m=5&n=3');
    assert.equal(shared.headers.location, '/web/?m=5&n=3');
    const head = await rawRequest(port, 'HEAD', '/web/index.html');
    assert.equal(head.status, 200);
    assert.match(head.headers['content-type'], /^text\/html/);
    assert.equal(head.body, '');
    const post = await rawRequest(port, 'POST', '/web/index.html');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});

describe('demo page and package in Chromium', { timeout: 120_000 }, () => {
  let browser;

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error('install Chromium: apt-get install -y chromium');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
  });

  /**
   * Opens the demo in a fresh page and waits until it has computed. `problems` collects console
   * errors, uncaught exceptions, failed requests and HTTP errors; `responses` every response.
   */
  async function openDemo(viewport = { width: 1280, height: 800 }, query = '') {
    const page = await browser.newPage({ viewport });
    const problems = [];
    const responses = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('requestfailed', (request) => {
      problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
    });
    page.on('response', (response) => {
      responses.push(response);
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    // Through the redirect, as a user would arrive; a shared link (with its state) names the page.
    await page.goto(query ? `${baseUrl}/web/${query}` : `${baseUrl}/`);
    await page.waitForSelector('#status[data-ready="true"]', { timeout: 15_000 });
    await waitForHeavy(page);
    return { page, problems, responses };
  }

  /** Waits until the worker's heatmap and decay curves for the current state have arrived. */
  async function waitForHeavy(page) {
    await page.waitForFunction(() => document.body.dataset.heavy && !document.body.dataset.heavyPending,
      null, { timeout: 30_000 });
  }

  /** Sets a range input (or any control) the way a user's drag does: value, then an input event. */
  async function setControl(page, selector, value) {
    await page.$eval(selector, (el, v) => {
      el.value = String(v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
    }, value);
  }

  /** Every dial's numbers, from its data attributes. */
  const readDials = (page) => page.$$eval('#dials .dial', (dials) => dials.map((d) => ({
    pair: Number(d.dataset.pair), features: d.dataset.features, theta: Number(d.dataset.theta),
    rotQ: Number(d.dataset.rotQ), rotK: Number(d.dataset.rotK), between: Number(d.dataset.between),
  })));
  const readQk = (page) => page.$eval('#readout', (el) => Number(el.dataset.qk));
  const wrap = (a) => a - 2 * Math.PI * Math.round(a / (2 * Math.PI));

  const readOutput = (page) => page.$eval('#output-table', (table) => JSON.parse(table.dataset.output));

  test('the demo loads with no errors or failed requests and runs the SIMD build', async () => {
    const { page, problems } = await openDemo();
    try {
      assert.equal(await page.$eval('#status', (el) => el.dataset.build), 'simd');
      assert.match(await page.textContent('#status'), /SIMD/);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test("the demo's output for the seed example equals PyTorch's", { skip: skipReference }, async () => {
    const { page, problems } = await openDemo();
    try {
      const { meta, arrays } = await readCase('seed_example_d4');
      assert.deepEqual(meta.arrays[0].shape, [3, 1, 1, 4]);
      const output = await readOutput(page);
      assert.equal(output.length, arrays.y_seed_f32.length);
      output.forEach((value, i) => {
        assert.ok(Math.abs(value - arrays.y_seed_f32[i]) <= 1e-5,
          `output[${i}] = ${value}, PyTorch ${arrays.y_seed_f32[i]}`);
      });
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('the controls recompute with the chosen dim, base, pairing and offset', async () => {
    const { page, problems } = await openDemo();
    try {
      const rw = await loadRope();
      const x = new Float32Array([1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10]);
      const expected = (dim, base, pairing, offset) => {
        const rope = rw.rotaryEmbedding({ dim, base, pairing });
        const y = rope.apply(x, { shape: [3, 1, 1, 4], layout: 'sbhd', offset });
        rope.dispose();
        return Array.from(y);
      };
      // fill and selectOption fire 'input' events, which recompute synchronously.
      await page.selectOption('#dim', '2');
      await page.fill('#base', '500');
      assert.deepEqual(await readOutput(page), expected(2, 500, 'half', 0));
      await page.selectOption('#dim', '4');
      await page.selectOption('#pairing', 'interleaved');
      await page.fill('#offset', '1000000');
      assert.deepEqual(await readOutput(page), expected(4, 500, 'interleaved', 1_000_000));
      assert.match(await page.textContent('#timing'), /\d+(\.\d+)? (µs|ms)/);

      // A bad value shows the library's message and no output.
      await page.fill('#base', '-1');
      assert.match(await page.textContent('#error'), /base/);
      assert.equal(await page.$eval('#output-table', (table) => table.dataset.output), undefined);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('conformance: seed_rope n64 h4 hd32 d16 in the browser with the SIMD build', { skip: skipReference }, async () => {
    const { meta, arrays } = await readCase('seed_rope_n64_b1_h4_hd32_d16_base10000');
    const shape = meta.arrays.find((a) => a.name === 'x').shape;
    assert.deepEqual(shape, [64, 1, 4, 32]);
    const page = await browser.newPage();
    try {
      // A page of this origin, so the dynamic import and the wasm fetch are same-origin.
      await page.goto(`${baseUrl}/web/`);
      const result = await page.evaluate(async ({ x, yRef, shape, dim, base }) => {
        const { loadRope } = await import('/js/index.js');
        const rw = await loadRope({ simd: true });
        const rope = rw.rotaryEmbedding({ dim, base });
        const y = rope.apply(new Float32Array(x), { shape, layout: 'sbhd' });
        rope.dispose();
        let maxError = 0;
        let maxAbs = 0;
        for (let i = 0; i < y.length; i++) {
          maxError = Math.max(maxError, Math.abs(y[i] - yRef[i]));
          maxAbs = Math.max(maxAbs, Math.abs(yRef[i]));
        }
        return { simd: rw.simd, length: y.length, maxError, maxAbs };
      }, { x: Array.from(arrays.x), yRef: Array.from(arrays.y_f64), shape, dim: meta.d_rope, base: meta.base });
      assert.equal(result.simd, true);
      assert.equal(result.length, arrays.y_f64.length);
      assert.ok(result.maxError < 1e-5 * result.maxAbs,
        `max abs error ${result.maxError} vs y_f64 exceeds 1e-5 * max|y| = ${1e-5 * result.maxAbs}`);
    } finally {
      await page.close();
    }
  });

  test('the page is cross-origin isolated and gets its wasm as application/wasm', async () => {
    const { page, responses } = await openDemo();
    try {
      const documentResponse = responses.find((r) => r.url() === `${baseUrl}/web/`);
      assert.ok(documentResponse, 'no response for /web/');
      const documentHeaders = await documentResponse.allHeaders();
      assert.equal(documentHeaders['cross-origin-opener-policy'], 'same-origin');
      assert.equal(documentHeaders['cross-origin-embedder-policy'], 'require-corp');

      const wasmResponse = responses.find((r) => r.url().endsWith('/dist/rope-simd.wasm'));
      assert.ok(wasmResponse, 'the page never fetched dist/rope-simd.wasm');
      const wasmHeaders = await wasmResponse.allHeaders();
      assert.equal(wasmHeaders['content-type'], 'application/wasm');
      assert.equal(wasmHeaders['cross-origin-embedder-policy'], 'require-corp');
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    } finally {
      await page.close();
    }
  });

  test('one dial per pair; moving m turns every query dial by exactly Δm·θ_i and no key dial', async () => {
    const { page, problems } = await openDemo();
    try {
      const before = await readDials(page);
      assert.equal(before.length, 32, 'head_dim 64 fully rotated: 32 dials');
      const m0 = Number(await page.inputValue('#m'));
      // The keyboard, as a user without a mouse would: three steps right.
      await page.focus('#m');
      for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
      assert.equal(Number(await page.inputValue('#m')), m0 + 3);
      const after = await readDials(page);
      for (let i = 0; i < before.length; i++) {
        const { theta } = before[i];
        assert.ok(Math.abs(theta - 10000 ** (-(2 * i) / 64)) < 1e-12 * Math.max(1, theta), `theta_${i}`);
        const turned = wrap(after[i].rotQ - before[i].rotQ - 3 * theta);
        assert.ok(Math.abs(turned) < 1e-4, `pair ${i}: q turned by ${after[i].rotQ - before[i].rotQ}, expected 3·θ = ${3 * theta}`);
        assert.ok(Math.abs(wrap(after[i].rotK - before[i].rotK)) < 1e-6, `pair ${i}: k moved`);
      }
      // A bigger jump by the slider: Δm = 200.
      await setControl(page, '#m', m0 + 203);
      const far = await readDials(page);
      for (let i = 0; i < before.length; i++) {
        assert.ok(Math.abs(wrap(far[i].rotQ - after[i].rotQ - 200 * before[i].theta)) < 1e-4, `pair ${i} after Δm = 200`);
      }
      assert.match(await page.textContent('#readout'), /q·k\s*=\s*-?−?\d/);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('lock m − n: moving either position moves both and q·k stays constant to 1e-5', async () => {
    const { page, problems } = await openDemo();
    try {
      await setControl(page, '#m', 40);
      await setControl(page, '#n', 25);
      await page.check('#lock');
      const qk0 = await readQk(page);
      const between0 = (await readDials(page)).map((d) => d.between);
      const seen = [];
      for (const m of [41, 60, 200, 511, 15, 300]) {
        await setControl(page, '#m', m);
        const mv = Number(await page.inputValue('#m'));
        const nv = Number(await page.inputValue('#n'));
        assert.equal(mv - nv, 15, `m − n changed: m ${mv}, n ${nv}`);
        seen.push(mv);
        const qk = await readQk(page);
        assert.ok(Math.abs(qk - qk0) <= 1e-5, `q·k ${qk} at m = ${mv} vs ${qk0}`);
        const between = (await readDials(page)).map((d) => d.between);
        between.forEach((b, i) => assert.ok(Math.abs(wrap(b - between0[i])) < 1e-4, `pair ${i}: angle between changed`));
      }
      assert.deepEqual(seen, [41, 60, 200, 511, 15, 300]);
      // Moving n moves m too.
      await page.focus('#n');
      await page.keyboard.press('ArrowLeft');
      assert.equal(Number(await page.inputValue('#m')) - Number(await page.inputValue('#n')), 15);
      assert.ok(Math.abs((await readQk(page)) - qk0) <= 1e-5);
      // Unlocked, moving m changes the score.
      await page.uncheck('#lock');
      await setControl(page, '#m', 100);
      assert.ok(Math.abs((await readQk(page)) - qk0) > 1e-3);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  /** The module's score for the page's state, computed here in Node by the library: rope.scores. */
  async function nodeScore(state, m, n, { scaled = true } = {}) {
    const rw = await nodeRope();
    const { q, k } = vectors(state);
    const rope = rw.rotaryEmbedding(ropeOptions(state, { scaled }));
    try {
      return rope.scores(q, k, { headDim: state.hd, positionsQ: [m], positionsK: [n] })[0];
    } finally {
      rope.dispose();
    }
  }
  let nodeRw = null;
  const nodeRope = async () => (nodeRw ??= await loadRope());

  test("the q·k readout, the heatmap cell and the decay curve are the module's rope.scores", async () => {
    const { page, problems } = await openDemo();
    try {
      const read = () => page.evaluate(() => ({
        state: window.__ropePage.state,
        qk: Number(document.getElementById('readout').dataset.qk),
        qkRaw: window.__ropePage.frame.qkRaw,
        cell: Number(document.getElementById('heatmap').dataset.cell),
        d0: Number(document.getElementById('decay').dataset.d0),
      }));
      // The defaults: the readout, the heatmap's cell at (m, n) and the decay curve at distance 0
      // are, bit for bit, what the library computes here for the same state.
      let page0 = await read();
      assert.equal(page0.state.hd, 64);
      assert.equal(page0.qk, await nodeScore(page0.state, page0.state.m, page0.state.n));
      assert.equal(page0.cell, page0.qk, 'the heatmap cell at (m, n) is the readout');
      assert.equal(page0.d0, await nodeScore(page0.state, 0, 0));
      // Without RoPE: both at position 0 of the unscaled embedding, the identity rotation.
      const { q, k } = vectors(page0.state);
      const plainDot = Array.from(q).reduce((sum, v, i) => sum + v * k[i], 0);
      assert.ok(Math.abs(page0.qkRaw - plainDot) <= 1e-5 * Math.abs(plainDot), `${page0.qkRaw} vs ${plainDot}`);
      assert.match(await page.textContent('#timings'), /scores/);

      // Another model: interleaved, head_dim 128 with half of it rotated, YaRN ×4, base 500,000.
      await page.selectOption('#head-dim', '128');
      await page.selectOption('#rope-pairing', 'interleaved');
      await page.selectOption('#rope-pct', '0.5');
      await page.selectOption('#rope-base', '500000');
      await page.selectOption('#scaling', 'yarn');
      await setControl(page, '#m', 300);
      await setControl(page, '#n', 17);
      await waitForHeavy(page);
      page0 = await read();
      assert.equal(page0.state.scaling, 'yarn');
      assert.equal(page0.qk, await nodeScore(page0.state, 300, 17));
      assert.equal(page0.cell, page0.qk);
      assert.equal(page0.d0, await nodeScore(page0.state, 0, 0));
      assert.equal(page0.qkRaw, await nodeScore(page0.state, 0, 0, { scaled: false }));
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  /**
   * Collects {m, n, qk} at every redraw of the readout until `count` different m were seen (or
   * `timeout` ms passed).
   */
  const watchReadout = (page, count, timeout = 10_000) => page.evaluate(([count, timeout]) => new Promise((resolve) => {
    const readout = document.getElementById('readout');
    const seen = [];
    const ms = new Set();
    const done = () => {
      observer.disconnect();
      resolve(seen);
    };
    const observer = new MutationObserver(() => {
      const { m, n } = window.__ropePage.state;
      seen.push({ m, n, qk: Number(readout.dataset.qk) });
      ms.add(m);
      if (ms.size >= count) done();
    });
    observer.observe(readout, { attributes: true, childList: true, subtree: true });
    setTimeout(done, timeout);
  }), [count, timeout]);

  test('Play animates lock m − n: both positions advance, q·k stays constant to 1e-5 across frames', async () => {
    const { page, problems } = await openDemo();
    try {
      await setControl(page, '#m', 40);
      await setControl(page, '#n', 25);
      assert.equal(await page.isChecked('#lock'), false);
      const qk0 = await readQk(page);
      const dials0 = await readDials(page);
      assert.equal(await page.textContent('#play .text'), 'Play');
      const watching = watchReadout(page, 10);
      await page.click('#play');
      const frames = await watching;
      assert.equal(await page.$eval('#play', (el) => el.dataset.playing), 'true');
      assert.equal(await page.textContent('#play .text'), 'Pause');
      assert.equal(await page.isChecked('#lock'), true, 'Play locks m − n');
      // A screen reader hears no announcement per frame while it plays.
      assert.equal(await page.$eval('#readout', (el) => el.getAttribute('aria-live')), 'off');
      const ms = [...new Set(frames.map((f) => f.m))];
      assert.ok(ms.length >= 10, `only ${ms.length} positions in 10 s: ${ms}`);
      ms.forEach((m, i) => assert.equal(m, 41 + i, 'one position per step'));
      for (const { m, n, qk } of frames) {
        assert.equal(m - n, 15, `m − n changed: m ${m}, n ${n}`);
        assert.ok(Math.abs(qk - qk0) <= 1e-5, `q·k ${qk} at m = ${m} vs ${qk0}`);
      }
      // The dials turned (pair 0 by 1 radian per step) and every angle between q and k stayed.
      const dials1 = await readDials(page);
      assert.ok(Math.abs(wrap(dials1[0].rotQ - dials0[0].rotQ)) > 0.1, 'pair 0 did not turn');
      dials1.forEach((d, i) => assert.ok(Math.abs(wrap(d.between - dials0[i].between)) < 1e-4, `pair ${i}: angle between changed`));
      await page.click('#play');
      assert.equal(await page.$eval('#play', (el) => el.dataset.playing), 'false');
      assert.equal(await page.$eval('#readout', (el) => el.getAttribute('aria-live')), 'polite');
      const stopped = await page.evaluate(() => window.__ropePage.state.m);
      await page.waitForTimeout(450);
      assert.equal(await page.evaluate(() => window.__ropePage.state.m), stopped, 'Pause stops it');

      // The keyboard alone: focus Play, Space starts it, Space pauses it.
      await page.focus('#play');
      await page.keyboard.press('Space');
      await page.waitForFunction((m) => window.__ropePage.state.m > m + 1, stopped);
      await page.keyboard.press('Space');
      assert.equal(await page.$eval('#play', (el) => el.dataset.playing), 'false');

      // Unlocking stops it; Step moves both by one; past the end both go back with the same m − n.
      await page.click('#play');
      await page.uncheck('#lock');
      assert.equal(await page.$eval('#play', (el) => el.dataset.playing), 'false');
      await setControl(page, '#m', 510);
      await setControl(page, '#n', 495);
      const qkEnd = await readQk(page);
      await page.click('#step');
      assert.deepEqual(await page.evaluate(() => [window.__ropePage.state.m, window.__ropePage.state.n]), [511, 496]);
      assert.equal(await page.isChecked('#lock'), true);
      await page.click('#step');
      assert.deepEqual(await page.evaluate(() => [window.__ropePage.state.m, window.__ropePage.state.n]), [15, 0]);
      assert.ok(Math.abs((await readQk(page)) - qkEnd) <= 1e-5);
      // The URL holds the paused state.
      await page.waitForFunction(() => /[?&]m=15(&|$)/.test(location.search) && /[?&]lock=1/.test(location.search));
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('with prefers-reduced-motion nothing moves by itself: Play is hidden, Step steps', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, reducedMotion: 'reduce' });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    try {
      await page.goto(`${baseUrl}/web/?m=40&n=25`);
      await page.waitForSelector('#status[data-ready="true"]');
      assert.equal(await page.isVisible('#play'), false);
      assert.match(await page.textContent('#play-note'), /reduced motion/);
      const qk0 = await readQk(page);
      for (let i = 1; i <= 3; i++) {
        await page.click('#step');
        assert.deepEqual(await page.evaluate(() => [window.__ropePage.state.m, window.__ropePage.state.n]), [40 + i, 25 + i]);
        assert.ok(Math.abs((await readQk(page)) - qk0) <= 1e-5);
      }
      await page.waitForTimeout(400);
      assert.equal(await page.evaluate(() => window.__ropePage.state.m), 43, 'nothing advanced by itself');
      // The step button has a name that says what it does.
      assert.match(await page.getAttribute('#step', 'aria-label'), /m and n forward by one/);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('pairing, base, head dimension, partial rotation and scaling change what they should', async () => {
    const { page, problems } = await openDemo();
    try {
      let dials = await readDials(page);
      assert.equal(dials[1].features, '1,33');
      await page.selectOption('#rope-pairing', 'interleaved');
      dials = await readDials(page);
      assert.equal(dials[1].features, '2,3');
      assert.equal(await page.$eval('#pairing-diagram', (el) => el.dataset.pairing), 'interleaved');
      assert.equal(await page.$eval('#pairing-diagram', (el) => el.dataset.pairs), '0-1 2-3 4-5 6-7');

      await page.selectOption('#rope-base', '500000');
      dials = await readDials(page);
      dials.forEach((d, i) => assert.ok(Math.abs(d.theta - 500000 ** (-(2 * i) / 64)) < 1e-12, `theta_${i} at base 500000`));

      await page.selectOption('#head-dim', '128');
      await waitForHeavy(page);
      assert.equal((await readDials(page)).length, 64);
      assert.equal(await page.$eval('#heatmap', (el) => el.dataset.grid), '512');

      // Partial rotation: 50% of 128 features rotate, the other 64 come back bit for bit.
      await page.selectOption('#rope-pct', '0.5');
      assert.equal((await readDials(page)).length, 32);
      const partial = await page.$eval('#partial-canvas', (el) => ({ ...el.dataset }));
      assert.equal(partial.rotaryDim, '64');
      assert.equal(partial.unchanged, '64');
      assert.ok(Number(partial.changed) > 48, `only ${partial.changed} rotated features changed`);

      // Linear scaling by 4 divides every frequency by 4; the decay curves are recomputed.
      const plain = await readDials(page);
      const average1 = await page.$eval('#decay', (el) => Number(el.dataset.average1));
      await page.selectOption('#scaling', 'linear');
      await page.selectOption('#factor', '4');
      await waitForHeavy(page);
      const linear = await readDials(page);
      linear.forEach((d, i) => assert.ok(Math.abs(d.theta - plain[i].theta / 4) < 1e-15 + 1e-12 * d.theta, `linear theta_${i}`));
      assert.notEqual(await page.$eval('#decay', (el) => Number(el.dataset.average1)), average1);

      // YaRN keeps the fastest pairs, slows the slowest by the factor, and scales cos and sin.
      await page.selectOption('#scaling', 'yarn');
      await waitForHeavy(page);
      const yarn = await readDials(page);
      assert.ok(Math.abs(yarn[0].theta - plain[0].theta) < 1e-12, 'yarn keeps the fastest pair');
      assert.ok(Math.abs(yarn.at(-1).theta - plain.at(-1).theta / 4) < 1e-12, 'yarn interpolates the slowest pair');
      assert.ok(await page.$eval('#spectrum', (el) => Number(el.dataset.attentionScaling)) > 1);

      // Llama 3 and LongRoPE load, and dynamic NTK changes nothing until a position passes the training context.
      for (const type of ['llama3', 'longrope', 'dynamic']) {
        await page.selectOption('#scaling', type);
        await waitForHeavy(page);
        assert.equal(await page.textContent('#global-error'), '', type);
      }
      await setControl(page, '#m', 10);
      await setControl(page, '#n', 5);
      const short = await readDials(page);
      short.forEach((d, i) => assert.ok(Math.abs(d.theta - plain[i].theta) < 1e-12, `dynamic theta_${i} within training`));
      await setControl(page, '#m', 500);
      const long = await readDials(page);
      assert.ok(long.at(-1).theta < plain.at(-1).theta, 'dynamic NTK slows the slow pairs past the training context');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('the heatmap has constant diagonals, RoPE off is flat, hovering sets m and n', async () => {
    const { page, problems } = await openDemo();
    try {
      const stats = await page.evaluate(() => {
        const { heat, grid } = window.__ropePage.heavy;
        let worst = 0;
        let maxAbs = 0;
        for (let d = -(grid - 1); d < grid; d++) {
          let mn = Infinity;
          let mx = -Infinity;
          for (let i = Math.max(0, d); i < Math.min(grid, grid + d); i++) {
            const v = heat[i * grid + (i - d)];
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
            maxAbs = Math.max(maxAbs, Math.abs(v));
          }
          worst = Math.max(worst, mx - mn);
        }
        return { worst, maxAbs, grid };
      });
      assert.equal(stats.grid, 512);
      assert.ok(stats.worst < 1e-4 * stats.maxAbs, `a diagonal varies by ${stats.worst}`);

      // Hover the cell in row 100, column 30 (of 512 positions on the 512-cell grid).
      await page.$eval('#heatmap', (el) => el.scrollIntoView({ block: 'center' }));
      const box = await (await page.$('#heatmap')).boundingBox();
      await page.mouse.move(box.x + (30.5 / 512) * box.width, box.y + (100.5 / 512) * box.height);
      assert.equal(await page.inputValue('#m'), '100');
      assert.equal(await page.inputValue('#n'), '30');
      const cell = await page.$eval('#heatmap', (el) => Number(el.dataset.cell));
      assert.ok(Math.abs(cell - (await readQk(page))) < 1e-4 * stats.maxAbs, 'the hovered cell is the dials\' q·k');
      // Arrow keys on the focused heatmap move the cell.
      await page.focus('#heatmap');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowLeft');
      assert.equal(await page.inputValue('#m'), '101');
      assert.equal(await page.inputValue('#n'), '29');

      // Angles never seen in training: hatched past |m − n| = training context − 1 (128 by
      // default), pushed out by a longer training context or by scaling, gone without RoPE.
      const unseen = () => page.$eval('#heatmap', (el) => ({ from: el.dataset.unseenFrom, cells: Number(el.dataset.unseenCells) }));
      const cellsFrom = (k) => (512 - k) * (512 - k + 1);  // cells with |i − j| >= k on the 512 grid
      assert.deepEqual(await unseen(), { from: '128', cells: cellsFrom(128) });
      assert.equal(await page.$eval('#heat-unseen', (el) => el.hasAttribute('hidden')), false);
      assert.match(await page.textContent('#heat-note'), /Hatched from \|m − n\| = 128/);
      await page.selectOption('#train', '256');
      await waitForHeavy(page);
      assert.deepEqual(await unseen(), { from: '256', cells: cellsFrom(256) });
      // Linear ×4 and Llama 3 ×4 slow every slow pair by 4: seen up to 4 · 127 = 508.
      await page.selectOption('#train', '128');
      for (const type of ['linear', 'llama3']) {
        await page.selectOption('#scaling', type);
        await page.selectOption('#factor', '4');
        await waitForHeavy(page);
        assert.deepEqual(await unseen(), { from: '509', cells: cellsFrom(509) }, type);
      }
      await page.selectOption('#scaling', 'none');
      await page.selectOption('#train', '4096');
      await waitForHeavy(page);
      assert.deepEqual(await unseen(), { from: 'none', cells: 0 });
      assert.equal(await page.$eval('#heat-unseen', (el) => el.hasAttribute('hidden')), true);
      await page.selectOption('#train', '128');
      await waitForHeavy(page);

      await page.uncheck('#rope-on');
      assert.equal(await page.$eval('#heatmap', (el) => el.dataset.rope), 'false');
      assert.deepEqual(await unseen(), { from: 'none', cells: 0 });
      const flat = await page.$eval('#heatmap', (canvas) => {
        const { data } = canvas.getContext('2d').getImageData(0, 0, 40, 40);
        return new Set(Array.from({ length: data.length / 4 }, (_, i) => data.slice(i * 4, i * 4 + 3).join())).size;
      });
      assert.ok(flat <= 3, `RoPE off should be one colour (plus the crosshair), got ${flat}`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test("the computation view shows the module's cos and sin, and the seed preset loads the seed's tokens", async () => {
    const { page, problems } = await openDemo();
    try {
      await setControl(page, '#m', 7);
      await page.fill('#pair', '3');
      const data = await page.$eval('#computation', (el) => ({ ...el.dataset }));
      const theta = 10000 ** (-6 / 64);
      assert.ok(Math.abs(Number(data.cos) - Math.cos(7 * theta)) < 1e-6);
      assert.ok(Math.abs(Number(data.sin) - Math.sin(7 * theta)) < 1e-6);
      assert.match(await page.textContent('#computation'), /x1 cos − x2 sin|cos − /);

      await page.click('#preset-seed');
      await waitForHeavy(page);
      assert.equal(await page.inputValue('#head-dim'), '4');
      assert.equal(await page.inputValue('#vectors'), 'seed');
      const frame = await page.evaluate(() => ({ q: Array.from(window.__ropePage.frame.q), k: Array.from(window.__ropePage.frame.k) }));
      assert.deepEqual(frame, { q: [1, 2, 3, 4], k: [4, 5, 6, 7] });
      assert.equal((await readDials(page)).length, 2);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('the whole state round-trips through the URL', async () => {
    const { page, problems } = await openDemo();
    let url;
    let expected;
    try {
      await page.selectOption('#head-dim', '32');
      await page.selectOption('#rope-base', '1000000');
      await page.selectOption('#rope-pairing', 'interleaved');
      await page.selectOption('#range', '1024');
      await page.selectOption('#scaling', 'llama3');
      await page.selectOption('#factor', '8');
      await page.selectOption('#train', '256');
      await setControl(page, '#m', 700);
      await setControl(page, '#n', 650);
      await page.check('#lock');
      await page.uncheck('#rope-on');
      await page.click('#reroll');
      await waitForHeavy(page);
      // The page writes the URL a moment after the last change (browsers throttle history updates).
      await page.waitForFunction(() => /[?&]seed=/.test(location.search));
      url = page.url();
      assert.match(url, /hd=32/);
      expected = { state: await page.evaluate(() => window.__ropePage.state), dials: await readDials(page), qk: await readQk(page) };
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
    const { page: again, problems: problems2 } = await openDemo(undefined, url.slice(url.indexOf('?')));
    try {
      const state = await again.evaluate(() => window.__ropePage.state);
      assert.deepEqual(state, expected.state);
      assert.equal(await again.inputValue('#head-dim'), '32');
      assert.equal(await again.inputValue('#scaling'), 'llama3');
      assert.equal(await again.inputValue('#m'), '700');
      assert.equal(await again.isChecked('#lock'), true);
      assert.equal(await again.isChecked('#rope-on'), false);
      assert.deepEqual(await readDials(again), expected.dials);
      assert.equal(await readQk(again), expected.qk);
      assert.deepEqual(problems2, []);
    } finally {
      await again.close();
    }
  });

  test('screenshots at 1280x800 and 390x844, light and dark; no horizontal scrolling on a phone', async () => {
    await mkdir(artifactsDir, { recursive: true });
    for (const colorScheme of ['light', 'dark']) {
      const suffix = colorScheme === 'dark' ? '-dark' : '';
      const { page, problems } = await openDemo({ width: 1280, height: 800 });
      try {
        await page.emulateMedia({ colorScheme });
        await page.evaluate(() => window.dispatchEvent(new Event('resize')));  // remeasure colours
        await page.waitForTimeout(150);
        await page.screenshot({ path: path.join(artifactsDir, `demo-1280x800${suffix}.png`), fullPage: true });
        await page.screenshot({ path: path.join(artifactsDir, `demo-1280x800${suffix}-first-screen.png`) });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.evaluate(() => window.dispatchEvent(new Event('resize')));
        await page.waitForTimeout(150);
        await page.screenshot({ path: path.join(artifactsDir, `demo-390x844${suffix}.png`), fullPage: true });
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(scrollWidth <= 390, `the page is ${scrollWidth} px wide at a 390 px viewport`);
        assert.deepEqual(problems, []);
      } finally {
        await page.close();
      }
    }
  });

  /** The spectrum's training-context label: its box, the curves' points, and curve pixels in it. */
  const readSpectrumLabel = (page) => page.$eval('#spectrum', (canvas) => {
    const box = JSON.parse(canvas.dataset.trainLabel);
    const plot = JSON.parse(canvas.dataset.plot);
    const curves = JSON.parse(canvas.dataset.curves);
    // Pixels of the query colour (the curve in force and its dots) inside the label's box.
    const hex = getComputedStyle(document.documentElement).getPropertyValue('--q').trim();
    const q = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const ratio = canvas.width / canvas.clientWidth;
    const { data } = canvas.getContext('2d').getImageData(Math.floor(box.x * ratio), Math.floor(box.y * ratio),
      Math.ceil(box.width * ratio), Math.ceil(box.height * ratio));
    let curvePixels = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.hypot(data[i] - q[0], data[i + 1] - q[1], data[i + 2] - q[2]) < 40) curvePixels++;
    }
    return { box, plot, curves, curvePixels };
  });

  /** Points of the polylines within `margin` px of the box, sampled every pixel along each segment. */
  function curvePointsIn(box, curves, margin) {
    let hits = 0;
    for (const points of curves) {
      for (let p = 0; p + 1 < points.length; p++) {
        const [ax, ay] = points[p];
        const [bx, by] = points[p + 1];
        const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay)));
        for (let t = 0; t <= steps; t++) {
          const x = ax + ((bx - ax) * t) / steps;
          const y = ay + ((by - ay) * t) / steps;
          if (x >= box.x - margin && x <= box.x + box.width + margin && y >= box.y - margin && y <= box.y + box.height + margin) hits++;
        }
      }
    }
    return hits;
  }

  test('390 px: no horizontal scrolling, nothing overlaps, the spectrum label clear of its curves', async () => {
    // Shared links open the page straight at a phone's width: the defaults, then two curves that
    // cross the training line at both ends (base 100, dynamic NTK ×16), and a short context.
    const queries = ['', '?base=100&scaling=dynamic&factor=16&m=500&n=3', '?scaling=linear&factor=16&train=16', '?hd=256&base=1000000&train=4096'];
    for (const query of queries) {
      const { page, problems } = await openDemo({ width: 390, height: 844 }, query);
      try {
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(scrollWidth <= 390, `${query}: the page is ${scrollWidth} px wide at a 390 px viewport`);
        const { box, plot, curves, curvePixels } = await readSpectrumLabel(page);
        assert.match(box.text, /^(training (context )?)?\d+$/);
        assert.ok(box.x >= plot.x && box.x + box.width <= plot.x + plot.width && box.y >= plot.y && box.y + box.height <= plot.y + plot.height,
          `${query}: label ${JSON.stringify(box)} outside the plot ${JSON.stringify(plot)}`);
        assert.equal(curvePointsIn(box, curves, 2), 0, `${query}: a curve passes through the label ${JSON.stringify(box)}`);
        assert.equal(curvePixels, 0, `${query}: ${curvePixels} curve pixels under the label`);
        // The position controls sit side by side or wrap, never on top of each other.
        const boxes = await Promise.all(['#lock', '#play', '#step', '#m', '#n'].map(async (selector) => {
          const element = selector === '#lock' ? await page.$('.lock-controls label') : await page.$(selector);
          return { selector, ...(await element.boundingBox()) };
        }));
        for (let i = 0; i < boxes.length; i++) {
          assert.ok(boxes[i].x >= 0 && boxes[i].x + boxes[i].width <= 390, `${boxes[i].selector} leaves the screen`);
          for (let j = i + 1; j < boxes.length; j++) {
            const [a, b] = [boxes[i], boxes[j]];
            const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
            assert.ok(!overlap, `${query}: ${a.selector} overlaps ${b.selector}`);
          }
        }
        assert.deepEqual(problems, []);
      } finally {
        await page.close();
      }
    }
  });
});
