// A fault-injecting HTTP proxy between Envoy's `idp` cluster and the real oidc-provider (tests/idp/server.mjs).
// node:http only, 127.0.0.1 only.
//
// Data port: every request is forwarded to the upstream IdP (same method, path, headers, body; hop-by-hop
// headers aside) and the response relayed, unless a fault matches the request's path.
//
// Control port:
//   POST   /__faults   {"path": "/token" | "/jwks" | "/.well-known/openid-configuration" | "*",
//                       "mode": MODE, "count": N (optional: then back to pass), "delay_ms": (slow),
//                       "repeat": (jwks_duplicate_kids)}
//                      (or an array of such objects). A path rule wins over "*".
//   GET    /__faults   the rules in force
//   DELETE /__faults   clear every rule (?path=/jwks clears one)
//   GET    /__stats    {"counts": {path: n}, "served": {path: {mode: n}}, "log": [{at, method, path, mode}]}
//   DELETE /__stats    reset the counters
//
// Modes: pass, refuse (destroy the socket on receipt: no response at all), slow (answer normally after
// delay_ms, default 2500), hang (no answer for 120 s), statusNNN (e.g. status500, status503, status400: that status
// with a small JSON body), html (200 text/html), truncated (200, the real body cut in half), wrong_shape
// (200 {"foo":1}), wrong_shape_array (200 []), wrong_types (200 token-response keys with wrong types),
// huge (200 JSON of 10 MiB), reset_mid_body (200 headers + half the real body, then a reset),
// jwks_10000 (10,000 small RSA-looking keys, < 1 MiB), jwks_10000_full (10,000 keys with 2048-bit-looking
// moduli, ~4 MB), jwks_unknown_types (only keys of unknown kty, `oct`, or unusable), jwks_duplicate_kids
// (per real key: an RSA and an EC decoy with its kid, then the key itself `repeat` times, default 40, so one
// real key makes 42 keys), jwks_stale (a valid JWKS holding only a
// freshly generated RSA key, kid "stale-1", not the IdP's signing key).
//
// Run: FAULT_PORT=.. FAULT_CONTROL_PORT=.. FAULT_UPSTREAM_PORT=.. [FAULTS='[{"path":..,"mode":..}]'] node faults.mjs
// or import { startFaultProxy } in-process.
import crypto from 'node:crypto';
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const HOST = '127.0.0.1';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const FIXED_MODES = new Set([
  'pass', 'refuse', 'slow', 'hang', 'html', 'truncated', 'wrong_shape', 'wrong_shape_array', 'wrong_types', 'huge',
  'reset_mid_body', 'jwks_10000', 'jwks_10000_full', 'jwks_unknown_types', 'jwks_duplicate_kids', 'jwks_stale',
]);
export const isMode = (m) => FIXED_MODES.has(m) || /^status[1-5][0-9][0-9]$/.test(m);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64u = (buf) => Buffer.from(buf).toString('base64url');

// ----- canned bodies (built once, on first use) ----------------------------------------------------------

const cache = new Map();
const once = (key, make) => { if (!cache.has(key)) cache.set(key, make()); return cache.get(key); };

/** An RSA-looking modulus: `bytes` random bytes, top bit set, odd. */
function modulus(bytes) {
  const n = crypto.randomBytes(bytes);
  n[0] |= 0x80;
  n[bytes - 1] |= 1;
  return b64u(n);
}

const jwks10000 = () => once('jwks_10000', () => Buffer.from(JSON.stringify({
  keys: Array.from({ length: 10000 }, (_, i) => ({ kty: 'RSA', kid: `k${i}`, n: modulus(32), e: 'AQAB' })),
})));

const jwks10000Full = () => once('jwks_10000_full', () => {
  // One random 2048-bit modulus per key would cost 10,000 randomBytes calls; vary a shared one instead.
  const base = crypto.randomBytes(256);
  base[0] |= 0x80;
  const keys = Array.from({ length: 10000 }, (_, i) => {
    const n = Buffer.from(base);
    n.writeUInt32BE(i, 100);
    n[255] |= 1;
    return { kty: 'RSA', kid: `full-${i}`, use: 'sig', alg: 'RS256', n: b64u(n), e: 'AQAB' };
  });
  return Buffer.from(JSON.stringify({ keys }));
});

const staleKey = () => once('stale', () => {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...publicKey.export({ format: 'jwk' }), kid: 'stale-1', use: 'sig', alg: 'RS256' };
});

const decoyEcKey = () => once('decoy-ec', () => {
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return publicKey.export({ format: 'jwk' });
});

const huge = () => once('huge', () => {
  const size = 10 * 1024 * 1024;
  const buf = Buffer.alloc(size, 'a');
  buf.write('{"pad":"', 0);
  buf.write('"}', size - 2);
  return buf;
});

function unknownTypes(realKids) {
  const kid = realKids[0] || 'x';
  return Buffer.from(JSON.stringify({
    keys: [
      { kty: 'XYZ', kid: 'xyz-1', use: 'sig', alg: 'RS256', n: modulus(256), e: 'AQAB' },
      // A symmetric key carrying the real kid: must never be used (HMAC with a published key).
      { kty: 'oct', kid, use: 'sig', alg: 'HS256', k: b64u(crypto.randomBytes(32)) },
      { kty: 'oct', kid: 'oct-1', k: b64u(crypto.randomBytes(32)) },
      { kty: 'rsa', kid: 'lowercase-kty', n: modulus(256), e: 'AQAB' },
      { kty: '', kid: 'empty-kty' },
      { kid: 'no-kty', n: modulus(256), e: 'AQAB' },
      { kty: 42, kid: 'numeric-kty' },
    ],
  }));
}

function duplicateKids(real, repeat) {
  const keys = [];
  const rsa = staleKey();
  const ec = decoyEcKey();
  for (const k of real) {
    // Decoys first: a client that takes the first key with the kid would pick one of these.
    keys.push({ ...rsa, kid: k.kid });
    keys.push({ ...ec, kid: k.kid, use: 'sig', alg: 'ES256' });
    for (let i = 0; i < repeat; i += 1) keys.push(k);
  }
  return Buffer.from(JSON.stringify({ keys }));
}

// ----- the proxy ---------------------------------------------------------------------------------------

/**
 * Starts the proxy. Resolves to {port, controlPort, close(), setFault(), clearFaults(), stats()}.
 * `upstreamPort` is oidc-provider's port on 127.0.0.1.
 */
export function startFaultProxy({ port = 0, controlPort = 0, upstreamPort, faults: initial = [] }) {
  /** path -> {mode, remaining (null: until cleared), delay_ms} */
  const rules = new Map();
  let counts = {};
  let served = {};
  let log = [];

  function setFault({ path, mode, count, delay_ms: delayMs, repeat }) {
    if (typeof path !== 'string' || !(path === '*' || path.startsWith('/'))) throw new Error(`bad path ${JSON.stringify(path)}`);
    if (!isMode(mode)) throw new Error(`unknown mode ${JSON.stringify(mode)}`);
    if (count !== undefined && count !== null && !(Number.isInteger(count) && count > 0)) throw new Error(`bad count ${count}`);
    if (mode === 'pass') { rules.delete(path); return; }
    rules.set(path, { mode, remaining: count ?? null, delay_ms: delayMs ?? 2500, repeat: repeat ?? 40 });
  }
  for (const f of initial) setFault(f);

  function take(path) {
    const key = rules.has(path) ? path : rules.has('*') ? '*' : null;
    if (key === null) return { mode: 'pass' };
    const rule = rules.get(key);
    if (rule.remaining !== null) {
      rule.remaining -= 1;
      if (rule.remaining <= 0) rules.delete(key);
    }
    return rule;
  }

  function record(method, path, mode) {
    counts[path] = (counts[path] || 0) + 1;
    served[path] = served[path] || {};
    served[path][mode] = (served[path][mode] || 0) + 1;
    log.push({ at: Date.now(), method, path, mode });
    if (log.length > 2000) log = log.slice(-1000);
  }

  /** Sends `method path` with `rawHeaders` and `body` to the IdP; resolves to {status, rawHeaders, body}. */
  function upstream(method, url, rawHeaders, body) {
    const headers = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i].toLowerCase();
      if (HOP_BY_HOP.has(name) || name === 'content-length') continue;
      headers.push(rawHeaders[i], rawHeaders[i + 1]);
    }
    if (body.length || !['GET', 'HEAD'].includes(method)) headers.push('Content-Length', String(body.length));
    return new Promise((resolve, reject) => {
      const req = http.request({ host: HOST, port: upstreamPort, method, path: url, headers, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(30000, () => req.destroy(new Error('upstream timeout')));
      req.end(body);
    });
  }

  const realJwks = async (hostHeader) => {
    const r = await upstream('GET', '/jwks', ['Host', hostHeader || `${HOST}:${upstreamPort}`, 'Accept', 'application/json'], Buffer.alloc(0));
    try { return JSON.parse(r.body.toString('utf8')).keys || []; } catch { return []; }
  };

  function relay(res, up) {
    const headers = [];
    for (let i = 0; i < up.rawHeaders.length; i += 2) {
      const name = up.rawHeaders[i].toLowerCase();
      if (HOP_BY_HOP.has(name) || name === 'content-length') continue;
      headers.push(up.rawHeaders[i], up.rawHeaders[i + 1]);
    }
    headers.push('Content-Length', String(up.body.length));
    res.writeHead(up.status, headers);
    res.end(up.body);
  }

  function reply(res, status, contentType, body, extra = []) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, ['Content-Type', contentType, 'Content-Length', String(buf.length), 'Cache-Control', 'no-store', ...extra]);
    res.end(buf);
  }

  const contentType = (up) => {
    for (let i = 0; i < up.rawHeaders.length; i += 2) if (up.rawHeaders[i].toLowerCase() === 'content-type') return up.rawHeaders[i + 1];
    return 'application/json';
  };

  async function handle(req, res, body) {
    const path = new URL(req.url, 'http://x').pathname;
    const rule = take(path);
    const { mode } = rule;
    record(req.method, path, mode);
    const forward = () => upstream(req.method, req.url, req.rawHeaders, body);
    const json = (v) => reply(res, 200, 'application/json; charset=utf-8', JSON.stringify(v));
    const status = /^status(\d{3})$/.exec(mode);
    if (status) {
      const code = Number(status[1]);
      return reply(res, code, 'application/json; charset=utf-8', JSON.stringify({ error: 'fault_injected', error_description: `injected HTTP ${code}` }));
    }
    switch (mode) {
      case 'pass': return relay(res, await forward());
      case 'refuse': req.socket.destroy(); return undefined;
      case 'hang': await sleep(120000); req.socket.destroy(); return undefined;
      case 'slow': {
        const started = Date.now();
        const up = await forward();
        await sleep(Math.max(0, rule.delay_ms - (Date.now() - started)));
        if (res.destroyed || req.socket.destroyed) return undefined;
        return relay(res, up);
      }
      case 'html': return reply(res, 200, 'text/html; charset=utf-8', '<!doctype html><html><head><title>Sign in</title></head><body><h1>Maintenance</h1><p>Back soon.</p></body></html>');
      case 'truncated': {
        const up = await forward();
        return reply(res, 200, contentType(up), up.body.subarray(0, Math.floor(up.body.length / 2)));
      }
      case 'reset_mid_body': {
        const up = await forward();
        res.writeHead(200, ['Content-Type', contentType(up), 'Content-Length', String(up.body.length)]);
        res.write(up.body.subarray(0, Math.floor(up.body.length / 2)));
        setTimeout(() => req.socket.destroy(), 50);
        return undefined;
      }
      case 'wrong_shape': return json({ foo: 1 });
      case 'wrong_shape_array': return json([]);
      case 'wrong_types': return json({ access_token: [], token_type: 'Bearer', id_token: 42, expires_in: 'soon', keys: 'none' });
      case 'huge': return reply(res, 200, 'application/json', huge());
      case 'jwks_10000': return reply(res, 200, 'application/json', jwks10000());
      case 'jwks_10000_full': return reply(res, 200, 'application/json', jwks10000Full());
      case 'jwks_unknown_types': return reply(res, 200, 'application/json', unknownTypes((await realJwks(req.headers.host)).map((k) => k.kid)));
      case 'jwks_duplicate_kids': return reply(res, 200, 'application/json', duplicateKids(await realJwks(req.headers.host), rule.repeat));
      case 'jwks_stale': return json({ keys: [staleKey()] });
      default: throw new Error(`unhandled mode ${mode}`);
    }
  }

  // (Idle keep-alive kept longer than any test idles: see tests/idp/server.mjs.)
  const data = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((e) => {
        // The IdP itself is down or failed: look like it (a reset), and say why on stderr.
        console.error(`fault proxy: ${req.method} ${req.url}: ${e.message}`);
        req.socket.destroy();
      });
    });
  });
  // Envoy pools upstream connections: never close an idle one under it (Node's default is 5 s).
  data.keepAliveTimeout = 300000;
  data.headersTimeout = 310000;
  data.requestTimeout = 0;

  const control = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url, 'http://x');
      const send = (code, v) => reply(res, code, 'application/json', JSON.stringify(v));
      const faultList = () => [...rules].map(([path, r]) => ({ path, ...r }));
      try {
        if (u.pathname === '/__faults' && req.method === 'POST') {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
          for (const f of Array.isArray(body) ? body : [body]) setFault(f);
          return send(200, faultList());
        }
        if (u.pathname === '/__faults' && req.method === 'GET') return send(200, faultList());
        if (u.pathname === '/__faults' && req.method === 'DELETE') {
          if (u.searchParams.has('path')) rules.delete(u.searchParams.get('path')); else rules.clear();
          return send(200, faultList());
        }
        if (u.pathname === '/__stats' && req.method === 'GET') return send(200, { counts, served, log });
        if (u.pathname === '/__stats' && req.method === 'DELETE') { counts = {}; served = {}; log = []; return send(200, {}); }
        return send(404, { error: 'not found' });
      } catch (e) {
        return send(400, { error: e.message });
      }
    });
  });

  const listen = (server, p) => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, HOST, () => resolve(server.address().port));
  });
  return Promise.all([listen(data, port), listen(control, controlPort)]).then(([dataPort, ctlPort]) => ({
    port: dataPort,
    controlPort: ctlPort,
    setFault,
    clearFaults: () => rules.clear(),
    stats: () => ({ counts, served, log }),
    close: () => { data.closeAllConnections?.(); control.closeAllConnections?.(); data.close(); control.close(); },
  }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const proxy = await startFaultProxy({
    port: Number(env.FAULT_PORT || 0),
    controlPort: Number(env.FAULT_CONTROL_PORT || 0),
    upstreamPort: Number(env.FAULT_UPSTREAM_PORT || 9000),
    faults: env.FAULTS ? JSON.parse(env.FAULTS) : [],
  });
  console.log(`fault proxy on http://${HOST}:${proxy.port} -> http://${HOST}:${env.FAULT_UPSTREAM_PORT || 9000}, control on http://${HOST}:${proxy.controlPort}`);
}
