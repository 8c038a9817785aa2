// Operating it, through real Envoy and oidc-provider: health checks where oauth2-proxy users look for
// them (answered before authentication, readiness following the provider's keys, never counted as
// traffic) and the decision log (one line per decision that is not a routine pass, JSON on request,
// never a code, a state or a cookie). The Prometheus side is tests/e2e/prometheus.test.mjs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { get, idpLogin, Jar } from '../lib/http.mjs';
import { sleep, startStack } from '../lib/stack.mjs';

const nav = { accept: 'text/html' };
const api = { accept: 'application/json' };

/** Everything is denied unless a rule says otherwise: the health checks must still answer. */
const plugin = {
  log: { format: 'json' },
  routes: {
    rules: [
      { name: 'admin', prefix: '/admin', action: 'authenticate', require: { groups: ['admins'] } },
      { name: 'app', prefix: '/app', action: 'authenticate' },
    ],
    default: { action: 'deny' },
  },
};


async function counter(s, re) {
  const body = (await get(`${s.admin}/stats/prometheus`)).body;
  return body.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/** The filter's log lines that are JSON objects. */
function jsonLines(s) {
  return s.envoy.read().split('\n')
    .map((l) => l.match(/wasm log [^:]*: (\{.*\})$/))
    .filter(Boolean)
    .map((m) => JSON.parse(m[1]));
}

describe('health checks', () => {
  let s;
  before(async () => {
    // Discovery refused at first: the provider cannot load.
    s = await startStack({ plugin, name: 'ops-health', faults: [{ path: '/.well-known/openid-configuration', mode: 'refuse' }], waitReady: false });
  });
  after(() => s?.stop());

  it('/ping answers at once and /ready says 503 until the keys load, then 200, on every worker', async () => {
    for (let i = 0; i < 8; i += 1) {
      for (const p of ['/ping', '/oauth2/ping']) {
        const r = await get(`${s.app}${p}`);
        assert.equal(r.status, 200, p);
        assert.equal(r.body, 'OK');
      }
      for (const p of ['/ready', '/oauth2/ready']) {
        const r = await get(`${s.app}${p}`);
        assert.equal(r.status, 503, `${p} before the provider loaded`);
      }
    }
    await s.clearFaults();
    let ready = 0;
    for (let i = 0; i < 100 && ready < 8; i += 1) {
      const r = await get(`${s.app}/ready`);
      ready = r.status === 200 ? ready + 1 : 0;
      if (r.status !== 200) await sleep(100);
    }
    assert.equal(ready, 8, 'eight readiness checks in a row answered 200 once discovery came back');
  });

  it('answers before authentication: the default rule denies everything else', async () => {
    assert.equal((await get(`${s.app}/ping`, { headers: api })).status, 200);
    assert.equal((await get(`${s.app}/elsewhere`, { headers: api })).status, 403);
    // Exact paths only.
    assert.equal((await get(`${s.app}/ping/x`, { headers: api })).status, 403);
  });

  it('is never counted as traffic', async () => {
    await sleep(1500); // the tick that exports what came before
    const total = /^oauth2_proxy_requests_total\{/;
    const inf = /^oauth2_proxy_response_duration_seconds_bucket\{.*le="\+Inf"/;
    const before0 = [await counter(s, total), await counter(s, inf)];
    for (let i = 0; i < 20; i += 1) {
      await get(`${s.app}${['/ping', '/ready', '/oauth2/ping', '/oauth2/ready'][i % 4]}`);
    }
    await sleep(1500);
    assert.deepEqual([await counter(s, total), await counter(s, inf)], before0, 'health checks left the request metrics alone');
    // The control: one ordinary request moves both.
    await get(`${s.app}/elsewhere`, { headers: api });
    await sleep(1500);
    assert.deepEqual([await counter(s, total), await counter(s, inf)], before0.map((n) => n + 1));
    assert.equal(await counter(s, /^portcullis_decisions_total\{reason="(ping|ready|not_ready)"/), 0);
  });
});

describe('metrics.upstream_status', () => {
  // The echo app answers a forwarded request; our own replies (403 here) are counted by their code
  // either way. With the option off the forwarded response's status is never read (one host call
  // saved per request) and the request counts as code="upstream".
  for (const off of [false, true]) {
    it(off ? 'off: forwarded requests count as code="upstream", our 403s as 403' : 'on (default): forwarded requests count by the upstream\'s code', async () => {
      const s = await startStack({
        plugin: { ...plugin, public_paths: ['/public/*'], ...(off ? { metrics: { upstream_status: false } } : {}) },
        name: `ops-status-${off ? 'off' : 'on'}`,
      });
      try {
        for (let i = 0; i < 3; i += 1) assert.equal((await get(`${s.app}/public/x`)).status, 200);
        assert.equal((await get(`${s.app}/elsewhere`, { headers: api })).status, 403);
        await sleep(1500); // the tick that exports the counts
        const code = async (c) => counter(s, new RegExp(`^oauth2_proxy_requests_total\\{code="${c}"\\}`));
        assert.equal(await code('200'), off ? 0 : 3);
        assert.equal(await code('upstream'), off ? 3 : 0);
        assert.equal(await code('403'), 1);
      } finally {
        s.stop();
      }
    });
  }
});

describe('the decision log', () => {
  let s;
  before(async () => { s = await startStack({ plugin, name: 'ops-log' }); });
  after(() => s?.stop());

  it('one JSON line per decision that is not a routine pass, naming rule, user and latency', async () => {
    const jar = new Jar();
    const start = await get(`${s.app}/app/home`, { headers: nav, jar });
    assert.equal(start.status, 302);
    const back = await idpLogin(start.headers.location, 'bob');
    const done = await get(back, { headers: nav, jar });
    assert.equal(done.status, 302, done.body);
    const session = jar.cookies.get('_portcullis') ?? [...jar.cookies.values()][0];
    assert.ok(session, 'a session cookie');
    const before0 = jsonLines(s).length;
    const ok = await get(`${s.app}/app/home?token=not-logged`, { headers: nav, jar });
    assert.equal(ok.status, 200);
    const denied = await get(`${s.app}/admin/users?code=c0de-not-logged&state=st4te-not-logged`, { headers: api, jar });
    assert.equal(denied.status, 403);
    let lines = [];
    for (let i = 0; i < 20 && lines.length === 0; i += 1) {
      lines = jsonLines(s).slice(before0);
      if (lines.length === 0) await sleep(100);
    }
    assert.equal(lines.length, 1, `only the denial logs, not the routine pass: ${JSON.stringify(lines)}`);
    const [l] = lines;
    assert.deepEqual({ ...l, latency_ms: typeof l.latency_ms },
      { status: 403, reason: 'forbidden_group', method: 'GET', path: '/admin/users', rule: 'admin', user: 'bob', latency_ms: 'number' });
    // The login before it logged its start, its callback and completion as information.
    const all = jsonLines(s);
    assert.ok(all.some((x) => x.reason === 'login_started' && x.path === '/app/home'), JSON.stringify(all));
    assert.ok(all.some((x) => x.reason === 'login_completed' && x.path === '/oauth2/callback' && x.status === 302));
    const log = s.envoy.read();
    for (const secret of ['c0de-not-logged', 'st4te-not-logged', 'not-logged', String(session).slice(0, 40)]) {
      assert.ok(!log.includes(secret), `the log holds ${secret}`);
    }
    // The callback's own code and state never reach the log either.
    const q = new URL(back, s.app).searchParams;
    assert.ok(!log.includes(q.get('code')) && !log.includes(q.get('state')), 'callback code/state in the log');
  });
});
