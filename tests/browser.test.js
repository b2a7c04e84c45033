// browser.test.js: web/server.js over raw HTTP, then the demo page and the package in Debian's
// Chromium (driven by playwright-core): no console errors or failed requests, the SIMD build,
// the seed's example and a conformance case against PyTorch, cross-origin isolation, screenshots.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadRope } from '../js/index.js';
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
  async function openDemo(viewport = { width: 1280, height: 800 }) {
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
    await page.goto(`${baseUrl}/`);  // through the redirect, as a user would arrive
    await page.waitForSelector('#status[data-ready="true"]', { timeout: 15_000 });
    return { page, problems, responses };
  }

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

  test('screenshots at 1280x800 and 390x844; no horizontal scrolling on a phone', async () => {
    await mkdir(artifactsDir, { recursive: true });
    const { page } = await openDemo({ width: 1280, height: 800 });
    try {
      await page.screenshot({ path: path.join(artifactsDir, 'demo-1280x800.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: path.join(artifactsDir, 'demo-390x844.png'), fullPage: true });
      const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(scrollWidth <= 390, `the page is ${scrollWidth} px wide at a 390 px viewport`);
    } finally {
      await page.close();
    }
  });
});
