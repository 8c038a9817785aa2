// The real flytekit against Portcullis: the Flyte admin stub (tests/upstream/flyte_admin.py), flytekit runs
// (tests/clients/flyte_projects.py in .venv-flyte, from `scripts/setup.sh clients`) and the scripted browser
// its PKCE login opens (tests/clients/flyte_browser.py hands the URL to an inbox here; the inbox logs in at
// oidc-provider over HTTP and GETs flytekit's loopback callback).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { get, idpLogin, request } from './http.mjs';
import { freePort, ROOT, until } from './stack.mjs';

export const FLYTE_PYTHON = path.join(ROOT, '.venv-flyte/bin/python');
const STUB = path.join(ROOT, 'tests/upstream/flyte_admin.py');
const DRIVER = path.join(ROOT, 'tests/clients/flyte_projects.py');
const BROWSER = path.join(ROOT, 'tests/clients/flyte_browser.py');
const RUN = path.join(ROOT, 'target/e2e');

/** Throws a clear message when the flytekit venv is missing (the test must fail, not skip). */
export function requireFlytekit() {
  const stamp = path.join(ROOT, '.venv-flyte/.portcullis-stamp');
  assert.ok(fs.existsSync(stamp), `flytekit is not installed: run scripts/setup.sh clients (no ${stamp})`);
  return fs.readFileSync(stamp, 'utf8').trim();
}

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

/**
 * Starts the admin stub on `port` (h2c) serving `idp`'s endpoints; resolves once it answers.
 * Returns {port, calls(), resetCalls(), stop(), read()}; calls() = {counts: {method: n}, log: [...]}.
 */
export async function startFlyteAdmin({ port, idp, args = [] }) {
  const statsPort = await freePort();
  fs.mkdirSync(RUN, { recursive: true });
  const log = path.join(RUN, `flyte-admin-${port}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn(FLYTE_PYTHON, [STUB, '--port', String(port), '--stats-port', String(statsPort), '--idp', idp, ...args],
    { cwd: ROOT, stdio: ['ignore', out, out] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const stats = `http://127.0.0.1:${statsPort}/calls`;
  const read = () => fs.readFileSync(log, 'utf8');
  await until('the Flyte admin stub', async () => {
    if (child.exitCode !== null) throw new Error(`the stub exited: ${read()}`);
    return (await get(stats)).status === 200;
  }, 30000);
  return {
    port,
    read,
    async calls() { return (await get(stats)).json(); },
    async resetCalls() { assert.equal((await request('DELETE', stats)).status, 200); },
    stop() { try { child.kill('SIGKILL'); } catch { /* gone */ } },
  };
}

/** A fresh directory for one flytekit run's config and secrets. */
export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-flyte-'));
}

/**
 * Writes a flytectl-style config.yaml (what users keep in ~/.flyte/config.yaml) and returns its path.
 * `admin` holds the admin section's keys (endpoint, insecure, authType, clientId, clientSecretLocation, command, scopes).
 */
export function writeConfig(dir, admin) {
  const lines = ['admin:'];
  for (const [k, v] of Object.entries(admin)) {
    if (Array.isArray(v)) {
      lines.push(`  ${k}:`);
      for (const x of v) lines.push(`    - ${JSON.stringify(x)}`);
    } else lines.push(`  ${k}: ${typeof v === 'string' ? JSON.stringify(v) : v}`);
  }
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * Runs tests/clients/flyte_projects.py with `args` in the flytekit venv. Resolves to
 * {code, result (its JSON line), stdout, stderr, ms}. The keyring is the null one (nothing cached between
 * runs) and BROWSER is the scripted browser posting to `inbox` (if given).
 */
export function runFlyte(args, { inbox, env = {}, timeoutMs = 60000 } = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLYTE') && k !== 'BROWSER'));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(FLYTE_PYTHON, [DRIVER, ...args], {
      cwd: ROOT,
      env: {
        ...clean,
        PYTHON_KEYRING_BACKEND: 'keyring.backends.null.Keyring',
        ...(inbox ? { BROWSER, FLYTE_BROWSER_INBOX: inbox.url } : { BROWSER: '/bin/false' }),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const last = stdout.trim().split('\n').pop() || '';
      let result = null;
      try { result = JSON.parse(last); } catch { /* reported below */ }
      if (!result) {
        reject(new Error(`flyte_projects.py ${args.join(' ')}: exit ${code ?? signal}, no JSON result\nstdout: ${stdout}\nstderr: ${stderr.slice(-3000)}`));
        return;
      }
      resolve({ code, result, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/**
 * The scripted browser's other half. flyte_browser.py POSTs the authorize URL here; we log `user` in at the
 * IdP (tests/lib/http.mjs idpLogin: oidc-provider's login and consent over HTTP) and GET the URL the IdP
 * redirects to, which is flytekit's loopback callback. `opened` lists {url, callback, status, error} per login.
 */
export async function browserInbox({ user }) {
  const opened = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      const entry = { url: body, callback: null, status: null, error: null };
      opened.push(entry);
      // Only after answering: flytekit accepts the callback once the browser process has exited.
      (async () => {
        entry.callback = await idpLogin(body, inbox.user);
        const r = await get(entry.callback);
        entry.status = r.status;
        entry.page = r.body.slice(0, 300);
      })().catch((e) => { entry.error = e.message; });
    });
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const inbox = {
    url: `http://127.0.0.1:${port}/`,
    user,
    opened,
    close: () => new Promise((r) => server.close(r)),
  };
  return inbox;
}
