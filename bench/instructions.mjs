// `just bench-instructions`: instructions per request of Envoy itself, a figure noisy neighbours cannot
// move (throughput on these shared machines drifts 2-3x within seconds; see ../shared/RECIPES.md).
//
// Each case starts Envoy (--concurrency 1, direct-response route) under
// `valgrind --tool=callgrind --smc-check=all-non-file` (V8's JIT needs the flag), sends warm-up requests,
// zeroes the counters (`vgdb --pid=<pid> zero`), sends N requests one at a time on one keep-alive
// connection, dumps (`vgdb --pid=<pid> dump`) and divides the dump's total instruction count by N.
// Repeats agree within ~0.1 % here. valgrind's virtual CPU lacks SHA-NI and ADX, so compare wasm
// filters with each other, not with C++ filters that hash or verify with BoringSSL (native-jwt's
// figure is an upper bound).
//
// Cases (bench/cases.mjs, the same requests and names as bench/run.mjs): passthrough | wasm-noop |
// wasm-public | wasm-session (valid session cookie, per-VM cache warm) | wasm-session-browser and
// wasm-noop-browser (a browser's headers and cookies) | wasm-bearer-cached | wasm-bearer (RS256 on every
// request) | native-jwt. BENCH_ONLY=case,case picks some (also native-oauth2, wasm-session-nocache);
// INSTR_REQUESTS (2000) and INSTR_WARMUP (300) set the counts; PORTCULLIS_WASM another build.
// The IdP is bench/fast-idp.mjs, in this process.
// Writes target/bench/instructions.json and prints Markdown tables.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { bootstrapYaml, envoyConfig } from '../tests/lib/envoy-config.mjs';
import { get } from '../tests/lib/http.mjs';
import { ENVOY_BINARY, freePort, ROOT, sleep, WASM } from '../tests/lib/stack.mjs';
import { benchCases, COMPARISONS, probe } from './cases.mjs';
import { startFastIdp } from './fast-idp.mjs';

const REQUESTS = Number(process.env.INSTR_REQUESTS) || 2000;
const WARMUP = Number(process.env.INSTR_WARMUP) || 300;
const OUT = path.join(ROOT, 'target/bench/callgrind');
// What runs without BENCH_ONLY (wasm-session-browser before wasm-noop-browser: the latter sends the
// former's session cookie). Each case takes ~3-4 min under callgrind.
const DEFAULT_CASES = ['passthrough', 'wasm-noop', 'wasm-public', 'wasm-session', 'wasm-session-lean', 'wasm-session-leanest', 'wasm-public-nostatus', 'wasm-session-browser', 'wasm-noop-browser', 'wasm-bearer-cached', 'wasm-bearer', 'native-jwt'];
fs.mkdirSync(OUT, { recursive: true });

const idp = await startFastIdp({});
const only = (process.env.BENCH_ONLY || '').split(',').filter(Boolean);
const all = benchCases(idp, { wasm: WASM }).filter((c) => !c.login);
const unknown = only.filter((n) => !all.some((c) => c.name === n));
if (unknown.length) throw new Error(`BENCH_ONLY: no such case here: ${unknown.join(', ')}`);
const cases = all.filter((c) => (only.length ? only.includes(c.name) : DEFAULT_CASES.includes(c.name)));
const shared = {};

/** One keep-alive connection; requests strictly one after another. */
function sequential(port, reqPath, headers, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise((resolve, reject) => {
    let left = n;
    const one = () => {
      const req = http.request({ host: '127.0.0.1', port, path: reqPath, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) { agent.destroy(); reject(new Error(`status ${res.statusCode}`)); return; }
          left -= 1;
          if (left === 0) { agent.destroy(); resolve(); } else one();
        });
      });
      req.on('error', (e) => { agent.destroy(); reject(e); });
      req.end();
    };
    one();
  });
}

/** The total instruction count (`totals:` or `summary:` line) of a callgrind dump. */
function totalInstructions(file) {
  const text = fs.readFileSync(file, 'utf8');
  const m = text.match(/^totals:\s+(\d+)/m) || text.match(/^summary:\s+(\d+)/m);
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

async function until(what, fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch { /* not yet */ }
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function measure(c) {
  const [listen, admin] = [await freePort(), await freePort()];
  const host = `localhost:${listen}`;
  const origin = `http://${host}`;
  const cfgFile = path.join(OUT, `${c.name}.yaml`);
  fs.writeFileSync(cfgFile, bootstrapYaml(envoyConfig({ listen, admin, idp: idp.port, filters: c.filters, direct: true, secrets: c.secrets || [] })));
  const prefix = path.join(OUT, `callgrind.${c.name}`);
  for (const f of fs.readdirSync(OUT)) if (f.startsWith(`callgrind.${c.name}.`)) fs.rmSync(path.join(OUT, f));
  const args = ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${prefix}.%p`,
    ENVOY_BINARY, '-c', cfgFile, '--concurrency', '1', '--use-dynamic-base-id', '--log-level', 'warn'];
  const cmd = os.cpus().length >= 2 ? ['taskset', '-c', '0', ...args] : args;
  const log = fs.openSync(path.join(OUT, `${c.name}.log`), 'w');
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', log, log] });
  const t0 = Date.now();
  try {
    await until(`Envoy under callgrind (${c.name})`, async () => (await get(`http://127.0.0.1:${admin}/ready`)).status === 200, 600000);
    if (c.ready) {
      await until('the filter to load the provider', async () => (await get(`${origin}/oauth2/start`)).status === 302, 300000);
    }
    const headers = { host, ...(await c.headers({ idp, port: listen, host, origin, shared })) };
    await probe(c, listen, headers, 120000);
    const startup_s = (Date.now() - t0) / 1000;
    await sequential(listen, c.path, headers, WARMUP);
    const zeroed = spawnSync('vgdb', [`--pid=${child.pid}`, 'zero'], { encoding: 'utf8' });
    if (zeroed.status !== 0) throw new Error(`vgdb zero: ${zeroed.stderr}`);
    const t1 = Date.now();
    await sequential(listen, c.path, headers, REQUESTS);
    const wall_s = (Date.now() - t1) / 1000;
    const before = new Set(fs.readdirSync(OUT));
    // Asynchronously: the IdP in this process must keep answering while vgdb waits.
    const dumped = await new Promise((resolve) => {
      const v = spawn('vgdb', [`--pid=${child.pid}`, 'dump'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      v.stderr.on('data', (d) => { err += d; });
      v.on('close', (status) => resolve({ status, stderr: err }));
    });
    if (dumped.status !== 0) throw new Error(`vgdb dump: ${dumped.stderr}`);
    let file;
    await until('the callgrind dump', async () => {
      // The first dump goes to `<prefix>.<pid>.1`.
      file = fs.readdirSync(OUT).find((f) => !before.has(f) && f.startsWith(`callgrind.${c.name}.`));
      return file && fs.statSync(path.join(OUT, file)).size > 0;
    }, 60000);
    await sleep(500); // the dump is written in one go, but give it a moment to be complete
    const total = totalInstructions(path.join(OUT, file));
    return { case: c.name, label: c.label, instructions_per_request: total / REQUESTS, requests: REQUESTS, warmup: WARMUP, startup_s, wall_s };
  } finally {
    child.kill('SIGKILL');
  }
}

const results = [];
for (const c of cases) {
  const r = await measure(c);
  results.push(r);
  console.error(`${c.name}: ${(r.instructions_per_request / 1000).toFixed(1)}k instructions per request`);
}
await idp.stop();
const per = (n) => results.find((r) => r.case === n)?.instructions_per_request;
const ratio = (a, b) => (per(a) && per(b) ? per(a) / per(b) : null);
for (const r of results) {
  r.vs_passthrough = ratio(r.case, 'passthrough');
  r.vs_wasm_noop = ratio(r.case, 'wasm-noop');
}
const atMost = (want, got) => ({ want: `<= ${want}`, got, met: got == null ? null : got <= want });
const summary = {
  when: new Date().toISOString(),
  method: 'valgrind --tool=callgrind --smc-check=all-non-file; Envoy --concurrency 1; one keep-alive connection; counters zeroed after warm-up',
  wasm: WASM,
  targets: {
    session_vs_wasm_noop: atMost(1.5, ratio('wasm-session', 'wasm-noop')),
    public_vs_wasm_noop: atMost(1.15, ratio('wasm-public', 'wasm-noop')),
  },
  ratios: COMPARISONS.filter(([a, b]) => per(a) && per(b)).map(([a, b]) => ({ a, b, ratio: ratio(a, b) })),
  results,
};
fs.writeFileSync(path.join(ROOT, 'target/bench/instructions.json'), `${JSON.stringify(summary, null, 2)}\n`);
const x = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(2));
console.log('| case | instructions per request | × passthrough | × empty wasm |');
console.log('|---|---|---|---|');
for (const r of results) console.log(`| ${r.label} | ${(r.instructions_per_request / 1000).toFixed(1)}k | ${x(r.vs_passthrough)} | ${x(r.vs_wasm_noop)} |`);
if (summary.ratios.length) {
  const label = (n) => results.find((r) => r.case === n).label;
  console.log('\n| A / B | instructions ratio |');
  console.log('|---|---|');
  for (const q of summary.ratios) console.log(`| ${label(q.a)} / ${label(q.b)} | ${x(q.ratio)} |`);
}
process.exit(0);
