// Refresh tokens and back-channel logout through real Envoy (2 workers) + the Portcullis filter +
// oidc-provider. The IdP's `portcullis-refresh` client gets 8-second access tokens and refresh tokens
// that rotate on every use (a rotated-away one coming back revokes the grant); its `portcullis` client
// posts logout tokens to /oauth2/backchannel_logout when the IdP session ends.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { get, idpLogin, Jar, request } from '../lib/http.mjs';
import { sleep, startStack } from '../lib/stack.mjs';

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const api = { accept: 'application/json' };

async function signIn(s, user = 'alice', idpJar = new Jar()) {
  const jar = new Jar();
  const start = await get(`${s.app}/app`, { headers: nav, jar });
  assert.equal(start.status, 302);
  const done = await get(await idpLogin(start.headers.location, user, idpJar), { headers: nav, jar });
  assert.equal(done.status, 302, done.body);
  return jar;
}

/** A counter from Envoy's /stats (0 when not defined yet). */
async function counter(s, name) {
  const body = (await get(`${s.admin}/stats?filter=${name}`)).body;
  const m = body.match(new RegExp(`${name}: (\\d+)`));
  return m ? Number(m[1]) : 0;
}

/** Whether the IdP still accepts this access token (its userinfo endpoint). */
async function tokenValid(s, at) {
  const r = await get(`${s.idp}/me`, { headers: { authorization: `Bearer ${at}` } });
  return r.status === 200;
}

describe('refresh tokens', () => {
  let s;
  before(async () => {
    s = await startStack({
      name: 'refresh',
      faults: true,
      plugin: {
        client_id: 'portcullis-refresh',
        client_secret: 'portcullis-refresh-secret',
        scopes: ['openid', 'email', 'profile', 'offline_access'],
        headers: { pass_access_token: true },
      },
    });
  });
  after(() => s?.stop());

  it('renews the forwarded access token before it expires: the app never sees an expired one', async () => {
    const jar = await signIn(s);
    const firstCookie = jar.get('_portcullis');
    const seen = new Map();
    const end = Date.now() + 20000;
    while (Date.now() < end) {
      const r = await get(`${s.app}/app`, { jar, headers: api });
      assert.equal(r.status, 200, r.body.slice(0, 200));
      const at = r.json().headers['x-forwarded-access-token'];
      assert.ok(at, 'the access token is forwarded');
      if (!seen.has(at)) {
        seen.set(at, Date.now());
        assert.ok(await tokenValid(s, at), `forwarded a token the IdP no longer accepts (${seen.size})`);
      }
      await sleep(400);
    }
    // 8-second tokens over 20 seconds: renewed at least twice, each time with the rotated refresh token.
    assert.ok(seen.size >= 3, `${seen.size} distinct tokens`);
    assert.notEqual(jar.get('_portcullis'), firstCookie, 'the renewed session was sealed into a new cookie');
    assert.ok(await counter(s, 'portcullis_sessions_refreshed_total') >= 2);
  });

  it('a burst after expiry refreshes once across both workers and keeps the grant alive', async () => {
    const jar = await signIn(s);
    await sleep(9000); // past the 8-second token
    const before = await counter(s, 'portcullis_sessions_refreshed_total');
    const burst = await Promise.all(Array.from({ length: 12 }, () => get(`${s.app}/app`, { jar: new Jar(), headers: { ...api, cookie: jar.header() } })));
    const tokens = new Set();
    for (const r of burst) {
      assert.equal(r.status, 200, r.body.slice(0, 200));
      tokens.add(r.json().headers['x-forwarded-access-token']);
    }
    assert.equal(tokens.size, 1, `one new token for the whole burst: ${tokens.size}`);
    const [at] = tokens;
    assert.ok(await tokenValid(s, at), 'the new token works at the IdP');
    // Let Envoy flush its counters (1 s tick), then: exactly one refresh for the burst.
    await sleep(1500);
    assert.equal(await counter(s, 'portcullis_sessions_refreshed_total') - before, 1);
    // The grant survived (no refresh token was presented twice): the next renewal works too.
    for (const r of burst) jar.apply(r.setCookies);
    await sleep(9000);
    const again = await get(`${s.app}/app`, { jar, headers: api });
    assert.equal(again.status, 200);
    const next = again.json().headers['x-forwarded-access-token'];
    assert.notEqual(next, at);
    assert.ok(await tokenValid(s, next));
  });

  it('a refresh the IdP refuses means 401 for APIs and a fresh login for navigations', async () => {
    const jar = await signIn(s);
    assert.equal((await get(`${s.app}/app`, { jar, headers: api })).status, 200);
    // The token endpoint now refuses (the fault proxy answers 400 in oidc-provider's place).
    await s.fault('/token', 'status400');
    try {
      await sleep(9000);
      const r = await get(`${s.app}/app`, { jar, headers: api });
      assert.equal(r.status, 401, r.body.slice(0, 200));
      const again = await get(`${s.app}/app`, { jar, headers: nav });
      assert.equal(again.status, 302);
      assert.ok(again.headers.location.startsWith('/oauth2/start?rd='), again.headers.location);
    } finally {
      await s.clearFaults();
    }
  });
});

describe('back-channel logout', () => {
  let s;
  before(async () => { s = await startStack({ name: 'backchannel' }); });
  after(() => s?.stop());

  it('the IdP ends its session: within a tick every worker stops accepting the session', async () => {
    const idpJar = new Jar();
    const jar = await signIn(s, 'alice', idpJar);
    const other = await signIn(s, 'bob');
    for (let i = 0; i < 6; i += 1) assert.equal((await get(`${s.app}/app`, { jar, headers: api })).status, 200);
    // Sign out at the IdP directly (not through the app): its confirm form, as a browser would.
    const page = await get(`${s.idp}/session/end`, { jar: idpJar });
    assert.equal(page.status, 200, page.body.slice(0, 200));
    const xsrf = page.body.match(/name="xsrf" value="([^"]+)"/)[1];
    const action = page.body.match(/<form[^>]*action="([^"]+)"/)[1];
    const done = await request('POST', new URL(action, s.idp).toString(), { jar: idpJar, body: `xsrf=${encodeURIComponent(xsrf)}&logout=yes` });
    assert.ok(done.status >= 300 && done.status < 400, `IdP logout answered ${done.status}`);
    // oidc-provider has posted the logout token by the time it answers. The worker that received it
    // refuses the session at once, the other after its next tick (1 s) reads the shared store; the
    // cookie is unchanged in the browser, yet no worker accepts it (fresh connections spread over both).
    await sleep(1200);
    for (let i = 0; i < 12; i += 1) {
      const r = await get(`${s.app}/app`, { jar, headers: api });
      assert.equal(r.status, 401, `request ${i} after the back-channel logout: ${r.status}`);
    }
    const r = await get(`${s.app}/app`, { jar, headers: nav });
    assert.equal(r.status, 302, 'a navigation logs in again');
    // Another user's session is untouched.
    assert.equal((await get(`${s.app}/app`, { jar: other, headers: api })).status, 200);
    await sleep(1500);
    assert.equal(await counter(s, 'portcullis_decisions_total.reason.backchannel_logout'), 1);
  });

  it('refuses a forged logout token with a 400 and a counted reason', async () => {
    const body = `logout_token=${'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.'}`;
    const r = await request('POST', `${s.app}/oauth2/backchannel_logout`, { body });
    assert.equal(r.status, 400);
    assert.equal(r.json().error, 'invalid_request');
    const big = await request('POST', `${s.app}/oauth2/backchannel_logout`, { body: `logout_token=${'a'.repeat(40000)}` });
    assert.equal(big.status, 413);
  });
});
