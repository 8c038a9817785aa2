// The complete browser login through real Envoy (2 workers) + the Portcullis wasm filter + oidc-provider
// + the echo upstream. Requests use fresh connections, so they spread over both workers: the session
// minted on one worker must open on the other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { get, idpLogin, Jar, request } from '../lib/http.mjs';
import { startStack } from '../lib/stack.mjs';

let s;
before(async () => { s = await startStack({ name: 'login' }); });
after(() => s?.stop());

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };

/** Connections accepted so far by each Envoy worker (listener.<addr>.worker_N.downstream_cx_total). */
async function perWorkerConnections() {
  const stats = (await get(`${s.admin}/stats?filter=downstream_cx_total`)).body;
  return [...stats.matchAll(/worker_(\d+)\.downstream_cx_total: (\d+)/g)].map((m) => Number(m[2]));
}

async function signIn(user = 'alice', path = '/dashboard?tab=1') {
  const jar = new Jar();
  const start = await get(`${s.app}${path}`, { headers: nav, jar });
  assert.equal(start.status, 302);
  const callback = await idpLogin(start.headers.location, user);
  assert.ok(callback.startsWith(`${s.app}/oauth2/callback?`), callback);
  const done = await get(callback, { headers: nav, jar });
  return { jar, start, callback, done };
}

describe('browser login through Envoy', () => {
  it('redirects a navigation to the real IdP with PKCE, state and nonce, and a login cookie', async () => {
    const jar = new Jar();
    const r = await get(`${s.app}/dashboard`, { headers: nav, jar });
    assert.equal(r.status, 302);
    const loc = new URL(r.headers.location);
    assert.equal(loc.origin + loc.pathname, `${s.idp}/auth`);
    const q = loc.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), 'portcullis');
    assert.equal(q.get('redirect_uri'), `${s.app}/oauth2/callback`);
    assert.equal(q.get('scope'), 'openid email profile');
    assert.equal(q.get('code_challenge_method'), 'S256');
    for (const k of ['state', 'nonce', 'code_challenge']) assert.ok(q.get(k)?.length >= 22, k);
    assert.equal(r.setCookies.length, 1);
    assert.match(r.setCookies[0], /^_portcullis_login_[A-Za-z0-9_-]{12}=.+; Path=\/; Max-Age=600; HttpOnly; Secure; SameSite=Lax$/);
  });

  it('signs in, returns to the original URL, and every worker forwards the identity', async () => {
    const { jar, done } = await signIn('alice');
    assert.equal(done.status, 302, done.body);
    assert.equal(done.headers.location, '/dashboard?tab=1');
    assert.ok(jar.get('_portcullis'), 'session cookie set');
    assert.deepEqual(jar.names().filter((n) => n.includes('_login_')), [], 'login cookie deleted');
    const before = await perWorkerConnections();
    assert.equal(before.length, 2, 'two workers');
    for (let i = 0; i < 20; i += 1) {
      const r = await get(`${s.app}/dashboard?tab=1`, { jar });
      assert.equal(r.status, 200, `request ${i}: ${r.body.slice(0, 200)}`);
      const up = r.json().headers;
      assert.equal(up['x-forwarded-user'], 'alice');
      assert.equal(up['x-forwarded-email'], 'alice@example.com');
      assert.equal(up['x-forwarded-groups'], 'admins,staff');
      assert.equal(up['x-forwarded-preferred-username'], 'alice');
      assert.equal(up['x-auth-request-user'], 'alice');
      assert.equal(up['x-auth-request-email'], 'alice@example.com');
      assert.equal(up['x-forwarded-access-token'], undefined);
    }
    // Both workers served the session: the one that did not mint it opened it with the shared key ring.
    const after = await perWorkerConnections();
    const served = after.map((n, w) => n - before[w]);
    assert.ok(served.every((n) => n > 0), `authenticated requests per worker: ${served}`);
  });

  it('removes identity headers sent by the client and never forwards our cookies', async () => {
    const { jar } = await signIn('bob');
    const r = await get(`${s.app}/x`, {
      headers: {
        cookie: `theme=dark; ${jar.header()}; lang=en`,
        'X-Forwarded-User': 'admin',
        'x_forwarded_user': 'admin',
        'X-Forwarded-Email': 'admin@evil.test',
        'x-forwarded-groups': 'admins',
        'X-Auth-Request-User': 'admin',
        'x-forwarded-access-token': 'forged',
      },
    });
    assert.equal(r.status, 200);
    const up = r.json().headers;
    assert.equal(up['x-forwarded-user'], 'bob');
    assert.equal(up['x-forwarded-groups'], 'staff');
    assert.equal(up.x_forwarded_user, undefined);
    assert.equal(up['x-forwarded-access-token'], undefined);
    assert.ok(!JSON.stringify(up).includes('admin'), JSON.stringify(up));
    assert.equal(up.cookie, 'theme=dark; lang=en');
  });

  it('answers XHR and JSON clients with 401 and no login cookie', async () => {
    for (const headers of [{ accept: 'application/json' }, { 'x-requested-with': 'XMLHttpRequest' }, { 'sec-fetch-mode': 'cors' }]) {
      const r = await get(`${s.app}/api/items`, { headers });
      assert.equal(r.status, 401);
      assert.match(r.headers['www-authenticate'], /^Bearer realm=/);
      assert.equal(r.setCookies.length, 0);
      assert.equal(r.json().login_url, '/oauth2/start?rd=%2Fapi%2Fitems');
    }
    const post = await request('POST', `${s.app}/form`, { body: 'a=1' });
    assert.equal(post.status, 401);
  });

  it('treats a tampered session cookie as no session: a fresh login, never the upstream', async () => {
    const { jar } = await signIn('carol');
    const v = jar.get('_portcullis');
    const tampered = `${v.slice(0, -4)}${v.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const r = await get(`${s.app}/secret`, { headers: { ...nav, cookie: `_portcullis=${tampered}` } });
    assert.equal(r.status, 302);
    assert.ok(r.headers.location.startsWith(`${s.idp}/auth?`));
    const api = await get(`${s.app}/secret`, { headers: { accept: 'application/json', cookie: `_portcullis=${v.slice(0, 40)}` } });
    assert.equal(api.status, 401);
  });

  it('rejects a callback whose state does not match the login cookie, and logs why', async () => {
    const jar = new Jar();
    const start = await get(`${s.app}/`, { headers: nav, jar });
    const callback = await idpLogin(start.headers.location, 'mallory');
    const u = new URL(callback);
    const state = u.searchParams.get('state');
    u.searchParams.set('state', `${state.slice(0, 20)}${state.endsWith('AA') ? 'BB' : 'AA'}`);
    const r = await get(u.toString(), { headers: nav, jar });
    assert.equal(r.status, 403);
    assert.match(r.headers['content-type'], /text\/html/);
    assert.match(r.body, /state_mismatch/);
    assert.ok(!jar.get('_portcullis'));
    const replay = await get(callback, { headers: nav });
    assert.equal(replay.status, 403, 'a callback without its login cookie is refused');
    await new Promise((res) => setTimeout(res, 200));
    const log = s.envoy.read();
    assert.match(log, /403 state_mismatch GET \/oauth2\/callback/);
    assert.match(log, /403 login_cookie_missing GET \/oauth2\/callback/);
    assert.ok(!log.includes(state), 'the state (like codes and tokens) never reaches the log');
  });

  it('refuses open redirects on rd', async () => {
    const jar = new Jar();
    const start = await get(`${s.app}/oauth2/start?rd=${encodeURIComponent('//evil.com/x')}`, { headers: nav, jar });
    const done = await get(await idpLogin(start.headers.location, 'alice'), { jar });
    assert.equal(done.headers.location, '/');
  });

  it('serves userinfo, ping and public paths', async () => {
    const { jar } = await signIn('dave');
    const ui = await get(`${s.app}/oauth2/userinfo`, { jar, headers: { accept: 'application/json' } });
    assert.equal(ui.status, 200);
    assert.equal(ui.json().user, 'dave');
    assert.equal((await get(`${s.app}/oauth2/userinfo`)).status, 401);
    const ping = await get(`${s.app}/oauth2/ping`);
    assert.equal(ping.status, 200);
    assert.equal(ping.body, 'OK');
    const pub = await get(`${s.app}/public/app.css`, { headers: { 'x-forwarded-user': 'admin' } });
    assert.equal(pub.status, 200);
    assert.equal(pub.json().headers['x-forwarded-user'], undefined);
    const sneaky = await get(`${s.app}/public/%2e%2e/admin`, { headers: nav });
    assert.notEqual(sneaky.status, 200);
  });

  it('signs out: clears every cookie and ends the IdP session', async () => {
    const { jar } = await signIn('erin');
    const idpJar = new Jar();
    const out = await get(`${s.app}/oauth2/sign_out`, { jar });
    assert.equal(out.status, 302);
    const clears = out.setCookies.filter((c) => /Max-Age=0/.test(c));
    assert.ok(clears.some((c) => c.startsWith('_portcullis=; Path=/; Max-Age=0') && /HttpOnly; Secure; SameSite=Lax/.test(c)), clears.join('\n'));
    assert.equal(jar.get('_portcullis'), undefined);
    const end = new URL(out.headers.location);
    assert.equal(`${end.origin}${end.pathname}`, `${s.idp}/session/end`);
    assert.equal(end.searchParams.get('client_id'), 'portcullis');
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${s.app}/`);
    assert.equal(end.searchParams.get('id_token_hint').split('.').length, 3);
    const confirm = await get(end.toString(), { jar: idpJar });
    assert.equal(confirm.status, 200, confirm.body.slice(0, 300));
    const action = confirm.body.match(/<form[^>]*action="([^"]+)"/)[1];
    const xsrf = confirm.body.match(/name="xsrf" value="([^"]+)"/)[1];
    const done = await request('POST', new URL(action, s.idp).toString(), { body: `xsrf=${xsrf}&logout=yes`, jar: idpJar });
    assert.equal(done.status, 303);
    assert.equal(new URL(done.headers.location, s.idp).toString(), `${s.app}/`, 'the IdP sends the browser back');
    const after = await get(`${s.app}/dashboard`, { headers: nav, jar });
    assert.equal(after.status, 302, 'signed out: a new login starts');
  });
});
