// server.js: a small static file server for the project root, for the demo page and the browser
// tests. No dependencies. `node web/server.js` serves on $HOST:$PORT (default 127.0.0.1:8080);
// tests import startServer() and ask for port 0 (any free port).
//
// The whole repository root is served, because the page imports ../js/index.js, which fetches
// ../dist/rope-*.wasm. Every response carries the cross-origin isolation headers: with them
// `crossOriginIsolated` is true, which the threaded wasm build will need (SharedArrayBuffer) and
// which gives performance.now() its finer resolution for the timings the page shows.

import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEFAULT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Exactly 'application/wasm' (no charset): browsers compile wasm while it streams in only then,
// and js/loader.js checks for this exact value.
const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const COMMON_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  // A development server: always revalidate, so a rebuilt .wasm or edited page shows at once.
  'Cache-Control': 'no-cache',
};

function send(res, status, headers, body = '') {
  res.writeHead(status, { ...COMMON_HEADERS, ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendError(res, status, extraHeaders = {}) {
  const text = `${status} ${http.STATUS_CODES[status]}\n`;
  send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...extraHeaders }, text);
}

function redirect(res, location) {
  send(res, 302, { Location: location, 'Content-Length': 0 });
}

/** True when `file` is `root` itself or lies inside it. Both must be absolute and normalized. */
function isInside(root, file) {
  return file === root || file.startsWith(root + path.sep);
}

async function handle(req, res, root) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, 405, { Allow: 'GET, HEAD' });
    return;
  }

  // req.url is the raw request target: nothing has normalized '..' or percent-escapes yet.
  const rawPath = req.url.split(/[?#]/, 1)[0];
  const query = req.url.slice(rawPath.length);
  let urlPath;
  try {
    urlPath = decodeURIComponent(rawPath);
  } catch {
    sendError(res, 400);  // a malformed percent-escape
    return;
  }
  if (!urlPath.startsWith('/') || urlPath.includes('\0')) {
    sendError(res, 400);
    return;
  }
  if (urlPath === '/') {
    redirect(res, `/web/${query}`);  // the page's relative imports need /web/; keep the shared state
    return;
  }

  // path.join resolves every '..' (also decoded ones such as %2e%2e%2f); what ends up outside the
  // root is an escape attempt.
  const file = path.join(root, urlPath);
  if (!isInside(root, file)) {
    sendError(res, 403);
    return;
  }
  // Hidden files and folders (.git, .npmrc, ...) are not part of the site.
  if (path.relative(root, file).split(path.sep).some((part) => part.startsWith('.'))) {
    sendError(res, 404);
    return;
  }

  let target = file;
  let info;
  try {
    info = await stat(target);
    if (info.isDirectory()) {
      // No listings: a folder is served only through its index.html, and only at a URL ending in
      // '/' so that relative links in that page resolve inside the folder.
      if (!rawPath.endsWith('/')) {
        redirect(res, `${rawPath}/${query}`);
        return;
      }
      target = path.join(file, 'index.html');
      info = await stat(target);
    }
    // A symbolic link inside the root must not lead outside it either.
    if (!isInside(root, await realpath(target))) {
      sendError(res, 403);
      return;
    }
  } catch {
    sendError(res, 404);
    return;
  }
  if (!info.isFile()) {
    sendError(res, 404);
    return;
  }

  const type = MIME_TYPES[path.extname(target).toLowerCase()] ?? 'application/octet-stream';
  const headers = { 'Content-Type': type, 'Content-Length': info.size };
  if (req.method === 'HEAD') {
    send(res, 200, headers);
    return;
  }
  const stream = createReadStream(target);
  stream.on('open', () => {
    res.writeHead(200, { ...COMMON_HEADERS, ...headers });
    stream.pipe(res);
  });
  stream.on('error', () => {
    if (res.headersSent) res.destroy();  // failed mid-body: the client sees a cut connection
    else sendError(res, 500);
  });
}

/**
 * Starts serving `root` (default: the repository root). Resolves to the listening http.Server;
 * server.address().port is the actual port (port 0 picks a free one).
 */
export function startServer({ port = 8080, host = '127.0.0.1', root = DEFAULT_ROOT } = {}) {
  // The real path, so that the symlink check above compares like with like.
  const realRoot = realpathSync(path.resolve(root));
  const server = http.createServer((req, res) => {
    handle(req, res, realRoot).catch(() => {
      if (res.headersSent) res.destroy();
      else sendError(res, 500);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function isMainScript() {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMainScript()) {
  const portText = process.env.PORT ?? '8080';
  const host = process.env.HOST ?? '127.0.0.1';
  try {
    const server = await startServer({ port: Number(portText), host });
    // Loopback and wildcard addresses are all reachable as localhost; any other host is printed.
    const local = ['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost'].includes(host);
    const shown = local ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    console.log(`rope-wasm: serving http://${shown}:${server.address().port}/`);
  } catch (error) {
    console.error(`rope-wasm: cannot listen on ${host}:${portText}: ${error.message}`);
    process.exit(1);
  }
}
