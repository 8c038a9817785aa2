// A broken IdP, end to end: the fault-injecting proxy (tests/idp/faults.mjs) sits between Envoy's `idp`
// cluster and the real oidc-provider, and refuses, stalls, errors or garbles the token endpoint, discovery
// and the JWKS. The browser still talks to oidc-provider directly (the issuer is its own URL).
//
// What must hold, whatever the IdP does: a failed callback answers the right status and code, sets no
// session, logs `<status> <code> GET /oauth2/callback`; API clients without a session get 401; signed-in
// users keep being served by every worker; a bad key set never replaces a good one; key rotation costs no
// failed login, and unknown kids cannot make the filter hammer the IdP; the VM survives 10 MB bodies and
// 10,000-key sets; the filter recovers without a restart.
//
//   cd tests && node --test --test-concurrency=1 e2e/idp_faults.test.mjs    (after `just wasm`)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { signIn as assertSignIn, toCallback } from '../lib/flows.mjs';
import { get, idpLogin, Jar } from '../lib/http.mjs';
import { sleep, startStack, until } from '../lib/stack.mjs';

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const api = { accept: 'application/json' };
const xhr = { accept: '*/*', 'x-requested-with': 'XMLHttpRequest' };
const DISCOVERY = '/.well-known/openid-configuration';
const TOKEN = '/token';
const JWKS = '/jwks';

// ----- helpers -------------------------------------------------------------------------------------------


/** One login attempt, for polling: true when it ended with a session. */
async function tryLogin(s, user) {
  try {
    const jar = new Jar();
    const start = await get(`${s.app}/app`, { headers: nav, jar });
    if (start.status !== 302) return false;
    const done = await get(await idpLogin(start.headers.location, user), { headers: nav, jar });
    return done.status === 302 && Boolean(jar.get('_portcullis'));
  } catch { return false; }
}

const setsSession = (r) => r.setCookies.some((c) => /^_portcullis=/.test(c));

/** A failed login answer: status, code in the HTML page or the JSON body, Retry-After, no session. */
function assertFailure(r, { status, codes, browser, retryAfter = false, what = '' }) {
  const ctx = `${what}: got ${r.status} ${String(r.headers['content-type'])} ${r.body.slice(0, 400)}`;
  const allowed = Array.isArray(status) ? status : [status];
  const codeList = Array.isArray(codes) ? codes : [codes];
  assert.ok(allowed.includes(r.status), `expected ${allowed.join('|')} ${codeList.join('|')}; ${ctx}`);
  let code;
  if (browser) {
    assert.match(String(r.headers['content-type']), /^text\/html/, ctx);
    code = codeList.find((c) => r.body.includes(`<code>${c}</code>`) || r.body.includes(c));
  } else {
    assert.match(String(r.headers['content-type']), /^application\/json/, ctx);
    const j = r.json();
    assert.equal(typeof j.message, 'string', ctx);
    code = codeList.includes(j.error) ? j.error : undefined;
  }
  assert.ok(code, `expected code ${codeList.join('|')}; ${ctx}`);
  if (retryAfter) assert.match(String(r.headers['retry-after'] ?? ''), /^[1-9][0-9]*$/, `Retry-After; ${ctx}`);
  assert.ok(!setsSession(r), `no session cookie; ${ctx}`);
  return { status: r.status, code };
}

const envoyLog = (s) => s.envoy.read();
const count = (text, needle) => text.split(needle).length - 1;
async function waitLog(s, needle, ms = 3000) {
  await until(`Envoy log line containing "${needle}"`, () => envoyLog(s).includes(needle), ms, 100);
}

/** Connections accepted so far by each Envoy worker. */
async function perWorkerConnections(s) {
  const stats = (await get(`${s.admin}/stats?filter=downstream_cx_total`)).body;
  return [...stats.matchAll(/worker_(\d+)\.downstream_cx_total: (\d+)/g)].map((m) => Number(m[2]));
}

/**
 * The signed-in user is served (200 from the echo app, identity forwarded) on fresh connections, by both
 * workers: at least `n` requests, more (up to 40) until each worker has taken one.
 */
async function assertSessionServed(s, jar, user, n = 12, what = '') {
  const before0 = await perWorkerConnections(s);
  let perWorker = [];
  for (let i = 0; i < 40; i += 1) {
    const r = await get(`${s.app}/reports?i=${i}`, { jar });
    assert.equal(r.status, 200, `${what} session request ${i}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.equal(r.json().headers['x-forwarded-user'], user, what);
    if (i + 1 < n) continue;
    perWorker = (await perWorkerConnections(s)).map((v, w) => v - before0[w]);
    if (perWorker.length === 2 && perWorker.every((v) => v > 0)) return;
  }
  assert.fail(`${what} both workers should have served the session: ${perWorker}`);
}

/** Requests that are not navigations get 401 and no cookie, whatever the IdP is doing. */
async function assertApi401(s, what = '') {
  for (const headers of [api, xhr, api, xhr]) {
    const r = await get(`${s.app}/api/items`, { headers });
    assert.equal(r.status, 401, `${what} API request (${JSON.stringify(headers)}): ${r.status} ${r.body.slice(0, 300)}`);
    assert.equal(r.setCookies.length, 0, `${what} no cookie for API clients`);
  }
}

const served = async (s, path, mode) => ((await s.idpStats()).served[path] || {})[mode] || 0;
const fetches = async (s, path) => (await s.idpStats()).counts[path] || 0;

/** Waits until the proxy has answered `path` with `mode` `n` times (e.g. a scheduled JWKS load). */
async function waitServed(s, path, mode, n = 1, ms = 30000) {
  await until(`${n} ${path} answered with ${mode}`, async () => (await served(s, path, mode)) >= n, ms, 200);
}

/** Envoy's own heap (tcmalloc) and the resident size of the Envoy process (V8 and wasm memories included). */
async function memory(s) {
  let allocated = NaN;
  try { allocated = Number((await get(`${s.admin}/memory`)).json().allocated); } catch { /* not available */ }
  return { allocated, rss: envoyRss(s.envoy.child.pid) };
}

/** VmRSS of the envoy process: `pid` may be the Python launcher of .venv/bin/envoy, so look at its children. */
function envoyRss(pid, depth = 0) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const name = (status.match(/^Name:\s*(\S+)/m) || [])[1];
    if (name && name.startsWith('envoy')) return Number((status.match(/^VmRSS:\s*(\d+)/m) || [])[1]) * 1024;
    if (depth > 2) return NaN;
    const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const k of kids) { const r = envoyRss(k, depth + 1); if (!Number.isNaN(r)) return r; }
    // exec'd in place: the process is envoy under the launcher's name
    return Number((status.match(/^VmRSS:\s*(\d+)/m) || [])[1]) * 1024;
  } catch { return NaN; }
}

const MB = 1024 * 1024;
const VM_CRASH = /panicked|unreachable|Wasm VM failed|wasm.*(?:crash|trap)/i;

// ----- a running stack with a working IdP, the fault proxy in front ------------------------------------

describe('IdP faults with the provider loaded', () => {
  let s;
  let alice; // a user signed in before anything broke
  let mem0;
  before(async () => {
    s = await startStack({
      name: 'idp-faults',
      faults: true,
      // Callouts time out after 1 s (slow mode answers after 2.5 s); discovery + JWKS reload every 10 s.
      plugin: { provider: { callout_timeout_ms: 1000, refresh_interval_seconds: 10 } },
    });
    alice = await assertSignIn(s, 'alice');
    mem0 = await memory(s);
  });
  after(() => s?.stop());

  it('logins pass through the fault proxy unchanged', async () => {
    const st = await s.idpStats();
    assert.ok((st.counts[DISCOVERY] || 0) >= 2, `discovery fetched through the proxy: ${JSON.stringify(st.counts)}`);
    assert.ok((st.counts[JWKS] || 0) >= 2, `JWKS fetched through the proxy: ${JSON.stringify(st.counts)}`);
    assert.ok((st.counts[TOKEN] || 0) >= 1, `token endpoint called through the proxy: ${JSON.stringify(st.counts)}`);
    await assertSignIn(s, 'bob');
    await assertSessionServed(s, alice, 'alice');
  });

  // The token endpoint misbehaves once, for the callback's exchange.
  const tokenCases = [
    // mode, status, code, Retry-After
    ['slow', 504, 'token_endpoint_timeout', false],
    ['refuse', 503, 'token_endpoint_unavailable', true],
    ['status503', 503, 'token_endpoint_unavailable', true],
    ['status500', 502, 'token_endpoint_error', false],
    ['status400', 502, 'token_endpoint_error', false],
    ['html', 502, 'token_response_invalid', false],
    ['truncated', 502, 'token_response_invalid', false],
    ['wrong_shape', 502, 'token_response_invalid', false],
    ['wrong_shape_array', 502, 'token_response_invalid', false],
    ['wrong_types', 502, 'token_response_invalid', false],
    ['huge', 502, 'token_response_invalid', false],
  ];
  for (const [mode, status, code, retryAfter] of tokenCases) {
    it(`token endpoint ${mode}: ${status} ${code}${retryAfter ? ' + Retry-After' : ''}, no session`, { timeout: 30000 }, async () => {
      for (const browser of [true, false]) {
        const { jar, callback } = await toCallback(s, browser ? 'carol' : 'dave');
        const n0 = await served(s, TOKEN, mode);
        await s.fault(TOKEN, mode, 1);
        const r = await get(callback, { headers: browser ? nav : api, jar });
        assert.equal(await served(s, TOKEN, mode), n0 + 1, 'the exchange went through the fault');
        assertFailure(r, { status, codes: code, browser, retryAfter, what: `${mode} (${browser ? 'browser' : 'API'})` });
        assert.equal(jar.get('_portcullis'), undefined, 'no session in the jar');
      }
      await waitLog(s, `${status} ${code} GET /oauth2/callback`);
      // The IdP is fine again: the next login works.
      await assertSignIn(s, 'erin');
    });
  }

  it('token endpoint resets mid-body: a 5xx token endpoint error, no session', async () => {
    // Not in the status contract: Envoy hands proxy-wasm a reply with no headers at all here (a reset after
    // the response headers), the same as for a lost reply.
    const { jar, callback } = await toCallback(s, 'dora');
    await s.fault(TOKEN, 'reset_mid_body', 1);
    const r = await get(callback, { headers: api, jar });
    assertFailure(r, { status: [502, 503, 504], codes: ['token_endpoint_timeout', 'token_endpoint_unavailable', 'token_endpoint_error', 'token_response_invalid'], browser: false, what: 'reset mid-body' });
  });

  it('JWKS faults at the scheduled refresh: the old keys stay, logins succeed, the failure is logged', { timeout: 150000 }, async () => {
    // Faults in rounds: each failed refresh is retried after 1, 2, 4 s…, so a round of three faults is
    // served within ~4 s of the first; between rounds a good load resets the backoff.
    const rounds = [
      ['jwks_10000', 'jwks_unknown_types', 'huge'],
      ['truncated', 'html', 'jwks_10000_full'],
    ];
    for (const round of rounds) {
      for (const mode of round) {
        const failed0 = count(envoyLog(s), 'provider refresh failed');
        const n0 = await served(s, JWKS, mode);
        await s.fault(JWKS, mode);
        await waitServed(s, JWKS, mode, n0 + 1, 40000);
        await sleep(500); // the VM has parsed (and refused) it
        await until(`a new "provider refresh failed" line after ${mode}`, () => count(envoyLog(s), 'provider refresh failed') > failed0, 3000, 100);
        await assertSignIn(s, `frank-${mode.replace(/_/g, '-')}`);
        await assertSessionServed(s, alice, 'alice', 8, `during JWKS ${mode}:`);
      }
      // A good load (and a reset backoff) before the next round.
      const good0 = await served(s, JWKS, 'pass');
      await s.clearFaults();
      await waitServed(s, JWKS, 'pass', good0 + 1, 40000);
      await sleep(1500);
    }
    // Duplicate kids: the set still holds the signing key, behind decoys with its kid. Whether the filter
    // takes the set or refuses it, a login must still succeed.
    const n0 = await served(s, JWKS, 'jwks_duplicate_kids');
    await s.fault(JWKS, 'jwks_duplicate_kids');
    await waitServed(s, JWKS, 'jwks_duplicate_kids', n0 + 1, 40000);
    await sleep(500);
    for (const u of ['gail', 'gus']) await assertSignIn(s, u);
    await s.clearFaults();
  });

  it('while the whole IdP is broken, sessions are served on both workers and API clients get 401', { timeout: 90000 }, async () => {
    for (const mode of ['refuse', 'slow', 'status500', 'status503', 'html', 'truncated', 'wrong_shape', 'huge', 'jwks_stale']) {
      const d0 = await served(s, DISCOVERY, mode);
      await s.fault('*', mode);
      // For the first two, let a scheduled refresh run into the broken IdP too (one comes every 10 s).
      if (mode === 'refuse' || mode === 'slow') await waitServed(s, DISCOVERY, mode, d0 + 1, 25000);
      // A login attempt hits the broken token endpoint and fails without a session.
      const { jar, callback } = await toCallback(s, 'hank');
      const r = await get(callback, { headers: api, jar });
      assert.ok(r.status >= 400, `${mode}: callback must fail, got ${r.status} ${r.body.slice(0, 200)}`);
      assert.ok(!setsSession(r) && !jar.get('_portcullis'), `${mode}: no session`);
      await assertSessionServed(s, alice, 'alice', 12, `IdP ${mode}:`);
      await assertApi401(s, `IdP ${mode}:`);
      // The provider is loaded: a navigation still starts a login (the authorize URL needs no callout).
      const nav0 = await get(`${s.app}/somewhere`, { headers: nav });
      assert.equal(nav0.status, 302, `${mode}: navigation ${nav0.status} ${nav0.body.slice(0, 200)}`);
    }
    await s.clearFaults();
    await until('a login after the IdP is back', () => tryLogin(s, 'ivan'), 30000, 500);
  });

  it('the VM survives 10 MB bodies and 10,000-key sets, and memory stays bounded', { timeout: 60000 }, async () => {
    // (The earlier tests fed it: /token huge, /jwks huge, jwks_10000, jwks_10000_full, IdP-wide huge.)
    // One more round now, on the token endpoint and discovery.
    const { jar, callback } = await toCallback(s, 'judy');
    await s.fault(TOKEN, 'huge', 1);
    assertFailure(await get(callback, { headers: api, jar }), { status: 502, codes: 'token_response_invalid', browser: false, what: 'huge token response' });
    const d0 = await served(s, DISCOVERY, 'huge');
    await s.fault(DISCOVERY, 'huge');
    await waitServed(s, DISCOVERY, 'huge', d0 + 1, 40000);
    await sleep(500);
    await s.clearFaults();
    for (let i = 0; i < 40; i += 1) {
      const r = await get(`${s.app}/oauth2/ping`);
      assert.equal(r.status, 200, `ping ${i}: ${r.status} ${r.body.slice(0, 200)}`);
    }
    await assertSessionServed(s, alice, 'alice', 12, 'after the big bodies:');
    const log = envoyLog(s);
    const crash = log.split('\n').filter((l) => VM_CRASH.test(l));
    assert.deepEqual(crash, [], 'no VM crash in the Envoy log');
    const mem1 = await memory(s);
    const grew = { allocated: (mem1.allocated - mem0.allocated) / MB, rss: (mem1.rss - mem0.rss) / MB };
    console.log(`# memory: allocated ${(mem0.allocated / MB).toFixed(1)} -> ${(mem1.allocated / MB).toFixed(1)} MB, rss ${(mem0.rss / MB).toFixed(1)} -> ${(mem1.rss / MB).toFixed(1)} MB`);
    if (!Number.isNaN(grew.allocated)) assert.ok(grew.allocated < 200, `Envoy heap grew by ${grew.allocated.toFixed(1)} MB`);
    if (!Number.isNaN(grew.rss)) assert.ok(grew.rss < 300, `Envoy RSS grew by ${grew.rss.toFixed(1)} MB`);
  });
});

describe('the IdP cluster refuses connections (nothing listening)', () => {
  let s;
  before(async () => {
    s = await startStack({ name: 'idp-faults-closed', faults: true, plugin: { provider: { callout_timeout_ms: 1000, refresh_interval_seconds: 10 } } });
  });
  after(() => s?.stop());

  it('callback: 503 token_endpoint_unavailable + Retry-After; sessions served; recovery once it listens again', { timeout: 60000 }, async () => {
    const alice = await assertSignIn(s, 'alice');
    const attempts = [await toCallback(s, 'nina'), await toCallback(s, 'noel')];
    await s.killFaultProxy(); // Envoy's `idp` cluster now points at a closed port
    for (const [i, a] of attempts.entries()) {
      const browser = i === 0;
      const r = await get(a.callback, { headers: browser ? nav : api, jar: a.jar });
      assertFailure(r, { status: 503, codes: 'token_endpoint_unavailable', browser, retryAfter: true, what: `connection refused (${browser ? 'browser' : 'API'})` });
    }
    await waitLog(s, '503 token_endpoint_unavailable GET /oauth2/callback');
    await assertSessionServed(s, alice, 'alice', 12, 'IdP port closed:');
    await assertApi401(s, 'IdP port closed:');
    await s.restartFaultProxy();
    await until('a login once the IdP listens again', () => tryLogin(s, 'olga'), 30000, 500);
  });
});

// ----- the IdP is broken from the start: nothing ever loaded ------------------------------------------

describe('IdP faults before the provider ever loaded', () => {
  let s;
  before(async () => {
    s = await startStack({
      name: 'idp-faults-cold',
      faults: [{ path: DISCOVERY, mode: 'refuse' }],
      waitReady: false,
      plugin: { provider: { callout_timeout_ms: 1000 } },
    });
  });
  after(() => s?.stop());

  async function assertNotReady(what) {
    for (let i = 0; i < 6; i += 1) {
      const browser = await get(`${s.app}/reports`, { headers: nav });
      assertFailure(browser, { status: 503, codes: 'provider_not_ready', browser: true, retryAfter: true, what: `${what} navigation ${i}` });
      const start = await get(`${s.app}/oauth2/start?rd=/x`, { headers: nav });
      assertFailure(start, { status: 503, codes: 'provider_not_ready', browser: true, retryAfter: true, what: `${what} /oauth2/start ${i}` });
    }
    await assertApi401(s, what);
  }

  it('discovery unreachable: navigations get 503 provider_not_ready + Retry-After, API clients 401', { timeout: 30000 }, async () => {
    await until('a refused discovery fetch', async () => (await served(s, DISCOVERY, 'refuse')) >= 2, 15000);
    await assertNotReady('discovery refused:');
  });

  it('discovery fine but the JWKS broken: still 503 provider_not_ready', { timeout: 40000 }, async () => {
    await s.fault(JWKS, 'status500');
    await s.clearFaults(DISCOVERY);
    await waitServed(s, JWKS, 'status500', 1, 30000);
    await sleep(300);
    await assertNotReady('JWKS 500:');
    await waitLog(s, 'provider refresh failed');
  });

  it('recovers without a restart once the IdP is back', { timeout: 60000 }, async () => {
    await s.clearFaults();
    const t0 = Date.now();
    await until('a login after the IdP came back', () => tryLogin(s, 'kim'), 45000, 500);
    console.log(`# first successful login ${((Date.now() - t0) / 1000).toFixed(1)} s after the faults were cleared`);
    await assertSignIn(s, 'kim');
  });
});

// ----- key rotation -----------------------------------------------------------------------------------

/** Starts a stack whose every VM loaded a JWKS without the IdP's signing key (as if the IdP had rotated). */
async function staleStack(name) {
  const s = await startStack({ name, faults: [{ path: JWKS, mode: 'jwks_stale' }] });
  try {
    await everyVmLoadedStale(s);
  } catch (e) {
    s.stop(); // a stack left running would keep this test process alive
    throw e;
  }
  return s;
}

async function everyVmLoadedStale(s) {
  // Every VM that loads the provider (at --concurrency 2: one on the main thread and one per worker) made
  // its first load, and got the stale set.
  await until('every VM loaded the stale key set', async () => {
    const st = await s.idpStats();
    const d = st.counts[DISCOVERY] || 0;
    return d >= 3 && (st.served[JWKS]?.jwks_stale || 0) >= d;
  }, 15000);
  await sleep(500);
}

describe('IdP key rotation', () => {
  it('the first login after a rotation succeeds at once (an unknown kid refetches the JWKS)', { timeout: 60000 }, async () => {
    const s = await staleStack('idp-faults-rotation');
    try {
      await s.clearFaults();
      await s.resetIdpStats();
      const { jar, callback } = await toCallback(s, 'lena');
      const done = await get(callback, { headers: nav, jar });
      const st = await s.idpStats();
      assert.equal(done.status, 302, `first login after the rotation: ${done.status} ${done.body.slice(0, 400)}; IdP saw ${JSON.stringify(st.counts)}`);
      assert.ok(jar.get('_portcullis'), 'session cookie');
      assert.ok((st.counts[JWKS] || 0) >= 1, `the unknown kid made the filter refetch the JWKS: ${JSON.stringify(st.counts)}`);
      assert.equal(st.counts[DISCOVERY] || 0, 0, 'the refetch was on demand, not a scheduled reload');
      const r = await get(`${s.app}/who`, { jar });
      assert.equal(r.json().headers['x-forwarded-user'], 'lena');
    } finally { s.stop(); }
  });

  it('a flood of logins with unknown kids costs at most one JWKS refetch per VM', { timeout: 60000 }, async () => {
    const s = await staleStack('idp-faults-flood');
    try {
      await s.resetIdpStats();
      const attempts = [];
      for (let i = 0; i < 6; i += 1) attempts.push(await toCallback(s, `mallory${i}`));
      // Three one after another, three at once.
      const results = [];
      for (const a of attempts.slice(0, 3)) results.push(await get(a.callback, { headers: api, jar: a.jar }));
      results.push(...await Promise.all(attempts.slice(3).map((a) => get(a.callback, { headers: api, jar: a.jar }))));
      const outcomes = results.map((r, i) => assertFailure(r, {
        status: [403, 502, 504], codes: ['id_token_unknown_kid', 'jwks_unavailable', 'jwks_timeout'], browser: false, what: `login ${i} with an unknown kid`,
      }));
      const st = await s.idpStats();
      const onDemand = (st.counts[JWKS] || 0) - (st.counts[DISCOVERY] || 0);
      console.log(`# flood outcomes: ${outcomes.map((o) => `${o.status} ${o.code}`).join(', ')}; IdP saw ${JSON.stringify(st.counts)}`);
      assert.ok(onDemand <= 4, `at most ~1 on-demand JWKS fetch per VM, saw ${onDemand}: ${JSON.stringify(st.counts)}`);
      for (const a of attempts) assert.equal(a.jar.get('_portcullis'), undefined);
    } finally { s.stop(); }
  });
});
