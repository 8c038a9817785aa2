// A real Prometheus scrapes a real Envoy running Portcullis, and everything shipped for operations is
// proven against what it collected: every panel of envoy/grafana/portcullis.json, every rule of
// envoy/prometheus/rules.yaml (loaded unmodified), and the exact series names of the metrics contract.
//
//   cd tests && node --test e2e/prometheus.test.mjs       (after `just wasm`; Prometheus from
//                                                          `scripts/setup.sh prometheus`: Debian's 2.42)
//
// The stack: oidc-provider, the echo app, Envoy (2 workers) with the filter, the fault proxy
// (tests/idp/faults.mjs) between Envoy's `idp` cluster and the IdP. Prometheus runs from /usr/bin with a
// generated config (scrape Envoy's admin /stats/prometheus every 1 s, evaluate the shipped rules every
// 1 s), its TSDB in a temporary directory, on a free loopback port.
//
// The scripted workload runs twice ("rounds"), a few seconds apart: a labelled counter is created at its
// first increment, and rate()/increase() only see increments after a series' first sample, so the first
// round creates the series and the second moves them. Each round:
//   - 5 browser-style logins that complete (2 of them kept for the next round's session refreshes),
//   - a callback with a wrong state (state_mismatch) and one without its login cookie,
//   - 401s (API calls without a session, a bearer route without a token),
//   - 403s: a group rule (admin: groups), a deny rule (internal), a bearer token short of a scope (api),
//   - bearer tokens from the client credentials grant: a JWT accepted twice (cache miss, then hit), an
//     opaque one through introspection; rejected: wrong audience, an unknown opaque token, garbage,
//   - two sessions from the previous round past 3/4 of their 8-s access token: one refresh succeeds, one
//     meets a token endpoint answering 500,
//   - IdP faults on the token endpoint during callbacks: 500 twice (502), 503 three times, a refused
//     connection twice (503), a hang past the 2-s callout timeout (504), a slow but good reply (1.5 s),
//   - the JWKS answering 500 to the scheduled refresh (every 10 s here) until two refreshes failed.
// Per round that is about 50 requests, 8 of them 5xx, 10 of 16 logins failed, 8 of 14 token endpoint
// calls failed, 2 responses and 2 token calls over 1 s. The alerts' thresholds (5 % 5xx, 25 % failed
// logins and at least 5, 10 % IdP errors, p99 > 1 s, any failed key-set refresh in 2 min) are crossed
// with room to spare; the test prints each alert's value beside its threshold.
//
// Then: (a) every panel target, with `$__rate_interval` = 1m (what Grafana computes for a 15-s scrape
// interval) and the template variables resolved through Prometheus, must return series with a non-zero
// value (the in-flight gauge: a series); (b) `promtool check rules` passes; (c) every alert and
// recording rule's expression returns data, and Prometheus has every alert pending or firing (the `for:`
// durations are minutes; pending proves the condition holds); the checks are shown to fail on a metric
// that does not exist, a renamed metric and a threshold the workload does not reach; (d) Envoy's own
// exposition has the exact names and labels, the in-flight gauge moves, and health checks are not traffic.
// Left in target/e2e/: prometheus.log, prometheus-exposition.txt (Envoy's exposition at the end) and
// the other parts' logs; Prometheus' TSDB lives in a temporary directory, removed afterwards.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { bearer, serviceToken, signIn, toCallback } from '../lib/flows.mjs';
import { get, request } from '../lib/http.mjs';
import { freePort, ROOT, sleep, startStack, until } from '../lib/stack.mjs';

const PROMETHEUS = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';
const PROMTOOL = process.env.PROMTOOL_BIN || '/usr/bin/promtool';
// (The two overrides are for trying the checks on a changed copy.)
const RULES = process.env.PORTCULLIS_RULES || path.join(ROOT, 'envoy/prometheus/rules.yaml');
const EXAMPLE_CONFIG = path.join(ROOT, 'envoy/prometheus/prometheus.yml');
const DASHBOARD = process.env.PORTCULLIS_DASHBOARD || path.join(ROOT, 'envoy/grafana/portcullis.json');
const RATE_INTERVAL = '1m';
const JOB = 'portcullis';

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const api = { accept: 'application/json' };
const TOKEN = '/token';
const JWKS = '/jwks';

const plugin = (idp) => ({
  // 8-second access tokens with rotating refresh tokens (tests/idp/server.mjs), forwarded upstream so
  // the session keeps its refresh token.
  client_id: 'portcullis-refresh',
  client_secret: 'portcullis-refresh-secret',
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  headers: { pass_access_token: true },
  // Every login also calls the userinfo endpoint (one more IdP endpoint in the metrics).
  claims: { userinfo: true },
  // A hang outlasts the callout timeout; a 1.5-s reply does not. Key set reloaded every 10 s.
  provider: { callout_timeout_ms: 2000, refresh_interval_seconds: 10 },
  bearer: {
    issuers: [{
      issuer: idp,
      audiences: ['api://portcullis-demo', 'api://opaque'],
      introspection: { client_id: 'portcullis-introspect', client_secret: 'portcullis-introspect-secret' },
    }],
  },
  routes: {
    rules: [
      { name: 'admin', prefix: '/admin', action: 'authenticate', require: { groups: ['admins'] } },
      { name: 'internal', prefix: '/internal', action: 'deny' },
      { name: 'api', prefix: '/api', action: 'authenticate', accept: 'bearer',
        require: { scopes_by_method: { GET: ['read'], HEAD: ['read'], POST: ['write'] } } },
    ],
  },
});

// The metrics contract: every family the workload must produce, with the labels each must carry and
// label values the workload certainly produces.
const CONTRACT = [
  ['oauth2_proxy_requests_total', ['code'], { code: ['200', '302', '401', '403', '502', '503', '504'] }],
  ['oauth2_proxy_response_duration_seconds_bucket', ['method', 'le'], { method: ['get'], le: ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'] }],
  ['oauth2_proxy_response_duration_seconds_count', ['method'], { method: ['get', 'post'] }],
  ['portcullis_response_duration_microseconds_sum', ['method'], { method: ['get'] }],
  ['oauth2_proxy_requests_in_flight', [], {}],
  ['portcullis_logins_started_total', [], {}],
  ['portcullis_logins_completed_total', [], {}],
  ['portcullis_logins_failed_total', ['reason'], { reason: ['state_mismatch', 'login_cookie_missing', 'token_endpoint_error', 'token_endpoint_unavailable', 'token_endpoint_timeout'] }],
  ['portcullis_sessions_refreshed_total', [], {}],
  ['portcullis_session_refresh_failures_total', [], {}],
  ['portcullis_tokens_verified_total', [], {}],
  ['portcullis_token_cache_hits_total', [], {}],
  ['portcullis_token_cache_misses_total', [], {}],
  ['portcullis_tokens_rejected_total', ['reason'], { reason: ['bearer_wrong_audience', 'bearer_inactive'] }],
  ['portcullis_policy_denials_total', ['rule', 'requirement'], { rule: ['admin', 'internal', 'api'], requirement: ['groups', 'deny', 'scopes'] }],
  ['portcullis_idp_requests_total', ['endpoint', 'outcome'], { endpoint: ['discovery', 'jwks', 'token', 'refresh', 'userinfo', 'introspection'], outcome: ['ok', 'error', 'timeout', 'unavailable'] }],
  ['portcullis_idp_request_duration_seconds_bucket', ['endpoint', 'le'], { endpoint: ['token', 'jwks'], le: ['0.005', '1', '2.5', '+Inf'] }],
  ['portcullis_idp_request_duration_seconds_count', ['endpoint'], { endpoint: ['token'] }],
  ['portcullis_keyset_refreshes_total', ['outcome'], { outcome: ['ok', 'failed'] }],
  ['portcullis_decisions_total', ['reason'], {}],
];
const LABELS = ['code', 'method', 'le', 'reason', 'rule', 'requirement', 'endpoint', 'outcome'];

// ----- helpers ---------------------------------------------------------------------------------------


/** Prometheus on a free port, scraping `admin` (Envoy's admin address) and loading the shipped rules. */
async function startPrometheus(adminHostPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-prometheus-'));
  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(RULES)}`,
    'scrape_configs:',
    `  - job_name: ${JOB}`,
    '    metrics_path: /stats/prometheus',
    '    static_configs:',
    `      - targets: [${JSON.stringify(adminHostPort)}]`,
    '',
  ].join('\n'));
  const log = path.join(ROOT, 'target/e2e/prometheus.log');
  const out = fs.openSync(log, 'w');
  const child = spawn(PROMETHEUS, [
    `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h',
  ], { stdio: ['ignore', out, out] });
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  const url = `http://127.0.0.1:${port}`;
  const read = () => fs.readFileSync(log, 'utf8');
  await until('Prometheus to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`Prometheus exited: ${read().slice(-2000)}`);
    return (await get(`${url}/-/ready`)).status === 200;
  }, 30000, 100);
  const apiGet = async (p, params = {}) => {
    const r = await get(`${url}${p}?${new URLSearchParams(params)}`);
    try { return JSON.parse(r.body); } catch { return { status: 'error', error: `HTTP ${r.status}: ${r.body.slice(0, 300)}` }; }
  };
  return {
    url, dir, read, child,
    api: apiGet,
    /** An instant query: {error} or {series: [{metric, value}]} (value a number, NaN included). */
    async query(expr, time) {
      const j = await apiGet('/api/v1/query', { query: expr, ...(time ? { time: String(time) } : {}) });
      if (j.status !== 'success') return { error: `${j.errorType || 'error'}: ${j.error}` };
      const r = j.data.result;
      if (j.data.resultType === 'scalar') return { series: [{ metric: {}, value: Number(r[1]) }] };
      if (j.data.resultType !== 'vector') return { error: `result type ${j.data.resultType}` };
      return { series: r.map((s) => ({ metric: s.metric, value: Number(s.value[1]) })) };
    },
    stop() { kill(); try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* busy */ } },
  };
}

/**
 * Whether `expr` returns data at `time`: an error, or no series, or (unless `zeroOk`) no series with a
 * finite non-zero value is a failure. Resolves to {ok, why, series}.
 */
async function returnsData(prom, expr, time, { zeroOk = false } = {}) {
  const r = await prom.query(expr, time);
  if (r.error) return { ok: false, why: r.error, series: [] };
  if (r.series.length === 0) return { ok: false, why: 'no series', series: [] };
  if (!zeroOk && !r.series.some((s) => Number.isFinite(s.value) && s.value !== 0)) {
    return { ok: false, why: `no series with a non-zero value: ${JSON.stringify(r.series.slice(0, 5))}`, series: r.series };
  }
  return { ok: true, why: '', series: r.series };
}

/** Every panel of a dashboard (rows' collapsed panels included), rows themselves left out. */
function dashboardPanels(dash) {
  const out = [];
  const walk = (panels) => {
    for (const p of panels || []) {
      if (p.type === 'row') walk(p.panels);
      else out.push(p);
    }
  };
  walk(dash.panels);
  return out;
}

/** Grafana's regex escaping of a single variable value in a Prometheus query (inside "..."). */
const promRegexEscape = (v) => v.replace(/[\\^$*+?.()|{}[\]]/g, '\\\\$&');

/**
 * Grafana's interpolation, as far as the dashboard uses it: the built-in intervals, and each template
 * variable (`$name`, `${name}`, `[[name]]`) as its regex-escaped value. Anything `$…` left over fails.
 */
function interpolate(expr, vars) {
  const builtins = { __rate_interval: RATE_INTERVAL, __interval: '15s', __range: '1h', __interval_ms: '15000', __range_s: '3600' };
  const all = { ...builtins, ...vars };
  const value = (name, raw) => {
    if (!Object.hasOwn(all, name)) throw new Error(`unknown variable $${name} in ${expr}`);
    return raw || name.startsWith('__') ? all[name] : promRegexEscape(all[name]);
  };
  const out = expr
    .replace(/\$\{(\w+)(?::(\w+))?\}/g, (_, n, fmt) => value(n, fmt === 'raw'))
    .replace(/\[\[(\w+)\]\]/g, (_, n) => value(n))
    .replace(/\$(\w+)/g, (_, n) => value(n));
  if (out.includes('$')) throw new Error(`uninterpolated variable in ${out}`);
  return out;
}

/** label_values(selector, label) / label_values(label) through Prometheus' label API. */
async function labelValues(prom, query, vars) {
  const m = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec(query.trim());
  if (!m) throw new Error(`unsupported variable query ${query}`);
  const [, selector, label] = m;
  const params = selector ? { 'match[]': interpolate(selector, vars) } : {};
  const j = await prom.api(`/api/v1/label/${label}/values`, params);
  if (j.status !== 'success') throw new Error(`${query}: ${j.error}`);
  return j.data;
}

/** Envoy's Prometheus exposition, parsed: [{name, labels, value}]. */
async function exposition(s) {
  const text = (await get(`${s.admin}/stats/prometheus`)).body;
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { text, samples };
}

const sum = (samples, name, where = () => true) => samples.filter((x) => x.name === name && where(x.labels)).reduce((a, x) => a + x.value, 0);

// ----- the workload ----------------------------------------------------------------------------------


const served = async (s, p, mode) => ((await s.idpStats()).served[p] || {})[mode] || 0;

/** Polls Envoy's in-flight gauge while `work` runs: its result, and the largest value seen. */
async function maxInFlightDuring(s, work) {
  let max = 0;
  let done = false;
  const poll = (async () => {
    while (!done) {
      try { max = Math.max(max, sum((await exposition(s)).samples, 'oauth2_proxy_requests_in_flight')); } catch { /* next time */ }
      await sleep(100);
    }
  })();
  try {
    const result = await work();
    return { result, max };
  } finally {
    done = true;
    await poll;
  }
}

/** Splits a PromQL expression at its top-level `and`s. */
function topLevelAnd(expr) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i += 1) {
    const c = expr[i];
    if (c === '(' || c === '{' || c === '[') depth += 1;
    else if (c === ')' || c === '}' || c === ']') depth -= 1;
    else if (depth === 0 && /\sand\s/.test(expr.slice(i - 1, i + 4))) {
      parts.push(expr.slice(start, i - 1));
      start = i + 3;
    }
  }
  parts.push(expr.slice(start));
  return parts.map((p) => {
    let t = p.trim();
    while (t.startsWith('(') && t.endsWith(')') && topLevelAnd.balanced(t.slice(1, -1))) t = t.slice(1, -1).trim();
    return t;
  });
}
topLevelAnd.balanced = (t) => {
  let d = 0;
  for (const c of t) { if (c === '(') d += 1; else if (c === ')') { d -= 1; if (d < 0) return false; } }
  return d === 0;
};

/**
 * One round of the workload (see the header). `carry`: two sessions signed in by the previous round (or
 * the prologue) and when. Returns the sessions for the next round and what it saw.
 */
async function round(s, name, carry) {
  const seen = { statuses: {}, inFlightMax: 0 };
  const note = (r) => { seen.statuses[r.status] = (seen.statuses[r.status] || 0) + 1; return r; };
  // The JWKS fails from now until two scheduled (or retried) refreshes have met the fault.
  const jwks0 = await served(s, JWKS, 'status500');
  await s.fault(JWKS, 'status500');

  // Logins that complete; the first two are the next round's refreshes.
  const next = { ok: await signIn(s, `refresh-ok-${name}`), fail: await signIn(s, `refresh-fail-${name}`), at: Date.now() };
  const alice = await signIn(s, 'alice');
  const bob = await signIn(s, 'bob');
  await signIn(s, `user-${name}`);

  // A callback whose state differs from the login cookie's, and one without its login cookie.
  {
    const { jar, callback } = await toCallback(s, 'mallory');
    const u = new URL(callback);
    const state = u.searchParams.get('state');
    u.searchParams.set('state', `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`);
    const r = note(await get(u.toString(), { headers: nav, jar }));
    assert.ok(r.status >= 400 && r.status < 500, `wrong state: ${r.status} ${r.body.slice(0, 200)}`);
    const { callback: cb2 } = await toCallback(s, 'mallory');
    const r2 = note(await get(cb2, { headers: nav }));
    assert.ok(r2.status >= 400 && r2.status < 500, `no login cookie: ${r2.status} ${r2.body.slice(0, 200)}`);
  }

  // 401s: API calls without a session; a bearer route without a token.
  for (const p of ['/reports', '/settings']) assert.equal(note(await get(`${s.app}${p}`, { headers: api })).status, 401);
  assert.equal(note(await get(`${s.app}/api/items`, { headers: api })).status, 401);

  // 403s: a group rule, a deny rule.
  assert.equal(note(await get(`${s.app}/admin/users`, { headers: api, jar: bob })).status, 403);
  assert.equal(note(await get(`${s.app}/admin/users`, { headers: api, jar: alice })).status, 200);
  assert.equal(note(await get(`${s.app}/internal/x`, { headers: api, jar: alice })).status, 403);

  // Bearer tokens: accepted (a miss, then a cache hit), introspected, short of a scope, rejected.
  const read = await serviceToken(s);
  assert.equal(note(await get(`${s.app}/api/items`, { headers: bearer(read) })).status, 200);
  assert.equal(note(await get(`${s.app}/api/items?again`, { headers: bearer(read) })).status, 200);
  const opaque = await serviceToken(s, { resource: 'api://opaque', scope: 'read' });
  assert.equal(note(await get(`${s.app}/api/items`, { headers: bearer(opaque) })).status, 200);
  assert.equal(note(await request('POST', `${s.app}/api/items`, { headers: bearer(read), body: '{}' })).status, 403);
  const other = await serviceToken(s, { resource: 'api://other' });
  assert.equal(note(await get(`${s.app}/api/items`, { headers: bearer(other) })).status, 401);
  assert.equal(note(await get(`${s.app}/api/items`, { headers: bearer(`unknown-${name}`) })).status, 401);
  assert.equal(note(await get(`${s.app}/api/items`, { headers: bearer('eyJ.eyJ.sig') })).status, 401);

  // Session refreshes: the access tokens of the carried sessions are past 3/4 of their 8 s.
  await sleep(Math.max(0, carry.at + 7000 - Date.now()));
  const refreshed = note(await get(`${s.app}/home`, { headers: api, jar: carry.ok }));
  assert.equal(refreshed.status, 200, refreshed.body.slice(0, 200));
  await s.fault(TOKEN, 'status500', 1);
  const t0 = await served(s, TOKEN, 'status500');
  note(await get(`${s.app}/home`, { headers: api, jar: carry.fail })); // the old token while it lasts, or 401
  assert.equal(await served(s, TOKEN, 'status500'), t0 + 1, 'the refresh met the failing token endpoint');

  // IdP faults on the callback's token exchange.
  const faults = [
    ['status500', 502], ['status500', 502], ['status503', 503], ['status503', 503], ['status503', 503],
    ['refuse', 503], ['refuse', 503], ['hang', 504], ['slow', 302],
  ];
  for (const [mode, status] of faults) {
    const { jar, callback } = await toCallback(s, `faulty-${mode}`);
    await s.fault(TOKEN, mode, 1, mode === 'slow' ? { delay_ms: 1500 } : {});
    const t = Date.now();
    const { result: r, max } = await maxInFlightDuring(s, () => get(callback, { headers: nav, jar }));
    note(r);
    assert.equal(r.status, status, `token endpoint ${mode}: ${r.status} ${r.body.slice(0, 200)}`);
    if (mode === 'hang' || mode === 'slow') {
      assert.ok(Date.now() - t > 1000, `${mode} took ${Date.now() - t} ms`);
      seen.inFlightMax = Math.max(seen.inFlightMax, max);
    }
  }

  // Wait for two failed key-set refreshes, then let the JWKS work again.
  await until('two JWKS refreshes failed', async () => (await served(s, JWKS, 'status500')) >= jwks0 + 2, 30000, 250);
  await s.clearFaults();
  return { next, seen };
}

// ----- the test --------------------------------------------------------------------------------------

describe('Prometheus scrapes Envoy: the dashboard, the rules and the metrics contract', () => {
  let s;
  let prom;
  let evalAt; // the instant (seconds) every query is evaluated at: just after the second round
  let inFlightMax = 0;
  const t0 = Date.now();

  before(async () => {
    for (const [bin, what] of [[PROMETHEUS, 'prometheus'], [PROMTOOL, 'promtool']]) {
      if (!fs.existsSync(bin)) throw new Error(`${what} not found at ${bin}: run \`scripts/setup.sh prometheus\` (Debian's prometheus package)`);
    }
    s = await startStack({ name: 'prometheus', faults: true, plugin });
    prom = await startPrometheus(new URL(s.admin).host);
  });
  after(() => { prom?.stop(); s?.stop(); });

  it('Prometheus scrapes Envoy\'s /stats/prometheus and loads every shipped rule', { timeout: 60000 }, async () => {
    await until('the Envoy target to be up', async () => {
      const j = await prom.api('/api/v1/targets');
      return j.data.activeTargets.some((t) => t.labels.job === JOB && t.health === 'up');
    }, 30000, 250);
    const live = await prom.query(`envoy_server_live{job="${JOB}"}`);
    assert.equal(live.series?.[0]?.value, 1, JSON.stringify(live));
    const groups = (await prom.api('/api/v1/rules')).data.groups;
    assert.deepEqual([...new Set(groups.map((g) => g.file))], [RULES], 'every rule group from the shipped file');
    const loaded = groups.flatMap((g) => g.rules);
    const text = fs.readFileSync(RULES, 'utf8');
    const inFile = (text.match(/^\s*- (alert|record):/gm) || []).length;
    assert.ok(inFile >= 2, 'rules in the file');
    assert.equal(loaded.length, inFile, `Prometheus loaded ${loaded.length} of the ${inFile} rules in ${RULES}`);
  });

  it('the scripted workload (two rounds)', { timeout: 240000 }, async () => {
    // Prologue: two sessions whose refreshes the first round exercises.
    const first = { ok: await signIn(s, 'refresh-ok-0'), fail: await signIn(s, 'refresh-fail-0'), at: Date.now() };
    const a = await round(s, 'a', first);
    await sleep(3000); // round a's counts are flushed (1-s tick) and scraped before round b moves them
    const b = await round(s, 'b', a.next);
    inFlightMax = Math.max(a.seen.inFlightMax, b.seen.inFlightMax);
    console.log(`# round b statuses: ${JSON.stringify(b.seen.statuses)}`);
    await sleep(3500); // the last counts reach Envoy (tick) and Prometheus (scrape)
    evalAt = Date.now() / 1000;
    console.log(`# workload done ${((Date.now() - t0) / 1000).toFixed(1)} s after the start`);
  });

  it('Envoy exports the contract\'s exact names and labels', async () => {
    assert.ok(evalAt, 'the workload ran');
    const { text, samples } = await exposition(s);
    fs.writeFileSync(path.join(ROOT, 'target/e2e/prometheus-exposition.txt'), text);
    const problems = [];
    for (const [family, labels, values] of CONTRACT) {
      const got = samples.filter((x) => x.name === family);
      if (got.length === 0) { problems.push(`${family}: missing`); continue; }
      for (const x of got) {
        const keys = Object.keys(x.labels).sort();
        if (keys.join() !== [...labels].sort().join()) problems.push(`${family}: labels {${keys}} (want {${labels}})`);
      }
      for (const [label, want] of Object.entries(values)) {
        const have = new Set(got.map((x) => x.labels[label]));
        const missing = want.filter((v) => !have.has(v));
        if (missing.length) problems.push(`${family}: no ${label}=${missing.join('|')} (have ${[...have].join('|')})`);
      }
    }
    // A label segment left in a name means a stats_tags regex did not match it.
    const families = new Set(CONTRACT.map((c) => c[0]));
    const leftovers = [...new Set(samples.map((x) => x.name))].filter((n) => /^(oauth2_proxy|portcullis)_/.test(n)
      && [...families].some((f) => n.startsWith(`${f}_`)) && LABELS.some((l) => n.includes(`_${l}_`)));
    if (leftovers.length) problems.push(`names with an untagged label: ${leftovers.slice(0, 10).join(', ')}`);
    if (/wasmcustom/.test(text)) problems.push('a "wasmcustom" prefix in the exposition');
    assert.deepEqual(problems, [], problems.join('\n'));
    // Exact lines, as oauth2-proxy dashboards expect them.
    assert.match(text, /^oauth2_proxy_requests_total\{code="200"\} [1-9][0-9]*$/m);
    assert.match(text, /^oauth2_proxy_response_duration_seconds_bucket\{(?=[^}]*method="get")(?=[^}]*le="0\.005")[^}]*\} [0-9]+$/m);
    assert.match(text, /^oauth2_proxy_response_duration_seconds_bucket\{(?=[^}]*method="get")(?=[^}]*le="\+Inf")[^}]*\} [1-9][0-9]*$/m);
    assert.match(text, /^# TYPE oauth2_proxy_requests_in_flight gauge$/m);
    assert.match(text, /^oauth2_proxy_requests_in_flight(\{\})? -?[0-9]+$/m);
    // Buckets are cumulative and +Inf equals the count.
    for (const method of ['get', 'post']) {
      const b = (le) => sum(samples, 'oauth2_proxy_response_duration_seconds_bucket', (l) => l.method === method && l.le === le);
      const les = CONTRACT[1][2].le;
      for (let i = 1; i < les.length; i += 1) assert.ok(b(les[i]) >= b(les[i - 1]), `${method}: le=${les[i]} < le=${les[i - 1]}`);
      assert.equal(b('+Inf'), sum(samples, 'oauth2_proxy_response_duration_seconds_count', (l) => l.method === method), `${method}: +Inf = count`);
    }
    // The in-flight gauge moved while a callback waited for the IdP, and is back to 0 at rest.
    assert.ok(inFlightMax >= 1, `oauth2_proxy_requests_in_flight while a request was in flight: max ${inFlightMax}`);
    assert.equal(sum(samples, 'oauth2_proxy_requests_in_flight'), 0, 'nothing in flight at rest');
  });

  it('health checks are not traffic: /ping and /ready leave oauth2_proxy_requests_total alone', async () => {
    const total = async () => sum((await exposition(s)).samples, 'oauth2_proxy_requests_total');
    await sleep(1500);
    const before0 = await total();
    for (let i = 0; i < 5; i += 1) {
      for (const p of ['/ping', '/ready', '/oauth2/ping', '/oauth2/ready']) await get(`${s.app}${p}`);
    }
    // One counted request afterwards: the count must move by exactly that one (so it is live).
    assert.equal((await get(`${s.app}/public/x`, { headers: api })).status, 200);
    await until('the one counted request', async () => (await total()) === before0 + 1, 5000, 100).catch(async (e) => {
      throw new Error(`${e.message}: oauth2_proxy_requests_total went ${before0} -> ${await total()} for 20 health checks and 1 request`);
    });
    await sleep(2500);
    assert.equal(await total(), before0 + 1, 'nothing more counted after two more ticks');
  });

  it('every dashboard panel\'s queries return data', { timeout: 60000 }, async () => {
    assert.ok(evalAt, 'the workload ran');
    const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
    assert.ok(dash.schemaVersion >= 36, `schemaVersion ${dash.schemaVersion}`);
    assert.ok(dash.__inputs?.some((i) => i.name === 'DS_PROMETHEUS' && i.pluginId === 'prometheus'), 'a DS_PROMETHEUS input');
    const vars = {};
    for (const v of dash.templating.list) {
      if (v.type === 'datasource') {
        assert.equal(v.query, 'prometheus');
        continue;
      }
      assert.equal(v.type, 'query', `variable ${v.name}`);
      const q = typeof v.query === 'string' ? v.query : v.query.query;
      const values = await labelValues(prom, q, vars);
      assert.ok(values.length > 0, `variable ${v.name} (${q}) has no values`);
      vars[v.name] = values[0];
    }
    assert.equal(vars.job, JOB);
    const panels = dashboardPanels(dash);
    assert.ok(panels.length >= 10, `${panels.length} panels`);
    const failures = [];
    let n = 0;
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the datasource variable`);
      assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
      for (const t of p.targets) {
        assert.equal(t.datasource?.uid ?? '${datasource}', '${datasource}', `panel "${p.title}" ${t.refId}`);
        assert.ok(t.expr.includes('$__rate_interval') || !/\brate\(|increase\(/.test(t.expr), `panel "${p.title}" ${t.refId}: rate windows use $__rate_interval`);
        const expr = interpolate(t.expr, vars);
        // A gauge at rest is 0: its panel needs series, not a non-zero value.
        const zeroOk = /in_flight/.test(expr) && !/rate\(/.test(expr);
        const r = await returnsData(prom, expr, evalAt, { zeroOk });
        n += 1;
        if (!r.ok) failures.push(`"${p.title}" ${t.refId}: ${r.why}\n    ${expr}`);
      }
    }
    console.log(`# ${n} panel queries over ${panels.length} panels checked`);
    assert.deepEqual(failures, [], `panel queries without data:\n${failures.join('\n')}`);
    // The families of the contract each appear in some panel.
    const exprs = panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    const missing = CONTRACT.map((c) => c[0]).filter((f) => !exprs.includes(f.replace(/_(bucket|count)$/, '')) && f !== 'portcullis_response_duration_microseconds_sum');
    assert.deepEqual(missing, [], 'families without a panel');
  });

  it('promtool check rules passes on the shipped rules (and the example config checks)', () => {
    const r = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool check rules ${RULES}:\n${r.stdout}${r.stderr}`);
    const c = spawnSync(PROMTOOL, ['check', 'config', EXAMPLE_CONFIG], { encoding: 'utf8', cwd: path.dirname(EXAMPLE_CONFIG) });
    assert.equal(c.status, 0, `promtool check config ${EXAMPLE_CONFIG}:\n${c.stdout}${c.stderr}`);
    // And it would fail on a broken file.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-rules-'));
    try {
      const bad = path.join(dir, 'bad.yaml');
      fs.writeFileSync(bad, 'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m])\n');
      assert.notEqual(spawnSync(PROMTOOL, ['check', 'rules', bad], { encoding: 'utf8' }).status, 0, 'promtool refuses a broken rule');
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });

  it('every alert and recording rule returns data, every alert is pending or firing', { timeout: 60000 }, async () => {
    assert.ok(evalAt, 'the workload ran');
    const groups = (await prom.api('/api/v1/rules')).data.groups;
    const rules = groups.flatMap((g) => g.rules);
    const failures = [];
    for (const rule of rules) {
      if (rule.health !== 'ok') failures.push(`${rule.name}: health ${rule.health} ${rule.lastError || ''}`);
      const r = await returnsData(prom, rule.query, evalAt);
      if (!r.ok) failures.push(`${rule.type} ${rule.name}: ${r.why}\n    ${rule.query}`);
      // The margin: each comparison's left side against its threshold.
      if (rule.type === 'alerting') {
        for (const part of topLevelAnd(rule.query)) {
          const cmp = /^([\s\S]*\S)\s*(>=?)\s*([0-9.e+-]+)$/.exec(part);
          if (!cmp) continue;
          const v = await prom.query(cmp[1], evalAt);
          const values = (v.series || []).map((x) => `${Object.entries(x.metric).filter(([k]) => !['job', 'instance'].includes(k)).map(([k, val]) => `${k}=${val}`).join(',') || 'value'} ${x.value.toPrecision(3)}`);
          console.log(`# ${rule.name}: ${values.join('; ') || v.error || 'none'} (alerts at ${cmp[2]} ${cmp[3]})`);
        }
      }
    }
    // The recorded series exists as its own metric, equal to the microseconds / 1e6.
    const rec = await prom.query('oauth2_proxy_response_duration_seconds_sum', evalAt);
    const raw = await prom.query('portcullis_response_duration_microseconds_sum', evalAt);
    if (!rec.series?.length) failures.push('recorded oauth2_proxy_response_duration_seconds_sum: no series');
    else {
      const us = Object.fromEntries(raw.series.map((x) => [x.metric.method, x.value]));
      for (const x of rec.series) {
        if (Math.abs(x.value - us[x.metric.method] / 1e6) > 0.05 * Math.max(1, x.value)) failures.push(`recorded sum ${x.metric.method}: ${x.value} vs ${us[x.metric.method]} us`);
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));
    // Prometheus's own evaluation: every alert active (pending until its `for:` has passed).
    await sleep(1500);
    const active = (await prom.api('/api/v1/alerts')).data.alerts;
    const names = rules.filter((r) => r.type === 'alerting').map((r) => r.name);
    const state = Object.fromEntries(names.map((n) => [n, active.filter((a) => a.labels.alertname === n).map((a) => a.state)]));
    console.log(`# alert states: ${JSON.stringify(state)}`);
    const inactive = names.filter((n) => !state[n].some((st) => st === 'pending' || st === 'firing'));
    assert.deepEqual(inactive, [], 'alerts Prometheus does not hold active');
  });

  it('the checks can fail: a metric that does not exist, a renamed metric, an unreached threshold, bad PromQL', async () => {
    assert.ok(evalAt, 'the workload ran');
    const none = await returnsData(prom, `sum by (reason) (rate(portcullis_no_such_metric_total[${RATE_INTERVAL}]))`, evalAt);
    assert.equal(none.ok, false);
    assert.equal(none.why, 'no series');
    // A dashboard query with one metric name misspelt.
    const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
    const t = dashboardPanels(dash).flatMap((p) => p.targets).find((x) => x.expr.includes('portcullis_logins_failed_total'));
    const renamed = interpolate(t.expr.replace('portcullis_logins_failed_total', 'portcullis_login_failures_total'), { job: JOB, instance: new URL(s.admin).host });
    assert.equal((await returnsData(prom, renamed, evalAt)).ok, false, renamed);
    // The 5xx-share alert with a threshold no ratio reaches.
    const rules = (await prom.api('/api/v1/rules')).data.groups.flatMap((g) => g.rules);
    const high = rules.find((r) => r.name === 'PortcullisHighErrorRate');
    assert.ok(high && /> 0\.05$/.test(high.query), high?.query);
    assert.equal((await returnsData(prom, high.query.replace(/> 0\.05$/, '> 1'), evalAt)).ok, false);
    // A query error is a failure, not an empty result.
    const bad = await returnsData(prom, 'sum(rate(oauth2_proxy_requests_total[1m])', evalAt);
    assert.equal(bad.ok, false);
    assert.match(bad.why, /parse|bad_data/i);
    console.log(`# total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
