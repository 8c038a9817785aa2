// `just bench [--quick]`: requests/s and p50/p99 through real Envoy (--concurrency 1, pinned to core 0)
// with wrk pinned to core 1, direct-response route, for:
//   envoy (no auth filter) | wasm-noop (empty wasm filter) | native-oauth2 (Envoy's oauth2 filter, valid
//   session) | portcullis-session (valid session cookie) | portcullis-public (public path)
// Each case: warm-up, then 3 runs (median with min/max). --quick: 1 short run each (CI smoke test).
// Before the Envoy cases: bench/micro (token verification per algorithm, as the core does it on a cache
// miss) built for wasm32-wasip1 and run under node's V8 with Envoy's settings, and natively.
// Writes target/bench/summary.json and prints a Markdown table for the README.
// Knobs for investigation: BENCH_ONLY=case,case (subset), BENCH_SECONDS=n (run length).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { envoyConfig, nativeOauth2Filter, noopFilter, pluginConfig, portcullisFilter } from '../tests/lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../tests/lib/http.mjs';
import { freePort, ROOT, startEnvoy, startIdp, waitFilterReady, WASM } from '../tests/lib/stack.mjs';

const quick = process.argv.includes('--quick');
const DURATION = Number(process.env.BENCH_SECONDS) || (quick ? 2 : 10);
const WARMUP = quick ? 0 : 2;
const REPS = quick ? 1 : 3;
const CONNECTIONS = 16;
const NOOP_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_noop_filter.wasm');
const cores = os.cpus().length;
const pin = (core, cmd) => (cores >= 2 ? ['taskset', '-c', String(core), ...cmd] : cmd);

const listen = await freePort();
const idpPort = await freePort();
const app = `http://localhost:${listen}`;
await startIdp({ port: idpPort, origins: [app] });

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

async function loginPortcullis() {
  const jar = new Jar();
  const start = await get(`${app}/`, { headers: { accept: 'text/html' }, jar });
  if (start.status !== 302) throw new Error(`portcullis start: ${start.status}`);
  const done = await get(await idpLogin(start.headers.location, 'alice'), { jar });
  if (done.status !== 302 || !jar.get('_portcullis')) throw new Error(`portcullis login failed: ${done.status} ${done.body}`);
  return [`Cookie: _portcullis=${jar.get('_portcullis')}`];
}

async function loginNative() {
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
  run('cargo', ['build', '--release', '-q', '-p', 'portcullis-micro-bench', '--target', 'wasm32-wasip1']);
  const wasm = JSON.parse(run('node', ['--no-warnings', '--no-liftoff', '--no-wasm-lazy-compilation', 'bench/micro/run.mjs',
    path.join(ROOT, 'target/wasm32-wasip1/release/portcullis-micro-bench.wasm'), ...q]).trim());
  const native = JSON.parse(run('cargo', ['run', '--release', '-q', '-p', 'portcullis-micro-bench', '--', ...q]).trim());
  console.error(`micro (wasm): RS256 ${wasm.verify_RS256_us.toFixed(0)} µs, jwt-simple RS256 ${wasm.jwt_simple_RS256_us.toFixed(0)} µs`);
  return { wasm_v8: wasm, native };
}
const microResults = only.length && !only.includes('micro') ? null : micro();

const results = [];
for (const c of cases.filter((c) => !only.length || only.includes(c.name))) {
  const admin = await freePort();
  const cfg = envoyConfig({ listen, admin, idp: idpPort, filters: c.filters, direct: true, secrets: c.secrets || [] });
  const envoy = await startEnvoy({ name: `bench-${c.name}`, cfg, concurrency: 1, logLevel: 'warn' });
  try {
    if (cores >= 2) spawnSync('taskset', ['-a', '-p', '-c', '0', String(envoy.child.pid)]);
    if (c.ready) await waitFilterReady(app);
    // The native filter's HMAC covers the host, so every case sends the Host the login used.
    const headers = [`Host: localhost:${listen}`, ...(await c.login())];
    // Every measured request must be a 200 through the filter, or the numbers mean nothing.
    const probe = await get(`http://127.0.0.1:${listen}${c.path}`, { headers: Object.fromEntries(headers.map((h) => [h.split(': ')[0].toLowerCase(), h.slice(h.indexOf(': ') + 2)])) });
    if (probe.status !== 200) throw new Error(`${c.name}: probe got ${probe.status}`);
    if (WARMUP) wrk(`http://127.0.0.1:${listen}${c.path}`, headers, WARMUP);
    const runs = [];
    for (let i = 0; i < REPS; i += 1) runs.push(wrk(`http://127.0.0.1:${listen}${c.path}`, headers, DURATION));
    if (runs.some((r) => r.non2xx > 0 || !(r.rps > 0))) throw new Error(`${c.name}: non-2xx responses or no throughput: ${JSON.stringify(runs)}`);
    const rps = runs.map((r) => r.rps);
    results.push({
      case: c.name, label: c.label,
      rps: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps) },
      p50_us: median(runs.map((r) => r.p50_us)), p99_us: median(runs.map((r) => r.p99_us)), runs,
    });
    console.error(`${c.name}: ${median(rps).toFixed(0)} req/s`);
  } finally {
    envoy.stop();
  }
}

const base = (n) => results.find((r) => r.case === n)?.rps.median;
for (const r of results) {
  r.ratio_vs_envoy = r.rps.median / base('envoy');
  r.ratio_vs_wasm_noop = r.rps.median / base('wasm-noop');
}
const summary = {
  when: new Date().toISOString(),
  quick,
  setup: { envoy: '1.40.0 --concurrency 1 (core 0)', load: `wrk -t1 -c${CONNECTIONS} (core 1)`, duration_s: DURATION, warmup_s: WARMUP, repetitions: REPS, route: 'direct_response 200' },
  targets: {
    session_vs_wasm_noop: { want: '>= 0.90', got: base('portcullis-session') / base('wasm-noop') },
    session_vs_native_oauth2: { want: '> 1.00', got: base('portcullis-session') / base('native-oauth2') },
    rs256_verify_in_wasm_us: { want: '<= 150', got: microResults?.wasm_v8.verify_RS256_us },
  },
  micro: microResults,
  results,
};
fs.mkdirSync(path.join(ROOT, 'target/bench'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'target/bench/summary.json'), `${JSON.stringify(summary, null, 2)}\n`);

const f = (x) => x.toFixed(0);
const us = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(0)} µs`);
console.log('| case | req/s median (min–max) | p50 | p99 | × Envoy | × empty wasm |');
console.log('|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.label} | ${f(r.rps.median)} (${f(r.rps.min)}–${f(r.rps.max)}) | ${us(r.p50_us)} | ${us(r.p99_us)} | ${r.ratio_vs_envoy.toFixed(2)} | ${r.ratio_vs_wasm_noop.toFixed(2)} |`);
}
if (microResults) {
  const w = microResults.wasm_v8;
  console.log(`\nToken verification on a cache miss, µs per token (wasm under V8 / native): RS256 ${w.verify_RS256_us.toFixed(0)} / ${microResults.native.verify_RS256_us.toFixed(0)}, PS256 ${w.verify_PS256_us.toFixed(0)} / ${microResults.native.verify_PS256_us.toFixed(0)}, ES256 ${w.verify_ES256_us.toFixed(0)} / ${microResults.native.verify_ES256_us.toFixed(0)}, EdDSA ${w.verify_EdDSA_us.toFixed(0)} / ${microResults.native.verify_EdDSA_us.toFixed(0)}; jwt-simple RS256 ${w.jwt_simple_RS256_us.toFixed(0)} / ${microResults.native.jwt_simple_RS256_us.toFixed(0)} (target: RS256 in wasm <= 150)`);
}
console.log(`\nsession / empty wasm = ${summary.targets.session_vs_wasm_noop.got.toFixed(3)} (target >= 0.90); session / native oauth2 = ${summary.targets.session_vs_native_oauth2.got.toFixed(3)} (target > 1.00)`);
process.exit(0);
