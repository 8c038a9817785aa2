#!/usr/bin/env node
// Serves the configuration playground (target/playground/, built by scripts/playground-build.sh) on
// loopback and prints its URL. PORT (default 8090) and HOST (default 127.0.0.1) change where.
// `servePlayground` is also what tests/e2e/playground.test.mjs starts.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../target/playground/', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  // instantiateStreaming needs this exact type.
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
};

/** Starts a static server for `root`; resolves to { server, url }. Port 0 picks a free one. */
export function servePlayground({ root = ROOT, port = 0, host = '127.0.0.1' } = {}) {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return send(400, 'bad path\n');
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(base, `.${rel}`);
    // Nothing outside the playground directory, whatever the path says.
    if (file !== base && !file.startsWith(base + path.sep)) return send(404, 'not found\n');
    fs.readFile(file, (err, data) => {
      if (err) return send(404, 'not found\n');
      send(200, data, TYPES[path.extname(file)] || 'application/octet-stream');
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ server, url: `http://${host}:${p}/` });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  if (!fs.existsSync(path.join(ROOT, 'pkg', 'portcullis_playground_bg.wasm'))) {
    console.error('playground: target/playground is not built; run `just playground` (or scripts/playground-build.sh)');
    process.exit(1);
  }
  const port = Number(process.env.PORT || 8090);
  const host = process.env.HOST || '127.0.0.1';
  const { url } = await servePlayground({ port, host });
  console.log(`\n  Portcullis configuration playground: ${url}\n  (the core as WebAssembly in your browser; nothing leaves the page)  Ctrl-C to stop\n`);
}
