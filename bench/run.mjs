// `just bench [--quick]`: requests/s and p50/p99 through real Envoy (--concurrency 1, pinned to core 0)
// with wrk pinned to core 1, direct-response route, for the cases of bench/cases.mjs:
//   passthrough (no auth filter) | wasm-noop (empty wasm filter) | native-oauth2 (Envoy's oauth2
//   filter, valid session) | wasm-session (valid session cookie) | wasm-session-nocache | wasm-public
//   (public path) | native-jwt (Envoy's jwt_authn, RS256 bearer, no JWT cache) | wasm-bearer (the same
//   token, Portcullis's token cache off) | wasm-bearer-cached | wasm-session-browser and
//   wasm-noop-browser (a browser's ~15 headers and ~2 KB of cookies) | login-portcullis and
//   login-native (complete logins per second through the callback, see below)
// Paired: every case runs in its own Envoy, all started up front; each comparison (A vs B) alternates
// short runs A B B A A B … (BENCH_SLICE seconds each, BENCH_PAIRS pairs), so both sides see the same
// machine, and reports the median and spread of the per-pair ratio. Neighbours on these shared machines
// move throughput 2-3x within seconds; cases measured a minute apart are not comparable.
// The IdP is bench/fast-idp.mjs, in this process (pinned to core 1 with the load): one RSA signature
// per token request, so a login measures the filters, not oidc-provider's bookkeeping.
// Logins: wrk cannot follow a login, so a node loop here (BENCH_LOGIN_USERS virtual users, keep-alive
// connections) runs fresh-browser logins back to back: GET / → 302 to the IdP with the login cookies →
// the callback with a code built from the authorize URL → 302 with the session cookies, each step
// checked. A slice counts completed logins; the loop shares core 1 with the IdP (its busy share of
// that core is in the JSON: near 1.0 the driver, not Envoy, was the limit).
// --quick: 2 pairs of 1-s runs, no warm-up (CI smoke test: every case is probed for a 200, the harness
// and the JSON are checked, never a timing). Any failure exits non-zero.
// Before the Envoy cases: bench/micro (bench/micro/collect.mjs: the core's operations, token
// verification per algorithm among them, in wasm32-wasip1 under node's V8 with Envoy's settings,
// natively, and natively under criterion).
// Writes target/bench/summary.json and prints Markdown tables for the README.
// Knobs for investigation: BENCH_ONLY=case,case (subset; a comparison runs when both sides are in it;
// `micro` selects the micro benchmarks), BENCH_SLICE=s, BENCH_PAIRS=n, BENCH_LOGIN_USERS=n.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { envoyConfig } from '../tests/lib/envoy-config.mjs';
import { get } from '../tests/lib/http.mjs';
import { freePort, ROOT, startEnvoy, waitFilterReady } from '../tests/lib/stack.mjs';
import { benchCases, COMPARISONS, loginOnce, probe } from './cases.mjs';
import { startFastIdp } from './fast-idp.mjs';
import { collectFootprint } from './footprint.mjs';
import { collectMicro } from './micro/collect.mjs';

const quick = process.argv.includes('--quick');
const SLICE = Number(process.env.BENCH_SLICE) || 1;
const PAIRS = Number(process.env.BENCH_PAIRS) || (quick ? 2 : 15);
const WARMUP = quick ? 0 : 2;
const CONNECTIONS = 16;
const LOGIN_USERS = Number(process.env.BENCH_LOGIN_USERS) || 16;
const cores = os.cpus().length;
const pin = (core, cmd) => (cores >= 2 ? ['taskset', '-c', String(core), ...cmd] : cmd);
const only = (process.env.BENCH_ONLY || '').split(',').filter(Boolean);

function parseWrk(out) {
  const rps = Number((out.match(/Requests\/sec:\s+([\d.]+)/) || [])[1]);
  const lat = (p) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
    if (!m) return NaN;
    return Number(m[1]) * { us: 1, ms: 1000, s: 1e6 }[m[2]];
  };
  const non2xx = Number((out.match(/Non-2xx or 3xx responses:\s+(\d+)/) || [0, 0])[1]);
  const requests = Number((out.match(/(\d+) requests in/) || [0, 0])[1]);
  const errors = (out.match(/Socket errors:.*/) || [''])[0];
  return { rps, p50_us: lat(50), p99_us: lat(99), non2xx, requests, ...(errors ? { socket_errors: errors } : {}) };
}

/** wrk, asynchronously: the IdP lives in this process and must keep answering (JWKS refreshes). */
function wrk(url, headers, seconds) {
  const args = pin(1, ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url]);
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk failed (${code}): ${err}`))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => { const s2 = [...xs].sort((a, b) => a - b); return s2[Math.min(s2.length - 1, Math.floor(q * s2.length))]; };

/**
 * Logins back to back for `seconds` by LOGIN_USERS virtual users on the case's keep-alive agent.
 * Rate = completed logins / wall time until the last one in flight finished. Any failed step throws.
 */
async function loginLoad(c, seconds) {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const lat = [];
  const user = async () => {
    while (performance.now() < deadline) {
      const s = performance.now();
      await loginOnce({ kind: c.login, idp, port: c.port, host: c.host, agent: c.agent });
      lat.push((performance.now() - s) * 1000);
    }
  };
  await Promise.all(Array.from({ length: LOGIN_USERS }, user));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rps: lat.length / wall, p50_us: quantile(lat, 0.5), p99_us: quantile(lat, 0.99), non2xx: 0, logins: lat.length, driver_busy: (cpu.user + cpu.system) / 1e6 / wall };
}

const idp = await startFastIdp({});
const allCases = benchCases(idp);
const PARTS = ['micro', 'footprint', 'instructions'];
const unknown = only.filter((n) => !PARTS.includes(n) && !allCases.some((c) => c.name === n));
if (unknown.length) throw new Error(`BENCH_ONLY: no such case: ${unknown.join(', ')} (cases: ${allCases.map((c) => c.name).join(', ')}, ${PARTS.join(', ')})`);

// bench/micro (bench/micro/collect.mjs): the core's operations timed in wasm under V8 with Envoy's
// settings, natively, and natively under criterion.
const microResults = only.length && !only.includes('micro') ? null : await collectMicro({ quick });

// From here on this process is load (wrk's parent, the login loop, the IdP): core 1, with wrk.
if (cores >= 2) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)]);
const selected = allCases.filter((c) => !only.length || only.includes(c.name));
const envoys = [];
const live = [];
const shared = {};
try {
  // Every case in its own Envoy, all up before the first measurement (idle ones cost nothing).
  for (const c of selected) {
    const port = await freePort();
    const admin = await freePort();
    // The native filter's HMAC covers the host, so every request sends the Host its login used.
    const host = `localhost:${port}`;
    const origin = `http://${host}`;
    const cfg = envoyConfig({ listen: port, admin, idp: idp.port, filters: c.filters, direct: true, secrets: c.secrets || [] });
    const envoy = await startEnvoy({ name: `bench-${c.name}`, cfg, concurrency: 1, logLevel: 'warn' });
    envoys.push(envoy);
    if (cores >= 2) spawnSync('taskset', ['-a', '-p', '-c', '0', String(envoy.child.pid)]);
    if (c.ready) await waitFilterReady(origin);
    const url = `http://127.0.0.1:${port}${c.path}`;
    if (c.login) {
      // One login checked to the end: its cookies get a 200 (the loop checks each login's callback).
      const cookie = await loginOnce({ kind: c.login, idp, port, host });
      const check = await get(`http://127.0.0.1:${port}/`, { headers: { host, cookie } });
      if (check.status !== 200) throw new Error(`${c.name}: a finished login's cookies got ${check.status}`);
      const agent = new http.Agent({ keepAlive: true, maxSockets: LOGIN_USERS });
      live.push({ ...c, url, port, admin, host, agent, slices: [], retries: 0 });
      continue;
    }
    const h = { host, ...(await c.headers({ idp, port, host, origin, shared })) };
    // Every measured request must be a 200 through the filter, or the numbers mean nothing.
    await probe(c, port, h);
    // Title-Case for wrk: it adds its own `Host` (the URL's, 127.0.0.1) unless one is spelt exactly so,
    // and two Hosts break the native filter's HMAC (every request then a 302).
    const headers = Object.entries(h).map(([k, v]) => `${k.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())}: ${v}`);
    live.push({ ...c, url, port, admin, host, headers, slices: [], retries: 0 });
  }
} catch (e) {
  for (const e2 of envoys) e2.stop();
  console.error(e);
  process.exit(1);
}
const byName = Object.fromEntries(live.map((c) => [c.name, c]));

const ANSWERS = encodeURIComponent('^http\\.ingress\\.downstream_rq_[1-5]xx$');
/** Envoy's own answers by class so far (live counters: `1xx` … `5xx`). */
async function answers(c) {
  const r = await get(`http://127.0.0.1:${c.admin}/stats?format=json&filter=${ANSWERS}`);
  if (r.status !== 200) throw new Error(`${c.name}: admin /stats answered ${r.status}`);
  return Object.fromEntries(JSON.parse(r.body).stats.map((x) => [x.name.slice(-3), x.value]));
}

/**
 * One measurement of `c`. Proof that every request was answered as it must: wrk counts 3xx as success,
 * so Envoy's own counters are read around the slice: nothing but 2xx for wrk's cases (at least as many
 * as wrk counted), nothing but the logins' 3xx for the login loop. A slice that completed nothing at
 * all (seen when neighbours stall the machine for a second) is run again, at most twice.
 */
async function slice(c, seconds = SLICE, record = true) {
  for (let attempt = 0; ; attempt += 1) {
    const before = await answers(c);
    const r = c.login ? await loginLoad(c, seconds) : await wrk(c.url, c.headers, seconds);
    const after = await answers(c);
    const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
    const wrong = c.login ? d['1xx'] + d['2xx'] + d['4xx'] + d['5xx'] : d['1xx'] + d['3xx'] + d['4xx'] + d['5xx'];
    const right = c.login ? d['3xx'] >= 2 * r.logins : d['2xx'] >= r.requests;
    if (r.non2xx > 0 || wrong > 0 || !right) throw new Error(`${c.name}: answers other than expected: Envoy counted ${JSON.stringify(d)}; load: ${JSON.stringify(r)}`);
    if (!(r.rps > 0) && attempt < 2) { console.error(`${c.name}: a slice completed nothing (${r.socket_errors || 'no socket errors'}); again`); c.retries += 1; continue; }
    if (!(r.rps > 0)) throw new Error(`${c.name}: no throughput in three slices in a row: ${JSON.stringify(r)}`);
    if (record) c.slices.push(r);
    return r.rps;
  }
}

const pairs = [];
let failed = null;
try {
  for (const [a, b] of COMPARISONS) {
    const A = byName[a];
    const B = byName[b];
    if (!A || !B) continue;
    if (WARMUP) { await slice(A, WARMUP, false); await slice(B, WARMUP, false); }
    const ratios = [];
    for (let i = 0; i < PAIRS; i += 1) {
      // A B, then B A: drift within a pair cancels over two pairs.
      let ra;
      let rb;
      if (i % 2 === 0) { ra = await slice(A); rb = await slice(B); } else { rb = await slice(B); ra = await slice(A); }
      ratios.push(ra / rb);
    }
    const p = { a, b, pairs: PAIRS, slice_s: SLICE, median: median(ratios), p25: quantile(ratios, 0.25), p75: quantile(ratios, 0.75), min: Math.min(...ratios), max: Math.max(...ratios), ratios };
    pairs.push(p);
    console.error(`${a} / ${b}: ${p.median.toFixed(3)} (p25–p75 ${p.p25.toFixed(3)}–${p.p75.toFixed(3)}, ${PAIRS} pairs)`);
  }
} catch (e) {
  failed = e;
} finally {
  for (const e of envoys) e.stop();
  for (const c of live) c.agent?.destroy();
  await idp.stop();
}
if (failed) { console.error(failed); process.exit(1); }

const results = live.map((c) => {
  const rps = c.slices.map((r) => r.rps);
  return {
    case: c.name, label: c.label, unit: c.login ? 'logins/s' : 'requests/s', slices: c.slices.length, retried_slices: c.retries,
    rps: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps) },
    p50_us: median(c.slices.map((r) => r.p50_us)), p99_us: median(c.slices.map((r) => r.p99_us)),
    ...(c.login ? { logins: c.slices.reduce((s, r) => s + r.logins, 0), driver_busy: median(c.slices.map((r) => r.driver_busy)) } : {}),
  };
});

// Footprint (bench/footprint.mjs: sizes, start-to-ready, memory with 10,000 cached sessions and
// tokens) and instructions per request (bench/instructions.mjs: Envoy under callgrind, a child
// process), after the throughput runs so that neither disturbs them. --quick: a smoke of each.
const part = (name) => !only.length || only.includes(name);
const footprint = part('footprint') ? await collectFootprint({ quick }) : null;
let instructions = null;
if (part('instructions')) {
  const env = { ...process.env, BENCH_ONLY: quick ? 'wasm-noop,wasm-public' : '' };
  if (quick) Object.assign(env, { INSTR_REQUESTS: '50', INSTR_WARMUP: '10' });
  const r = spawnSync('node', [path.join(ROOT, 'bench/instructions.mjs')], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`bench/instructions.mjs failed (${r.status})`);
  instructions = JSON.parse(fs.readFileSync(path.join(ROOT, 'target/bench/instructions.json'), 'utf8'));
}
const paired = (a, b) => pairs.find((p) => p.a === a && p.b === b)?.median;
const atLeast = (want, got) => ({ want: `>= ${want}`, got: got ?? null, met: got == null ? null : got >= want });
const rs256 = microResults?.wasm_v8?.verify_RS256_us;
const firstRs256 = microResults?.wasm_v8?.first_RS256_us;
const atMost = (want, got) => ({ want: `<= ${want}`, got: got ?? null, met: got == null ? null : got <= want });
const instr = (n) => instructions?.results?.find((x) => x.case === n)?.instructions_per_request;
// A --quick callgrind run (50 requests, barely warm) checks the harness; its counts are no figure.
const instrRatio = (a, b) => (!quick && instr(a) && instr(b) ? instr(a) / instr(b) : null);
const ready = footprint?.headline?.start_to_ready_ms_median?.portcullis_logins;
const summary = {
  when: new Date().toISOString(),
  quick,
  setup: {
    envoy: '1.40.0 --concurrency 1 (core 0), one Envoy per case',
    load: `wrk -t1 -c${CONNECTIONS} (core 1)`,
    login: `node loop, ${LOGIN_USERS} virtual users on keep-alive connections (core 1, with the IdP)`,
    idp: 'bench/fast-idp.mjs (RSA-2048, one RS256 signature per token request), in the bench process',
    slice_s: SLICE, pairs: PAIRS, warmup_s: WARMUP, route: 'direct_response 200', design: 'per comparison: alternating A/B slices, ratio per pair',
  },
  targets: {
    session_vs_wasm_noop: atLeast(0.8, paired('wasm-session', 'wasm-noop')),
    session_vs_native_oauth2: atLeast(1.3, paired('wasm-session', 'native-oauth2')),
    bearer_cached_vs_native_jwt: atLeast(1.5, paired('wasm-bearer-cached', 'native-jwt')),
    rs256_verify_in_wasm_us: atMost(150, rs256),
    first_rs256_verify_in_wasm_us: atMost(150, firstRs256),
    instructions_session_vs_wasm_noop: atMost(1.5, instrRatio('wasm-session', 'wasm-noop')),
    instructions_public_vs_wasm_noop: atMost(1.15, instrRatio('wasm-public', 'wasm-noop')),
    start_to_ready_s: atMost(0.4, ready == null ? null : ready / 1000),
  },
  pairs,
  micro: microResults,
  results,
  instructions,
  footprint,
};
fs.mkdirSync(path.join(ROOT, 'target/bench'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'target/bench/summary.json'), `${JSON.stringify(summary, null, 2)}\n`);

const f = (x) => x.toFixed(0);
const us = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(0)} µs`);
console.log('| A / B | median ratio | p25–p75 | min–max | pairs |');
console.log('|---|---|---|---|---|');
const label = (n) => byName[n].label;
for (const p of pairs) {
  console.log(`| ${label(p.a)} / ${label(p.b)} | ${p.median.toFixed(3)} | ${p.p25.toFixed(3)}–${p.p75.toFixed(3)} | ${p.min.toFixed(3)}–${p.max.toFixed(3)} | ${p.pairs} × ${p.slice_s} s |`);
}
console.log('\n| case | rate median (min–max) over its slices | p50 | p99 |');
console.log('|---|---|---|---|');
for (const r of results) {
  if (!r.slices) continue;
  const busy = r.driver_busy == null ? '' : `; driver core ${(r.driver_busy * 100).toFixed(0)} % busy`;
  console.log(`| ${r.label} | ${f(r.rps.median)} (${f(r.rps.min)}–${f(r.rps.max)}) ${r.unit}${busy} | ${us(r.p50_us)} | ${us(r.p99_us)} |`);
}
if (microResults) {
  // Every operation the micro benchmark times, µs per call.
  const w = microResults.wasm_v8;
  const n = microResults.native;
  const crit = microResults.native_criterion || {};
  const g = (v) => (typeof v === 'number' ? (v >= 10 ? v.toFixed(0) : v.toFixed(2)) : '–');
  console.log('\n| operation (µs per call) | wasm under V8 | native | native, criterion median |');
  console.log('|---|---|---|---|');
  for (const k of Object.keys(w).filter((x) => x.endsWith('_us') && !x.startsWith('first_'))) {
    console.log(`| ${k.replace(/_us$/, '')} | ${g(w[k])} | ${g(n?.[k])} | ${g(crit[k]?.median)} |`);
  }
  if (typeof w.first_RS256_us === 'number') console.log(`\nFirst RS256 verification in a fresh wasm instance: ${g(w.first_RS256_us)} µs`);
  console.log(`RS256 verification in wasm: ${g(w.verify_RS256_us)} µs (target <= 150)`);
}

if (instructions) {
  console.log('\n| case | instructions per request | × Envoy alone | × empty wasm |');
  console.log('|---|---|---|---|');
  const x = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(2));
  for (const r of instructions.results) console.log(`| ${r.label} | ${(r.instructions_per_request / 1000).toFixed(1)}k | ${x(r.vs_passthrough)} | ${x(r.vs_wasm_noop)} |`);
}
if (footprint) {
  const h = footprint.headline;
  const mb = (b) => (b / 1048576).toFixed(1);
  console.log(`\nModule: ${h.wasm_bytes.before_wasm_opt} B before wasm-opt, ${h.wasm_bytes.after_wasm_opt} B after (empty filter ${h.wasm_bytes.empty_filter} B)`);
  const st = h.start_to_ready_ms_median;
  console.log(`Start to ready (median ms): Envoy ${f(st.envoy)}, empty wasm ${f(st.wasm_noop)}, Portcullis first 200 ${f(st.portcullis_first_200)}, serving logins ${f(st.portcullis_logins)}`);
  console.log(`Resident memory (one worker): Envoy ${mb(h.rss_bytes.envoy)} MB, empty wasm ${mb(h.rss_bytes.wasm_noop)} MB, Portcullis ${mb(h.rss_bytes.portcullis_baseline)} MB, +${h.entries} sessions ${mb(h.rss_bytes.portcullis_after_sessions)} MB, +${h.entries} tokens ${mb(h.rss_bytes.portcullis_after_tokens)} MB (${f(h.per_entry_bytes.session)} B per session, ${f(h.per_entry_bytes.token)} B per token)`);
}

const t = (v) => (v == null ? '–' : v.toFixed(3));
const tg = summary.targets;
console.log('\n| target | want | got | met |');
console.log('|---|---|---|---|');
for (const [k, v] of Object.entries(tg)) console.log(`| ${k} | ${v.want} | ${v.got == null ? '–' : Number(v.got).toFixed(3)} | ${v.met == null ? '–' : v.met ? 'yes' : 'no'} |`);
console.log(`\nTargets (paired medians): session / empty wasm = ${t(tg.session_vs_wasm_noop.got)} (>= 0.80); session / native oauth2 = ${t(tg.session_vs_native_oauth2.got)} (>= 1.3); cached bearer / native jwt_authn = ${t(tg.bearer_cached_vs_native_jwt.got)} (>= 1.5)`);
process.exit(0);
