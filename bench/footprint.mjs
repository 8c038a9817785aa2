// The filter's footprint, from the performance issue: the release .wasm size before and after wasm-opt,
// Envoy's start-to-ready time with the filter (target <= 0.4 s), and resident memory per worker with
// 10,000 cached sessions and 10,000 cached bearer tokens.
//
//   import { collectFootprint } from './footprint.mjs'; const r = await collectFootprint({ quick });
//   node bench/footprint.mjs [--quick]     prints the same object as JSON (progress goes to stderr)
//
// Needs `just wasm` (both filters built, target/portcullis.wasm from wasm-opt) and the Envoy of
// `just setup envoy`; builds bench/micro's `mint` (cargo, release) for the sessions. Throws on failure.
//
// 1. Sizes of target/wasm32-wasip1/release/portcullis_filter.wasm (before wasm-opt),
//    target/portcullis.wasm (after) and the empty filter, in bytes (and gzipped, as an OCI layer ships).
// 2. Start-to-ready: Envoy (--concurrency 1, direct-response route) spawned as the real binary, timed
//    from spawn() to (a) the admin /ready answering 200, (b) the first 200 through the filter chain on a
//    public path (`/public/x`: the VM is up, its configuration parsed), (c) the filter serving logins
//    (`/oauth2/start` answers 302 instead of 503: discovery and JWKS loaded from the IdP; one worker, so
//    one 302 says what tests/lib/stack.mjs's waitFilterReady's twelve in a row say for two). Every
//    probe polls every 5 ms on fresh connections, all three at once. Cases interleaved round by round
//    (Envoy without filter, the empty wasm filter, Portcullis; 5 rounds, quick: 1): medians and min–max.
//    The IdP is bench/fast-idp.mjs in this process (discovery and JWKS answered from prebuilt strings,
//    so (c) measures Envoy and the filter, not oidc-provider's bookkeeping).
// 3. Resident memory: one Envoy with Portcullis (--concurrency 1: one worker, one VM of the filter
//    besides the main thread's) configured with session_cache_size and bearer.token_cache_size 10,000,
//    a bearer route (/api/) for the fast IdP's tokens (static jwks_uri), and the same traffic sent to an
//    Envoy with the empty wasm filter as the control. VmRSS (and RssAnon) of /proc/<pid>/status after
//    warm-up, after 10,000 distinct valid session cookies each sent once, and after 10,000 distinct
//    valid RS256 bearer tokens each sent once; every request must be a 200 (else nothing was cached).
//    The token cache is then proven full: a second pass over the same tokens must be all cache hits
//    (the filter's token_cache_{hits,misses} counters). Quick: 200 of each.
//
// Sessions are minted, not logged in: bench/micro/src/bin/mint.rs builds the core's engine from the
// very plugin configuration Envoy gets, runs one real login natively against the testkit IdP, and seals
// variants of that session (per user: sub, name, email, groups, IdP sid) with the configuration's own
// key ring (DEMO_KEY), cookie name and binding; each minted cookie is checked through the engine before
// it is printed. A session cache entry is built from the opened cookie alone (`open_session` ->
// `cache_entry`; the callback caches nothing), so it is the entry a login's cookie makes. 10,000 logins
// through Envoy (the fast IdP supports the code flow) would cost three requests, a token callout and an
// RS256 signature each, and would also fill the per-VM login state, blurring what the cache holds. One
// real login through Envoy against the fast IdP is done anyway, to report its cookie's size beside the
// minted ones'.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';

import { startFastIdp, userClaims } from './fast-idp.mjs';
import { bootstrapYaml, envoyConfig, noopFilter, pluginConfig, portcullisFilter } from '../tests/lib/envoy-config.mjs';
import { get, Jar } from '../tests/lib/http.mjs';
import { ENVOY_BINARY, freePort, ROOT, sleep, WASM } from '../tests/lib/stack.mjs';

const RAW_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_filter.wasm');
const NOOP_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_noop_filter.wasm');
const OUT = path.join(ROOT, 'target/bench/footprint');
const POLL_MS = 5;
const CONNECTIONS = 8;
const CACHE = 10000;
const AUDIENCE = 'api://footprint';


const T0 = Date.now();
const log = (...a) => console.error(`footprint ${((Date.now() - T0) / 1000).toFixed(1)} s:`, ...a);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });
const ms = (ns) => Number(ns) / 1e6;

const mine = new Set();
process.on('exit', () => { for (const c of mine) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

// ---------------------------------------------------------------------------------------------------
// 1. Sizes

function sizes() {
  const one = (file) => {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`just wasm\``);
    const bytes = fs.readFileSync(file);
    return { file: path.relative(ROOT, file), bytes: bytes.length, gzip_bytes: zlib.gzipSync(bytes, { level: 9 }).length, mtime: fs.statSync(file).mtime.toISOString() };
  };
  const before = one(RAW_WASM);
  const after = one(WASM);
  const noop = one(NOOP_WASM);
  return {
    before_wasm_opt: before,
    after_wasm_opt: after,
    wasm_opt_saving: 1 - after.bytes / before.bytes,
    empty_filter: noop,
    // wasm-opt's output older than its input: `just wasm` was interrupted, or someone rebuilt since.
    after_is_older_than_before: fs.statSync(WASM).mtimeMs < fs.statSync(RAW_WASM).mtimeMs,
  };
}

// ---------------------------------------------------------------------------------------------------
// Envoy, spawned as the real binary so that the time from spawn() is Envoy's and the pid is Envoy's.

function spawnEnvoy(name, cfg, concurrency = 1) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.yaml`);
  fs.writeFileSync(file, bootstrapYaml(cfg));
  const out = fs.openSync(path.join(OUT, `${name}.log`), 'w');
  const t0 = process.hrtime.bigint();
  const child = spawn(ENVOY_BINARY, ['-c', file, '--concurrency', String(concurrency), '--use-dynamic-base-id', '--log-level', 'warn'], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  mine.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { mine.delete(child); resolve({ code, signal }); }));
  return {
    child, t0, exited,
    admin: cfg.admin.address.socket_address.port_value,
    listen: cfg.static_resources.listeners[0].address.socket_address.port_value,
    logTail: () => fs.readFileSync(path.join(OUT, `${name}.log`), 'utf8').slice(-2000),
    async stop() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited; },
  };
}

/** Polls `ok` every POLL_MS until it holds; resolves to the time since Envoy's spawn, in ms. */
async function firstSuccess(envoy, what, ok, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    if (envoy.child.exitCode !== null || envoy.child.signalCode !== null) throw new Error(`Envoy exited while waiting for ${what}: ${envoy.logTail()}`);
    try {
      if (await ok()) return ms(process.hrtime.bigint() - envoy.t0);
    } catch (e) { last = e.message; }
    await sleep(POLL_MS);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${last}: ${envoy.logTail()}`);
}

async function status(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`timeout: ${url}`)));
  });
}

// ---------------------------------------------------------------------------------------------------
// 2. Start-to-ready

async function startup({ rounds, idp }) {
  const plugin = pluginConfig({ idpPort: idp.port });
  const cases = [
    { name: 'envoy', label: 'Envoy, no filter', filters: [] },
    { name: 'wasm-noop', label: 'Empty wasm filter', filters: [noopFilter(NOOP_WASM)] },
    { name: 'portcullis', label: 'Portcullis', filters: [portcullisFilter(WASM, plugin)], logins: true },
  ];
  const samples = Object.fromEntries(cases.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const c of cases) {
      const [listen, admin] = await Promise.all([freePort(), freePort()]);
      const envoy = spawnEnvoy(`startup-${c.name}`, envoyConfig({ listen, admin, idp: idp.port, filters: c.filters, direct: true }));
      try {
        const app = `http://127.0.0.1:${listen}`;
        const [ready, publicOk, logins] = await Promise.all([
          firstSuccess(envoy, 'admin /ready', async () => (await status(`http://127.0.0.1:${admin}/ready`)) === 200),
          firstSuccess(envoy, 'a 200 on /public/x', async () => (await status(`${app}/public/x`)) === 200),
          c.logins ? firstSuccess(envoy, 'the filter serving logins', async () => (await status(`${app}/oauth2/start`)) === 302) : null,
        ]);
        samples[c.name].push({ admin_ready_ms: ready, first_200_ms: publicOk, ...(c.logins ? { logins_ms: logins } : {}) });
      } finally {
        await envoy.stop();
      }
    }
    log(`start-up round ${round + 1}/${rounds}: ${cases.map((c) => `${c.name} ${JSON.stringify(samples[c.name].at(-1))}`).join(', ')}`);
  }
  const results = cases.map((c) => {
    const s = samples[c.name];
    const stat = (k) => spread(s.map((x) => x[k]));
    return {
      case: c.name, label: c.label,
      admin_ready_ms: stat('admin_ready_ms'),
      first_200_ms: stat('first_200_ms'),
      ...(c.logins ? { logins_ms: stat('logins_ms') } : {}),
      samples: s,
    };
  });
  return {
    method: `spawn() of the Envoy binary to the first success of each probe; probes every ${POLL_MS} ms on fresh connections, concurrently; --concurrency 1, direct_response route, log level warn; cases interleaved, ${rounds} round(s); IdP: bench/fast-idp.mjs on loopback`,
    results,
  };
}

// ---------------------------------------------------------------------------------------------------
// 3. Resident memory

function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((text.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1]) * 1024;
  return { name: (text.match(/^Name:\s+(\S+)/m) || [])[1], vm_rss: kb('VmRSS'), rss_anon: kb('RssAnon'), rss_file: kb('RssFile'), vm_hwm: kb('VmHWM') };
}

/**
 * The wasm linear memories, from /proc/<pid>/smaps: V8 maps each one read-write for its current size
 * directly below a PROT_NONE reservation of several GiB (room to grow, and guard pages), so a memory is
 * an anonymous rw-p mapping ending where a ---p mapping of at least 4 GiB begins. One per VM: with
 * --concurrency 1 there are three (the main thread's VMs and the worker's). `size` is the memory's
 * current size, `rss` how much of it is resident.
 */
function wasmMemories(pid) {
  let text;
  try { text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8'); } catch { return null; }
  const maps = [];
  for (const line of text.split('\n')) {
    const h = line.match(/^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/);
    if (h) { maps.push({ start: BigInt(`0x${h[1]}`), end: BigInt(`0x${h[2]}`), perms: h[3], inode: h[4], name: h[5], rss: 0 }); continue; }
    const r = line.match(/^Rss:\s+(\d+) kB/);
    if (r && maps.length) maps.at(-1).rss = Number(r[1]) * 1024;
  }
  const memories = [];
  for (let i = 1; i < maps.length; i += 1) {
    const [prev, cur] = [maps[i - 1], maps[i]];
    if (cur.perms === '---p' && cur.end - cur.start >= 4n << 30n && prev.end === cur.start && prev.perms === 'rw-p' && prev.inode === '0' && !prev.name) {
      memories.push({ size: Number(prev.end - prev.start), rss: prev.rss });
    }
  }
  return { count: memories.length, size: memories.reduce((a, m) => a + m.size, 0), rss: memories.reduce((a, m) => a + m.rss, 0), memories };
}

async function adminJson(envoy, p) {
  const r = await get(`http://127.0.0.1:${envoy.admin}${p}`);
  if (r.status !== 200) throw new Error(`admin ${p}: ${r.status}`);
  return r.json();
}

async function snapshot(envoy) {
  await sleep(1000); // let the last responses' buffers go and a tick pass
  // Envoy's C++ heap (tcmalloc): `allocated` is live, `heap_size` what tcmalloc holds, free pages included.
  const mem = Object.fromEntries(Object.entries(await adminJson(envoy, '/memory')).map(([k, v]) => [k, Number(v)]));
  return { ...procStatus(envoy.child.pid), wasm_memories: wasmMemories(envoy.child.pid), envoy_heap: mem };
}

async function counters(envoy, filter) {
  const j = await adminJson(envoy, `/stats?format=json&filter=${encodeURIComponent(filter)}`);
  return Object.fromEntries((j.stats || []).filter((s) => 'value' in s).map((s) => [s.name, Number(s.value)]));
}

/** Sends one GET per item over CONNECTIONS keep-alive connections; every answer must be a 200. */
async function sendAll(envoy, items) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  let next = 0;
  const one = ({ path: p, headers }) => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: envoy.listen, path: p, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${p} answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)} (${JSON.stringify(headers).slice(0, 120)}…)`))));
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`timeout: ${p}`)));
    req.end();
  });
  const t = process.hrtime.bigint();
  try {
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (next < items.length) { const i = next; next += 1; await one(items[i]); }
    }));
  } finally {
    agent.destroy();
  }
  return ms(process.hrtime.bigint() - t) / 1000;
}

function buildMint() {
  const r = spawnSync('cargo', ['build', '--release', '-q', '-p', 'portcullis-micro-bench', '--bin', 'mint'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cargo build --bin mint: ${r.stderr.slice(-2000)}`);
  return path.join(ROOT, 'target/release/mint');
}

function mintSessions(mint, plugin, n) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, 'mint-config.json');
  fs.writeFileSync(file, JSON.stringify(plugin));
  const r = spawnSync(mint, [file, String(n)], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`mint: ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.split('\n').filter(Boolean);
  if (lines.length !== n || new Set(lines).size !== n) throw new Error(`mint printed ${lines.length} cookies (${new Set(lines).size} distinct), wanted ${n}`);
  return lines;
}

/** One real login through Envoy against the fast IdP: its session cookie (for the size comparison). */
async function loginThroughEnvoy(envoy, idp) {
  const app = `http://localhost:${envoy.listen}`;
  const jar = new Jar();
  const start = await get(`${app}/`, { headers: { accept: 'text/html' }, jar });
  if (start.status !== 302) throw new Error(`login start: ${start.status}`);
  const q = new URL(start.headers.location).searchParams;
  const back = new URL(q.get('redirect_uri'));
  back.searchParams.set('code', idp.codeFor(start.headers.location, 'user00000'));
  back.searchParams.set('state', q.get('state'));
  back.searchParams.set('iss', idp.issuer);
  const done = await get(back.toString().replace(/^http:\/\/[^/]+/, app), { jar });
  const cookie = jar.get('_portcullis');
  if (done.status !== 302 || !cookie) throw new Error(`login callback: ${done.status} ${done.body.slice(0, 200)}`);
  return `_portcullis=${cookie}`;
}

async function memory({ n, idp }) {
  const plugin = pluginConfig({
    idpPort: idp.port,
    overrides: {
      session_cache_size: CACHE,
      bearer: { issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], jwks_uri: `${idp.issuer}/jwks` }], token_cache_size: CACHE },
      routes: { rules: [{ name: 'api', prefix: '/api/', action: 'authenticate', accept: 'bearer', api: true }] },
    },
  });
  log('building and running mint');
  const cookies = mintSessions(buildMint(), plugin, n + 1);
  const warmCookie = cookies.pop();
  // Access tokens as an IdP with user claims in them issues them (RFC 9068 fields plus the user's
  // claims, as Keycloak does): each a different user, jti and signature.
  const now = Math.floor(Date.now() / 1000);
  const token = (i) => idp.signToken({
    iss: idp.issuer, aud: AUDIENCE, client_id: 'footprint', scope: 'openid email profile', jti: `jti-${i}-${now}`,
    ...userClaims(`user${String(i).padStart(5, '0')}`), iat: now, exp: now + 3600,
  });
  log(`signing ${n + 1} tokens`);
  const tokens = Array.from({ length: n + 1 }, (_, i) => token(i));
  const warmToken = tokens.pop();
  const sessionReqs = cookies.map((c) => ({ path: '/', headers: { cookie: c } }));
  const tokenReqs = tokens.map((t) => ({ path: '/api/x', headers: { authorization: `Bearer ${t}` } }));
  const warm = Array.from({ length: Math.min(2000, 10 * n) }, (_, i) => [
    { path: '/public/x', headers: {} },
    { path: '/', headers: { cookie: warmCookie } },
    { path: '/api/x', headers: { authorization: `Bearer ${warmToken}` } },
  ][i % 3]);

  const envoys = {};
  const start = async (name, filters, concurrency = 1) => {
    const [listen, admin] = await Promise.all([freePort(), freePort()]);
    const e = spawnEnvoy(`memory-${name}`, envoyConfig({ listen, admin, idp: idp.port, filters, direct: true }), concurrency);
    envoys[name] = e;
    await firstSuccess(e, 'admin /ready', async () => (await status(`http://127.0.0.1:${admin}/ready`)) === 200);
    const exe = fs.readlinkSync(`/proc/${e.child.pid}/exe`);
    if (path.basename(exe) !== 'envoy') throw new Error(`pid ${e.child.pid} is ${exe}, not Envoy`);
    return e;
  };
  try {
    log('starting the Envoys');
    const A = await start('portcullis', [portcullisFilter(WASM, plugin)]);
    await firstSuccess(A, 'the filter serving logins', async () => (await status(`http://127.0.0.1:${A.listen}/oauth2/start`)) === 302);
    const B = await start('wasm-noop', [noopFilter(NOOP_WASM)]);
    const C = await start('envoy', []);
    const loginCookie = await loginThroughEnvoy(A, idp);
    const phases = { portcullis: {}, 'wasm-noop': {}, envoy: {} };
    for (const [name, e] of Object.entries(envoys)) {
      await sendAll(e, warm);
      phases[name].baseline = await snapshot(e);
    }
    log('baseline', JSON.stringify(Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, v.baseline.vm_rss]))));
    log('sessions');
    const seconds = {};
    for (const name of ['portcullis', 'wasm-noop']) {
      seconds[`${name}_sessions`] = await sendAll(envoys[name], sessionReqs);
      phases[name].after_sessions = await snapshot(envoys[name]);
    }
    log('tokens');
    const before = await counters(A, 'token_cache');
    for (const name of ['portcullis', 'wasm-noop']) {
      seconds[`${name}_tokens`] = await sendAll(envoys[name], tokenReqs);
      phases[name].after_tokens = await snapshot(envoys[name]);
    }
    // Counters reach Envoy on the filter's next tick (1 s once ready).
    await sleep(1500);
    const afterFirst = await counters(A, 'token_cache');
    seconds.portcullis_tokens_again = await sendAll(A, tokenReqs);
    phases.portcullis.after_tokens_again = await snapshot(A);
    await sleep(1500);
    const afterSecond = await counters(A, 'token_cache');
    const key = (o, part) => Object.keys(o).find((k) => k.includes(part));
    const d = (a, b, part) => (b[key(b, part)] || 0) - (a[key(a, part)] || 0);
    const check = {
      first_pass: { misses: d(before, afterFirst, 'misses'), hits: d(before, afterFirst, 'hits') },
      second_pass: { misses: d(afterFirst, afterSecond, 'misses'), hits: d(afterFirst, afterSecond, 'hits') },
    };
    if (check.first_pass.misses !== n || check.second_pass.hits !== n || check.second_pass.misses !== 0) {
      throw new Error(`the token cache did not keep all ${n} tokens: ${JSON.stringify(check)} (${JSON.stringify(afterSecond)})`);
    }
    // What one more worker costs (its own VM of the filter, its own caches): the same two Envoys with
    // --concurrency 2 after the same warm-up, both workers' VMs serving (twelve fresh connections in a
    // row served by the filter, as tests/lib/stack.mjs's waitFilterReady).
    log('two workers');
    for (const e of Object.values(envoys)) await e.stop();
    const A2 = await start('portcullis-2-workers', [portcullisFilter(WASM, plugin)], 2);
    let streak = 0;
    await firstSuccess(A2, 'both workers serving logins', async () => {
      streak = (await status(`http://127.0.0.1:${A2.listen}/oauth2/start`)) === 302 ? streak + 1 : 0;
      return streak >= 12;
    });
    const B2 = await start('wasm-noop-2-workers', [noopFilter(NOOP_WASM)], 2);
    for (const [name, e] of [['portcullis', A2], ['wasm-noop', B2]]) {
      await sendAll(e, warm);
      phases[name].baseline_2_workers = await snapshot(e);
    }
    const P = phases.portcullis;
    const Q = phases['wasm-noop'];
    const per = (x, y, k = 'vm_rss') => (x[k] - y[k]) / n;
    return {
      method: `Envoy --concurrency 1 (one worker VM); VmRSS/RssAnon of /proc/<envoy pid>/status 1 s after each phase; ${CONNECTIONS} keep-alive connections; every request a 200; warm-up ${warm.length} requests (public path, one session, one token)`,
      entries: n,
      cache_sizes: { session_cache_size: CACHE, token_cache_size: CACHE },
      cookie_bytes: { minted_median: median(cookies.map((c) => c.length)), real_login: loginCookie.length },
      token_bytes_median: median(tokens.map((t) => t.length)),
      token_cache_check: check,
      seconds,
      rss: {
        portcullis: P,
        'wasm-noop': Q,
        envoy: phases.envoy,
      },
      per_entry_bytes: {
        session: per(P.after_sessions, P.baseline),
        token: per(P.after_tokens, P.after_sessions),
        // The same requests through the empty filter: what they cost Envoy without any cache.
        session_control: per(Q.after_sessions, Q.baseline),
        token_control: per(Q.after_tokens, Q.after_sessions),
        session_net: per(P.after_sessions, P.baseline) - per(Q.after_sessions, Q.baseline),
        token_net: per(P.after_tokens, P.after_sessions) - per(Q.after_tokens, Q.after_sessions),
        session_rss_anon: per(P.after_sessions, P.baseline, 'rss_anon'),
        token_rss_anon: per(P.after_tokens, P.after_sessions, 'rss_anon'),
        ...(P.baseline.wasm_memories ? {
          // Growth of the worker VM's linear memory (the only one that serves requests).
          session_wasm_memory: (P.after_sessions.wasm_memories.rss - P.baseline.wasm_memories.rss) / n,
          token_wasm_memory: (P.after_tokens.wasm_memories.rss - P.after_sessions.wasm_memories.rss) / n,
        } : {}),
        session_envoy_heap: (P.after_sessions.envoy_heap.allocated - P.baseline.envoy_heap.allocated) / n,
        token_envoy_heap: (P.after_tokens.envoy_heap.allocated - P.after_sessions.envoy_heap.allocated) / n,
      },
      baseline_vs_wasm_noop_bytes: P.baseline.vm_rss - Q.baseline.vm_rss,
      // --concurrency 2 minus --concurrency 1, after warm-up, before any cache is filled. VmRSS moves
      // by megabytes either way with what tcmalloc keeps of the main thread's transient allocations
      // (the wasm compile's among them: see envoy_heap.pageheap_free), so the live C++ heap and the
      // wasm memories are given apart.
      second_worker_bytes: Object.fromEntries([['portcullis', P], ['wasm-noop', Q]].map(([k, x]) => [k, {
        vm_rss: x.baseline_2_workers.vm_rss - x.baseline.vm_rss,
        envoy_heap_allocated: x.baseline_2_workers.envoy_heap.allocated - x.baseline.envoy_heap.allocated,
        wasm_memories_rss: x.baseline_2_workers.wasm_memories && x.baseline.wasm_memories ? x.baseline_2_workers.wasm_memories.rss - x.baseline.wasm_memories.rss : null,
      }])),
      full_vs_wasm_noop_bytes: P.after_tokens.vm_rss - Q.after_tokens.vm_rss,
    };
  } finally {
    for (const e of Object.values(envoys)) await e.stop();
  }
}

// ---------------------------------------------------------------------------------------------------

export async function collectFootprint({ quick = false } = {}) {
  const size = sizes();
  const version = spawnSync(ENVOY_BINARY, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) throw new Error(`${ENVOY_BINARY} --version: ${version.stderr}`);
  const idp = await startFastIdp({ port: 0 });
  const load = [os.loadavg()[0]];
  try {
    const startupResults = await startup({ rounds: quick ? 1 : 5, idp });
    const memoryResults = await memory({ n: quick ? 200 : CACHE, idp });
    load.push(os.loadavg()[0]);
    const byCase = Object.fromEntries(startupResults.results.map((r) => [r.case, r]));
    const portcullis = byCase.portcullis;
    const m = memoryResults;
    const P = m.rss.portcullis;
    return {
      when: new Date().toISOString(),
      quick,
      // Start-up times are wall-clock: on a shared machine they move with the neighbours' load.
      machine: { cpus: os.cpus().length, loadavg_1m_at_start_and_end: load },
      headline: {
        wasm_bytes: { before_wasm_opt: size.before_wasm_opt.bytes, after_wasm_opt: size.after_wasm_opt.bytes, empty_filter: size.empty_filter.bytes },
        start_to_ready_ms_median: {
          envoy: byCase.envoy.first_200_ms.median,
          wasm_noop: byCase['wasm-noop'].first_200_ms.median,
          portcullis_first_200: portcullis.first_200_ms.median,
          portcullis_logins: portcullis.logins_ms.median,
        },
        rss_bytes: {
          envoy: m.rss.envoy.baseline.vm_rss,
          wasm_noop: m.rss['wasm-noop'].baseline.vm_rss,
          portcullis_baseline: P.baseline.vm_rss,
          portcullis_after_sessions: P.after_sessions.vm_rss,
          portcullis_after_tokens: P.after_tokens.vm_rss,
        },
        entries: m.entries,
        per_entry_bytes: { session: m.per_entry_bytes.session, token: m.per_entry_bytes.token },
      },
      envoy: { binary: path.relative(ROOT, ENVOY_BINARY), version: (version.stdout.match(/version: (\S+)/) || [])[1] || version.stdout.trim() },
      targets: {
        start_to_ready_s: { want: '<= 0.4', got: portcullis.logins_ms.median / 1000, what: 'spawn to the filter serving logins (discovery and JWKS loaded), median' },
      },
      sizes: size,
      startup: startupResults,
      memory: memoryResults,
    };
  } finally {
    await idp.stop();
  }
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const r = await collectFootprint({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(r, null, 2));
  process.exit(0);
}
