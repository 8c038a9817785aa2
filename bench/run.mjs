// `just bench [--quick]`: requests/s and p50/p99 through real Envoy (--concurrency 1, pinned to core 0)
// with wrk pinned to core 1, direct-response route, for:
//   envoy (no auth filter) | wasm-noop (empty wasm filter) | native-oauth2 (Envoy's oauth2 filter, valid
//   session) | portcullis-session (valid session cookie) | portcullis-public (public path)
// Paired: every case runs in its own Envoy, all started up front; each comparison (A vs B) alternates
// short runs A B B A A B … (BENCH_SLICE seconds each, BENCH_PAIRS pairs), so both sides see the same
// machine, and reports the median and spread of the per-pair ratio. Neighbours on these shared machines
// move throughput 2-3x within seconds; cases measured a minute apart are not comparable.
// --quick: 2 pairs of 1-s runs (CI smoke test; it checks the harness and the JSON, never a timing).
// Before the Envoy cases: bench/micro (token verification per algorithm, as the core does it on a cache
// miss) built for wasm32-wasip1 and run under node's V8 with Envoy's settings, and natively.
// Writes target/bench/summary.json and prints a Markdown table for the README.
// Knobs for investigation: BENCH_ONLY=case,case (subset), BENCH_SLICE=s, BENCH_PAIRS=n.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { envoyConfig, nativeOauth2Filter, noopFilter, pluginConfig, portcullisFilter } from '../tests/lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../tests/lib/http.mjs';
import { freePort, ROOT, startEnvoy, startIdp, waitFilterReady, WASM } from '../tests/lib/stack.mjs';

const quick = process.argv.includes('--quick');
const SLICE = Number(process.env.BENCH_SLICE) || 1;
const PAIRS = Number(process.env.BENCH_PAIRS) || (quick ? 2 : 15);
const WARMUP = quick ? 0 : 2;
const CONNECTIONS = 16;
const NOOP_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_noop_filter.wasm');
const cores = os.cpus().length;
const pin = (core, cmd) => (cores >= 2 ? ['taskset', '-c', String(core), ...cmd] : cmd);

const CASE_NAMES = ['envoy', 'wasm-noop', 'native-oauth2', 'portcullis-session', 'portcullis-session-nocache', 'portcullis-public'];
const ports = Object.fromEntries(await Promise.all(CASE_NAMES.map(async (n) => [n, await freePort()])));
const idpPort = await freePort();
await startIdp({ port: idpPort, origins: Object.values(ports).map((p) => `http://localhost:${p}`) });

function parseWrk(out) {
  const rps = Number((out.match(/Requests\/sec:\s+([\d.]+)/) || [])[1]);
  const lat = (p) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
    if (!m) return NaN;
    return Number(m[1]) * { us: 1, ms: 1000, s: 1e6 }[m[2]];
  };
  const non2xx = Number((out.match(/Non-2xx or 3xx responses:\s+(\d+)/) || [0, 0])[1]);
  return { rps, p50_us: lat(50), p99_us: lat(99), non2xx };
}

function wrk(url, headers, seconds) {
  const args = ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const r = spawnSync(pin(1, args)[0], pin(1, args).slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  return parseWrk(r.stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function loginPortcullis(app) {
  const jar = new Jar();
  const start = await get(`${app}/`, { headers: { accept: 'text/html' }, jar });
  if (start.status !== 302) throw new Error(`portcullis start: ${start.status}`);
  const done = await get(await idpLogin(start.headers.location, 'alice'), { jar });
  if (done.status !== 302 || !jar.get('_portcullis')) throw new Error(`portcullis login failed: ${done.status} ${done.body}`);
  return [`Cookie: _portcullis=${jar.get('_portcullis')}`];
}

async function loginNative(app) {
  const jar = new Jar();
  const start = await get(`${app}/`, { jar });
  if (start.status !== 302) throw new Error(`native oauth2 start: ${start.status} ${start.body}`);
  const done = await get(await idpLogin(start.headers.location, 'alice'), { jar });
  if (done.status !== 302) throw new Error(`native oauth2 callback: ${done.status} ${done.body}`);
  const check = await get(`${app}/`, { jar });
  if (check.status !== 200) throw new Error(`native oauth2 session not accepted: ${check.status}`);
  return [`Cookie: ${jar.header()}`];
}

const plugin = pluginConfig({ idpPort, overrides: { public_paths: ['/public/*'] } });
const secrets = [
  { name: 'oauth2-token', generic_secret: { secret: { inline_string: 'envoy-oauth2-secret' } } },
  { name: 'oauth2-hmac', generic_secret: { secret: { inline_string: 'bench-hmac-secret-0123456789abcdef' } } },
];
const cases = [
  { name: 'envoy', label: 'Envoy, no auth filter', filters: [], path: '/', login: async () => [] },
  { name: 'wasm-noop', label: 'Empty wasm filter', filters: [noopFilter(NOOP_WASM)], path: '/', login: async () => [] },
  { name: 'native-oauth2', label: 'Envoy native oauth2, valid session', filters: [nativeOauth2Filter(idpPort)], secrets, path: '/', login: loginNative },
  { name: 'portcullis-session', label: 'Portcullis, valid session cookie', filters: [portcullisFilter(WASM, plugin)], path: '/', login: loginPortcullis, ready: true },
  { name: 'portcullis-session-nocache', label: 'Portcullis, session cookie, cache off', filters: [portcullisFilter(WASM, { ...plugin, session_cache_size: 0 })], path: '/', login: loginPortcullis, ready: true },
  { name: 'portcullis-public', label: 'Portcullis, public route', filters: [portcullisFilter(WASM, plugin)], path: '/public/x', login: async () => [], ready: true },
];

const only = (process.env.BENCH_ONLY || '').split(',').filter(Boolean);
/** bench/micro: wasm under V8 (no Liftoff, eager compile, as Envoy runs filters) and native. */
function micro() {
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  };
  const q = quick ? ['--quick'] : [];
  run('cargo', ['build', '--release', '-q', '-p', 'portcullis-micro-bench', '--bin', 'portcullis-micro-bench', '--target', 'wasm32-wasip1']);
  const wasm = JSON.parse(run('node', ['--no-warnings', '--no-liftoff', '--no-wasm-lazy-compilation', 'bench/micro/run.mjs',
    path.join(ROOT, 'target/wasm32-wasip1/release/portcullis-micro-bench.wasm'), ...q]).trim());
  const native = JSON.parse(run('cargo', ['run', '--release', '-q', '-p', 'portcullis-micro-bench', '--bin', 'portcullis-micro-bench', '--', ...q]).trim());
  console.error(`micro (wasm): RS256 ${wasm.verify_RS256_us.toFixed(0)} µs, jwt-simple RS256 ${wasm.jwt_simple_RS256_us.toFixed(0)} µs`);
  return { wasm_v8: wasm, native };
}
const microResults = only.length && !only.includes('micro') ? null : micro();

const selected = cases.filter((c) => !only.length || only.includes(c.name));
const envoys = [];
const live = [];
try {
  // Every case in its own Envoy, all up before the first measurement (idle ones cost nothing).
  for (const c of selected) {
    const listen = ports[c.name];
    const app = `http://localhost:${listen}`;
    const admin = await freePort();
    const cfg = envoyConfig({ listen, admin, idp: idpPort, filters: c.filters, direct: true, secrets: c.secrets || [] });
    const envoy = await startEnvoy({ name: `bench-${c.name}`, cfg, concurrency: 1, logLevel: 'warn' });
    envoys.push(envoy);
    if (cores >= 2) spawnSync('taskset', ['-a', '-p', '-c', '0', String(envoy.child.pid)]);
    if (c.ready) await waitFilterReady(app);
    // The native filter's HMAC covers the host, so every case sends the Host its login used.
    const headers = [`Host: localhost:${listen}`, ...(await c.login(app))];
    const url = `http://127.0.0.1:${listen}${c.path}`;
    // Every measured request must be a 200 through the filter, or the numbers mean nothing.
    const probe = await get(url, { headers: Object.fromEntries(headers.map((h) => [h.split(': ')[0].toLowerCase(), h.slice(h.indexOf(': ') + 2)])) });
    if (probe.status !== 200) throw new Error(`${c.name}: probe got ${probe.status}`);
    live.push({ ...c, url, headers, slices: [] });
  }
} catch (e) {
  for (const e2 of envoys) e2.stop();
  throw e;
}
const byName = Object.fromEntries(live.map((c) => [c.name, c]));
function slice(c) {
  const r = wrk(c.url, c.headers, SLICE);
  if (r.non2xx > 0 || !(r.rps > 0)) throw new Error(`${c.name}: non-2xx responses or no throughput: ${JSON.stringify(r)}`);
  c.slices.push(r);
  return r.rps;
}
const COMPARISONS = [
  ['wasm-noop', 'envoy'],
  ['portcullis-session', 'wasm-noop'],
  ['portcullis-public', 'wasm-noop'],
  ['portcullis-session', 'native-oauth2'],
  ['portcullis-session-nocache', 'portcullis-session'],
];
const quantile = (xs, q) => { const s2 = [...xs].sort((a, b) => a - b); return s2[Math.min(s2.length - 1, Math.floor(q * s2.length))]; };
const pairs = [];
try {
  for (const [a, b] of COMPARISONS) {
    const A = byName[a];
    const B = byName[b];
    if (!A || !B) continue;
    if (WARMUP) { wrk(A.url, A.headers, WARMUP); wrk(B.url, B.headers, WARMUP); }
    const ratios = [];
    for (let i = 0; i < PAIRS; i += 1) {
      // A B, then B A: drift within a pair cancels over two pairs.
      const [ra, rb] = i % 2 === 0 ? [slice(A), slice(B)] : (() => { const y = slice(B); return [slice(A), y]; })();
      ratios.push(ra / rb);
    }
    const p = { a, b, pairs: PAIRS, slice_s: SLICE, median: median(ratios), p25: quantile(ratios, 0.25), p75: quantile(ratios, 0.75), min: Math.min(...ratios), max: Math.max(...ratios), ratios };
    pairs.push(p);
    console.error(`${a} / ${b}: ${p.median.toFixed(3)} (p25–p75 ${p.p25.toFixed(3)}–${p.p75.toFixed(3)}, ${PAIRS} pairs)`);
  }
} finally {
  for (const e of envoys) e.stop();
}
const results = live.map((c) => {
  const rps = c.slices.map((r) => r.rps);
  return {
    case: c.name, label: c.label, slices: c.slices.length,
    rps: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps) },
    p50_us: median(c.slices.map((r) => r.p50_us)), p99_us: median(c.slices.map((r) => r.p99_us)),
  };
});
const paired = (a, b) => pairs.find((p) => p.a === a && p.b === b)?.median;
const summary = {
  when: new Date().toISOString(),
  quick,
  setup: { envoy: '1.40.0 --concurrency 1 (core 0), one Envoy per case', load: `wrk -t1 -c${CONNECTIONS} (core 1)`, slice_s: SLICE, pairs: PAIRS, warmup_s: WARMUP, route: 'direct_response 200', design: 'per comparison: alternating A/B slices, ratio per pair' },
  targets: {
    session_vs_wasm_noop: { want: '>= 0.80', got: paired('portcullis-session', 'wasm-noop') },
    session_vs_native_oauth2: { want: '>= 1.3', got: paired('portcullis-session', 'native-oauth2') },
    rs256_verify_in_wasm_us: { want: '<= 150', got: microResults?.wasm_v8.verify_RS256_us },
  },
  pairs,
  micro: microResults,
  results,
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
console.log('\n| case | req/s median (min–max) over its slices | p50 | p99 |');
console.log('|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.label} | ${f(r.rps.median)} (${f(r.rps.min)}–${f(r.rps.max)}) | ${us(r.p50_us)} | ${us(r.p99_us)} |`);
}
if (microResults) {
  const w = microResults.wasm_v8;
  console.log(`\nToken verification on a cache miss, µs per token (wasm under V8 / native): RS256 ${w.verify_RS256_us.toFixed(0)} / ${microResults.native.verify_RS256_us.toFixed(0)}, PS256 ${w.verify_PS256_us.toFixed(0)} / ${microResults.native.verify_PS256_us.toFixed(0)}, ES256 ${w.verify_ES256_us.toFixed(0)} / ${microResults.native.verify_ES256_us.toFixed(0)}, EdDSA ${w.verify_EdDSA_us.toFixed(0)} / ${microResults.native.verify_EdDSA_us.toFixed(0)}; jwt-simple RS256 ${w.jwt_simple_RS256_us.toFixed(0)} / ${microResults.native.jwt_simple_RS256_us.toFixed(0)} (target: RS256 in wasm <= 150)`);
}
const t = (v) => (v == null ? '–' : v.toFixed(3));
console.log(`\nsession / empty wasm = ${t(summary.targets.session_vs_wasm_noop.got)} (target >= 0.80); session / native oauth2 = ${t(summary.targets.session_vs_native_oauth2.got)} (target >= 1.3), paired medians`);
process.exit(0);
