// Starts the real parts on loopback: oidc-provider, the echo upstream and Envoy with the Portcullis
// filter. Every process is killed when the test process exits.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { bootstrapYaml, envoyConfig, pluginConfig, portcullisFilter } from './envoy-config.mjs';
import { get } from './http.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WASM = path.join(ROOT, 'target/portcullis.wasm');
export const ENVOY = process.env.ENVOY_BIN || path.join(ROOT, '.venv/bin/envoy');
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

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export async function startIdp({ port, origins }) {
  const p = launch(`idp-${port}`, process.execPath, [path.join(ROOT, 'tests/idp/server.mjs')], { IDP_PORT: String(port), APP_ORIGINS: origins.join(',') });
  await until('the IdP', async () => (await get(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).status === 200);
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
    if (p.child.exitCode !== null) throw new Error(`Envoy exited: ${p.read().slice(-2000)}`);
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

/** IdP + echo + Envoy(Portcullis). `plugin` patches the plugin configuration. */
export async function startStack({ plugin = {}, concurrency = 2, name = 'e2e' } = {}) {
  const [listen, admin, upstream, idp] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const app = `http://localhost:${listen}`;
  const idpProc = await startIdp({ port: idp, origins: [app] });
  const echo = await startEcho({ port: upstream });
  const filters = [portcullisFilter(WASM, pluginConfig({ idpPort: idp, overrides: plugin }))];
  const envoys = [];
  /** Starts an Envoy with this stack's filter configuration (another replica, or a restart). */
  async function envoyOn(listenPort, adminPort, envoyName) {
    const e = await startEnvoy({ name: envoyName, cfg: envoyConfig({ listen: listenPort, admin: adminPort, upstream, idp, filters }), concurrency });
    envoys.push(e);
    await waitFilterReady(`http://localhost:${listenPort}`);
    return e;
  }
  const envoy = await envoyOn(listen, admin, name);
  return {
    app, idp: `http://127.0.0.1:${idp}`, admin: `http://127.0.0.1:${admin}`, envoy, idpProc, echo,
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
    stop() { for (const e of envoys) e.stop(); echo.stop(); idpProc.stop(); },
  };
}
