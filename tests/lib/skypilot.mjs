// The real SkyPilot 0.14.1 (scripts/setup.sh clients → .venv-sky): an API server started with
// `sky api start --foreground` under a throw-away HOME, and the `sky` CLI run as a user would, each user
// with its own HOME (its cookie jar ~/.sky/cookies.txt and ~/.sky/config.yaml live there).
//
// The server's port: SKYPILOT_API_SERVER_LOCAL_PORT (the client and the server both honour it; the
// default is 46580). `sky api stop` with the same variable kills only the server bound to that port.
//
// What Portcullis has to give SkyPilot (paths in .venv-sky/lib/python3.11/site-packages/sky/):
// - The user: the server reads X-Auth-Request-Email from anyone (server/config.py:346-405, default
//   external-proxy mode; server/server.py:312 makes id = md5(email)[:8]). Only Portcullis may reach it.
// - `sky api login -e URL` (client/sdk.py:3339): GET /api/health (client headers X-SkyPilot-API-Version /
//   X-SkyPilot-Version, server/rest.py:84; Accept */*, so an `api` route for the 401); a 401 means
//   NEEDS_AUTH (server/common.py:594). The token then comes from, in order: the polling flow
//   (sdk.py:3208; only when the API version is known, i.e. on --relogin: /auth/authorize in the browser,
//   GET /api/v1/auth/token?code_verifier= polled without cookies — public), the loopback callback
//   (sdk.py:3270; the browser opens /token?local_port=N and the page POSTs the token to localhost:N), or
//   stdin (sdk.py:3320, `Paste the token`). The token is base64 JSON {"v":1,"user","cookies"} of the
//   cookies the server received (server/server.py:361): /token and POST /api/v1/auth/authorize need
//   forward_session_cookie. The cookies go to ~/.sky/cookies.txt for `.<host>` (sdk.py:3541-3580) and
//   are sent on every later request; a final /api/health must be HEALTHY.
// - The response headers X-SkyPilot-API-Version / X-SkyPilot-Version (missing = "server too old").
// - oauth2-proxy mode (server/auth/oauth2_proxy.py): SKYPILOT_AUTH_OAUTH2_PROXY_ENABLED=true and
//   SKYPILOT_AUTH_OAUTH2_PROXY_BASE_URL on the server; it proxies /oauth2/* to the base URL and asks
//   GET <base>/oauth2/auth (the request's cookies, Host, X-Forwarded-Uri) about every other request not
//   from a bare loopback peer: 202 + X-Auth-Request-Email = the user; 401 = anonymous /api/health and
//   /api/v1/auth/token, a 307 to <server>/oauth2/start?rd=<path> for the rest.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { get } from './http.mjs';
import { freePort, ROOT, until } from './stack.mjs';

export const SKY_VENV = process.env.SKY_VENV || path.join(ROOT, '.venv-sky');
export const SKY = path.join(SKY_VENV, 'bin/sky');
const RUN = path.join(ROOT, 'target/e2e');
fs.mkdirSync(RUN, { recursive: true });

/** The version headers every request of the SkyPilot client carries (sky/server/rest.py:84-85). */
export const SKY_CLIENT_HEADERS = { 'x-skypilot-api-version': '62', 'x-skypilot-version': '0.14.1' };

// Process groups of the servers this process started: killed whatever way the test process ends.
const groups = new Set();
const killGroups = () => { for (const pid of groups) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } } };
process.on('exit', killGroups);

/** The environment of a SkyPilot process: nothing SkyPilot-specific inherited, no usage reports. */
function skyEnv(home, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^SKYPILOT_|^SKY_|^BROWSER$|^ENABLE_BASIC_AUTH$/.test(k)) env[k] = v;
  }
  return {
    ...env,
    HOME: home,
    SKYPILOT_DISABLE_USAGE_COLLECTION: '1',
    // No colours in what the tests read.
    NO_COLOR: '1',
    TERM: 'dumb',
    PYTHONUNBUFFERED: '1',
    ...extra,
  };
}

/** A fresh HOME directory for a SkyPilot server or CLI user. */
export function tempHome(label) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `portcullis-sky-${label}-`));
}

/** Strips ANSI colour codes (SkyPilot colours some lines even when not on a terminal). */
export const plain = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

/**
 * The server's second port: its request queue manager listens on a port derived from the API port,
 * 50011 for the default 46580, else 50000 + (11 + port - 46580) mod 10000
 * (sky/server/requests/queues/mp_queue.py:18-30). Two servers whose ports are equal mod 10000 collide, and
 * so does any process that happens to hold the derived port; the server then exits at start.
 */
export function queueManagerPort(port) {
  const offset = port - 46580;
  return offset === 0 ? 50011 : 50000 + ((((50011 - 50000 + offset) % 10000) + 10000) % 10000);
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

const reservedQueuePorts = new Set();

/** A free port for a SkyPilot API server whose queue manager port is free too (and not another one's). */
export async function pickSkyPort() {
  for (let i = 0; i < 50; i += 1) {
    const port = await freePort();
    const q = queueManagerPort(port);
    if (reservedQueuePorts.has(q) || reservedQueuePorts.has(port) || !(await portFree(q))) continue;
    reservedQueuePorts.add(q);
    return port;
  }
  throw new Error('no free port pair for a SkyPilot API server');
}

/**
 * Starts a SkyPilot API server on 127.0.0.1:`port` (a free one by default) and waits until
 * `/api/health` answers 200 healthy. `env` is added to the server's environment (e.g. the oauth2-proxy
 * mode's SKYPILOT_AUTH_OAUTH2_PROXY_ENABLED / _BASE_URL). Returns {port, url, home, log, read(), stop()}.
 */
export async function startSkyServer({ name = 'sky', port, env = {}, timeoutMs = 90000 } = {}) {
  port = port || await pickSkyPort();
  const home = tempHome(name);
  const log = path.join(RUN, `${name}-${port}.log`);
  const out = fs.openSync(log, 'w');
  const serverEnv = skyEnv(home, { SKYPILOT_API_SERVER_LOCAL_PORT: String(port), ...env });
  // --foreground execs the server in this process (sky/server/common.py _start_api_server), so the pid
  // and its process group are the server's; detached = its own group, killed whole at stop.
  const child = spawn(SKY, ['api', 'start', '--foreground', '--port', String(port)], {
    cwd: home, env: serverEnv, stdio: ['ignore', out, out], detached: true,
  });
  fs.closeSync(out);
  groups.add(child.pid);
  const url = `http://127.0.0.1:${port}`;
  const read = () => fs.readFileSync(log, 'utf8');
  let stopped = false;
  const alive = () => { try { process.kill(-child.pid, 0); return true; } catch { return false; } };
  async function stop() {
    if (stopped) return;
    stopped = true;
    // The whole process group (the server, its uvicorn workers, executors, resource tracker) gets
    // SIGKILL, as `sky api stop` does (kill_children_processes(force=True)): its state is in a HOME that is
    // deleted next, and a graceful exit takes ~7 s.
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    await until('the SkyPilot API server to exit', () => !alive(), 5000, 50).catch(() => {});
    groups.delete(child.pid);
    // Should any server process for this port have left the group, `sky api stop` (scoped to the port by
    // SKYPILOT_API_SERVER_LOCAL_PORT) finds it by its command line and kills it with its children.
    if (serverProcesses(port).length) {
      await runSky(['api', 'stop'], { home, env: { SKYPILOT_API_SERVER_LOCAL_PORT: String(port) }, timeoutMs: 30000 }).catch(() => {});
    }
    fs.rmSync(home, { recursive: true, force: true });
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await Promise.race([
      until(`the SkyPilot API server on ${port}`, async () => {
        const r = await get(`${url}/api/health`, { headers: { accept: 'application/json' } });
        return r.status === 200 && r.json().status === 'healthy';
      }, timeoutMs, 250),
      exited.then((code) => { throw new Error(`sky api start on ${port} exited ${code}: ${read().slice(-2000)}`); }),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, url, home, log, read, stop, pid: child.pid };
}

/** Pids of live SkyPilot API server processes bound to `port` (by command line, like `sky api stop`). */
export function serverProcesses(port) {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd;
    try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' '); } catch { continue; }
    if (cmd.includes('sky.server.server') && cmd.includes(`--port=${port}`)) pids.push(Number(d));
  }
  return pids;
}

/**
 * Runs the `sky` CLI as the user whose HOME is `home`. `input` is written to its stdin (then closed;
 * with `input` undefined stdin stays open until `stdinOpen` is false or the process ends). `browser`:
 * the BROWSER program (default /bin/false: opening a browser fails). Resolves to
 * {code, out (stdout+stderr, colours stripped), stdout, stderr, ms}. Never rejects on a non-zero exit.
 */
export function runSky(args, { home, env = {}, input, browser = '/bin/false', timeoutMs = 60000, onOutput } = {}) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(SKY, args, { cwd: home, env: skyEnv(home, { BROWSER: browser, ...env }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; onOutput?.(plain(stdout + stderr)); });
    child.stderr.on('data', (d) => { stderr += d; onOutput?.(plain(stdout + stderr)); });
    child.stdin.on('error', () => {});
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), signal, stdout: plain(stdout), stderr: plain(stderr), out: plain(stdout + stderr), ms: Date.now() - started });
    });
  });
}

/**
 * A BROWSER program for the CLI: it records each URL it is asked to open (one per line) in a file and
 * exits 0 (so the CLI believes a browser opened). `next()` waits for the next URL not yet taken.
 */
export function browserRecorder(label = 'browser') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `portcullis-sky-${label}-`));
  const file = path.join(dir, 'urls');
  const program = path.join(dir, 'open-url');
  fs.writeFileSync(file, '');
  fs.writeFileSync(program, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${file}'\n`, { mode: 0o755 });
  let taken = 0;
  return {
    program,
    urls: () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean),
    async next(ms = 30000) {
      let url;
      await until('the CLI to open a browser', () => {
        const all = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
        if (all.length > taken) { url = all[taken]; taken += 1; return true; }
        return false;
      }, ms, 100);
      return url;
    },
    remove() { fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Decodes a SkyPilot login token (sky/server/server.py _generate_auth_token): {v, user, cookies}. */
export function decodeToken(token) {
  return JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
}

/** Encodes a login token the way the server does. */
export function encodeToken(data) {
  return Buffer.from(JSON.stringify(data)).toString('base64');
}

/** The user id SkyPilot derives from an email (md5, first 8 hex digits). */
export async function userHash(email) {
  const { createHash } = await import('node:crypto');
  return createHash('md5').update(email).digest('hex').slice(0, 8);
}

/** The cookies of the CLI's jar (~/.sky/cookies.txt, Netscape format): [{domain, path, secure, name, value}]. */
export function jarCookies(home) {
  const file = path.join(home, '.sky/cookies.txt');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const [domain, , p, secure, , name, value] = l.split('\t');
    return { domain, path: p, secure: secure === 'TRUE', name, value };
  });
}
