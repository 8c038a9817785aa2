// A small stand-in for the lakeFS server behind Portcullis (tests/e2e/lakefs.test.mjs): it answers the
// few operations the lakeFS Python SDK calls in the test in lakeFS's API JSON shape, as the user Portcullis
// names in its identity headers (x-auth-request-user / x-auth-request-email), and counts every request,
// so a test can prove that a refused token never reached it.
//
//   GET  /api/v1/user       -> 200 {"user": {"id", "creation_date", "friendly_name", "email"}} (lakeFS's
//                              CurrentUser), or 401 {"message"} when no identity header came with it
//   GET  /api/v1/healthcheck -> 204
//   POST /api/v1/sts/login   -> with `fakeSts` only: lakeFS's own answer, for checking the SDK against the
//                              stub alone (code "stub-code:<user>" -> {"token": "stub-token:<user>",
//                              "token_expiration": now + min(ttl_seconds ?? 3600, 43200)}, the lifetimes
//                              of lakeFS's controller); without it 404, counted like everything else
//   anything else            -> 404 {"message"}
//   GET  /__stub/stats       -> {count, log} (not counted; the test reads the counters in-process)
//
// In-process: `const stub = await startLakefsStub({ port: 0 })` -> {port, url, count(), log, reset(),
// close()}. Stand-alone: `LAKEFS_STUB_PORT=8000 [LAKEFS_STUB_FAKE_STS=1] node tests/upstream/lakefs_stub.mjs`.
import http from 'node:http';
import { fileURLToPath } from 'node:url';

// lakeFS's STS lifetimes (pkg/api/controller.go: defaultSTSTTLSeconds, maxSTSTTLSeconds).
const DEFAULT_TTL = 3600;
const MAX_TTL = 12 * 3600;
// A fixed creation date: the SDK's User model requires an integer (unix seconds).
const CREATED = 1700000000;

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export function startLakefsStub({ port = 0, host = '127.0.0.1', fakeSts = false } = {}) {
  const log = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://stub');
    if (url.pathname === '/__stub/stats') {
      json(res, 200, { count: log.length, log });
      return;
    }
    const body = await readBody(req);
    const h = req.headers;
    log.push({
      method: req.method,
      path: url.pathname,
      user: h['x-auth-request-user'] ?? null,
      email: h['x-auth-request-email'] ?? null,
      authorization: h.authorization ?? null,
      client: h['x-lakefs-client'] ?? null,
      userAgent: h['user-agent'] ?? null,
    });
    if (req.method === 'GET' && url.pathname === '/api/v1/healthcheck') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/user') {
      let user = h['x-auth-request-user'];
      let email = h['x-auth-request-email'];
      // The stand-alone check: the stub's own fake token stands for Portcullis's identity headers.
      const fake = fakeSts && /^Bearer stub-token:(.+)$/.exec(h.authorization || '');
      if (!user && fake) { user = fake[1]; email = `${fake[1]}@example.com`; }
      if (!user) {
        json(res, 401, { message: 'error authenticating request' });
        return;
      }
      json(res, 200, { user: { id: user, creation_date: CREATED, friendly_name: user, ...(email ? { email } : {}) } });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/sts/login' && fakeSts) {
      let req2;
      try { req2 = JSON.parse(body); } catch { json(res, 400, { message: 'invalid JSON' }); return; }
      const m = /^stub-code:(.+)$/.exec(req2.code || '');
      if (!m || typeof req2.state !== 'string' || typeof req2.redirect_uri !== 'string') {
        json(res, 401, { message: 'invalid code' });
        return;
      }
      const ttl = Math.min(MAX_TTL, Number.isInteger(req2.ttl_seconds) ? req2.ttl_seconds : DEFAULT_TTL);
      json(res, 200, { token: `stub-token:${m[1]}`, token_expiration: Math.floor(Date.now() / 1000) + ttl });
      return;
    }
    json(res, 404, { message: `not found: ${req.method} ${url.pathname}` });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const p = server.address().port;
      resolve({
        port: p,
        url: `http://${host}:${p}`,
        log,
        count: () => log.length,
        reset: () => { log.length = 0; },
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.LAKEFS_STUB_PORT || 8000);
  const stub = await startLakefsStub({ port, fakeSts: process.env.LAKEFS_STUB_FAKE_STS === '1' });
  console.log(`lakeFS stub listening on ${stub.url}`);
}
