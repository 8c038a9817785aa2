// Bounded work and identity hygiene through real Envoy (2 workers) + the Portcullis filter + oidc-provider:
// a client sending hundreds of stale login cookies, huge deep links, many headers or a long URL gets a
// small, fast, correct answer; an unverified email never becomes an identity; group names cannot smuggle
// extra groups; the redirect allowlist respects ports; escaped public-path tricks stay private; and a
// session is bound to the issuer and client id it was minted for.
//
// Stacks (each with its own IdP, so its own issuer):
//   s1  the default configuration + allowed_redirect_domains ['localhost', 'app.test:9999', 'any.test:*']
//   s2  insecure_allow_unverified_email: true, allowed_redirect_domains ['localhost:9999']
//   s3  claims.user = email, allowed_redirect_domains ['localhost:*']
//   post, postAccepting  two more Envoys on s1's IdP (same issuer, same key ring) as client
//       `portcullis-post`; the second also accepts `portcullis` sessions (cookie.accept_client_ids).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { envoyConfig, pluginConfig, portcullisFilter } from '../lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../lib/http.mjs';
import { freePort, sleep, startEcho, startEnvoy, startStack, waitFilterReady, WASM } from '../lib/stack.mjs';

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const api = { accept: 'application/json' };

let s1;
let s2;
let s3;
let post; // base URL of the portcullis-post Envoy
let postAccepting; // base URL of the portcullis-post Envoy that also accepts portcullis sessions
const extra = []; // processes started here (not by startStack)

/** An Envoy with the filter configured as `overrides` on `stack`'s IdP (same issuer), its own echo. */
async function envoyOnIdpOf(stack, name, overrides) {
  const idpPort = Number(new URL(stack.idp).port);
  const [listen, admin, upstream] = await Promise.all([freePort(), freePort(), freePort()]);
  extra.push(await startEcho({ port: upstream }));
  const filters = [portcullisFilter(WASM, pluginConfig({ idpPort, overrides }))];
  extra.push(await startEnvoy({ name, cfg: envoyConfig({ listen, admin, upstream, idp: idpPort, filters }) }));
  const url = `http://localhost:${listen}`;
  await waitFilterReady(url);
  return url;
}

const POST_CLIENT = { client_id: 'portcullis-post', client_secret: 'portcullis-post-secret', client_auth: 'client_secret_post' };

before(async () => {
  [s1, s2, s3] = await Promise.all([
    startStack({ name: 'hygiene', plugin: { allowed_redirect_domains: ['localhost', 'app.test:9999', 'any.test:*'] } }),
    startStack({ name: 'hygiene-unverified', plugin: { insecure_allow_unverified_email: true, allowed_redirect_domains: ['localhost:9999'] } }),
    startStack({ name: 'hygiene-email-user', plugin: { claims: { user: 'email' }, allowed_redirect_domains: ['localhost:*'] } }),
  ]);
  const keys = pluginConfig().cookie.keys;
  [post, postAccepting] = await Promise.all([
    envoyOnIdpOf(s1, 'hygiene-post', POST_CLIENT),
    envoyOnIdpOf(s1, 'hygiene-post-accepting', { ...POST_CLIENT, cookie: { keys, accept_client_ids: ['portcullis'] } }),
  ]);
});
after(() => { for (const s of [s1, s2, s3]) s?.stop(); for (const p of extra) p.stop(); });

/** Navigates to `path` on `stack`, logs `user` in at the IdP, and calls back. Returns {jar, start, done}. */
async function signIn(stack, user, path = '/home') {
  const jar = new Jar();
  const start = await get(`${stack.app}${path}`, { headers: nav, jar });
  assert.equal(start.status, 302, `start ${path.slice(0, 60)}: ${start.body.slice(0, 200)}`);
  assert.ok(start.headers.location.startsWith(`${stack.idp}/auth?`), start.headers.location);
  const callback = await idpLogin(start.headers.location, user);
  assert.ok(callback.startsWith(`${stack.app}/oauth2/callback?`), callback);
  const done = await get(callback, { headers: nav, jar });
  return { jar, start, done };
}

/** The headers the echo upstream received for an API request with `jar`'s session (asserting 200). */
async function upstreamHeaders(base, jar, path = '/whoami') {
  const r = await get(`${base}${path}`, { headers: api, jar });
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.body.slice(0, 200)}`);
  return r.json().headers;
}

const STALE = 300;
/** `n` stale login cookies, as a browser that never let any expire would send them. */
function staleLoginCookies(n = STALE) {
  return Array.from({ length: n }, (_, i) => `_portcullis_login_${`s${i}`.padStart(12, 'x')}=${Buffer.from(`junk-${i}-`.repeat(4)).toString('base64url')}`);
}
const bytesOf = (list) => list.reduce((n, c) => n + Buffer.byteLength(c), 0);

describe('bounded work', () => {
  it('300 stale login cookies on a navigation: a 302 to the IdP with at most 8 cleared + 1 set, quickly, and the login completes', async () => {
    const stale = staleLoginCookies();
    const names = new Set(stale.map((c) => c.split('=')[0]));
    // Control: without stale cookies exactly one Set-Cookie (the new attempt's).
    const plain = await get(`${s1.app}/reports`, { headers: nav });
    assert.equal(plain.setCookies.length, 1);

    const t0 = Date.now();
    const r = await get(`${s1.app}/reports?x=1`, { headers: { ...nav, cookie: stale.join('; ') } });
    const ms = Date.now() - t0;
    assert.equal(r.status, 302, r.body.slice(0, 200));
    assert.ok(r.headers.location.startsWith(`${s1.idp}/auth?`));
    assert.ok(r.setCookies.length <= 9, `${r.setCookies.length} Set-Cookie headers`);
    assert.ok(r.setCookies.length >= 2, 'some stale attempts are cleared');
    assert.ok(bytesOf(r.setCookies) < 4096, `${bytesOf(r.setCookies)} bytes of Set-Cookie`);
    assert.ok(ms < 5000, `${ms} ms`);
    const cleared = r.setCookies.filter((c) => /Max-Age=0/.test(c)).map((c) => c.split('=')[0]);
    const set = r.setCookies.filter((c) => !/Max-Age=0/.test(c));
    assert.equal(set.length, 1, 'one new login cookie');
    assert.equal(cleared.length, r.setCookies.length - 1);
    for (const n of cleared) assert.ok(names.has(n), `cleared ${n}, which was sent`);

    // The login still completes with all 300 still in the browser.
    const jar = new Jar();
    for (const c of stale) jar.apply([c]);
    jar.apply(r.setCookies);
    const callback = await idpLogin(r.headers.location, 'alice');
    const done = await get(callback, { headers: nav, jar });
    assert.equal(done.status, 302, done.body.slice(0, 300));
    assert.equal(done.headers.location, '/reports?x=1');
    assert.ok(done.setCookies.length <= 10, `${done.setCookies.length} Set-Cookie headers on the callback`);
    assert.ok(jar.get('_portcullis'), 'session cookie set');
    assert.equal((await upstreamHeaders(s1.app, jar))['x-forwarded-user'], 'alice');
  });

  it('300 stale login cookies on /oauth2/sign_out: a 302 with a bounded Set-Cookie list', async () => {
    const t0 = Date.now();
    const r = await get(`${s1.app}/oauth2/sign_out`, { headers: { ...nav, cookie: staleLoginCookies().join('; ') } });
    const ms = Date.now() - t0;
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/');
    // The session, its 5 possible chunk cookies and the sign-out hint, plus at most 8 login cookies.
    assert.ok(r.setCookies.length <= 15, `${r.setCookies.length} Set-Cookie headers`);
    assert.ok(r.setCookies.filter((c) => c.startsWith('_portcullis_login_')).length >= 1, 'some login cookies are cleared');
    assert.ok(bytesOf(r.setCookies) < 4096, `${bytesOf(r.setCookies)} bytes of Set-Cookie`);
    assert.ok(ms < 5000, `${ms} ms`);
  });

  it('a deep link too long for the login cookie falls back to its path, then to /, and the login completes', async () => {
    // Control: a short deep link comes back whole.
    const short = await signIn(s1, 'alice', '/deep/report?q=short&x=1');
    assert.equal(short.done.status, 302);
    assert.equal(short.done.headers.location, '/deep/report?q=short&x=1');

    const longQuery = `/deep/report?q=${'a'.repeat(6000)}`;
    const { jar, start, done } = await signIn(s1, 'alice', longQuery);
    assert.ok(bytesOf(start.setCookies) < 4096, 'the login cookie fits');
    assert.equal(done.status, 302, `never a 403: ${done.status} ${done.body.slice(0, 200)}`);
    assert.equal(done.headers.location, '/deep/report');
    assert.ok(jar.get('_portcullis'));
    const landed = await get(`${s1.app}/deep/report`, { headers: api, jar });
    assert.equal(landed.status, 200);
    assert.equal(landed.json().path, '/deep/report');

    const longPath = `/deep/${'p'.repeat(6000)}?q=1`;
    const byPath = await signIn(s1, 'bob', longPath);
    assert.equal(byPath.done.status, 302, `never a 403: ${byPath.done.status}`);
    assert.equal(byPath.done.headers.location, '/');
    assert.ok(byPath.jar.get('_portcullis'));
  });

  it('90 extra headers and an 8 KiB URL on a session request: 200, all of them forwarded', async () => {
    const { jar } = await signIn(s1, 'alice');
    const headers = { ...api };
    for (let i = 0; i < 90; i += 1) headers[`x-extra-${i}`] = `value-${i}-${'v'.repeat(40)}`;
    const path = `/long/${'l'.repeat(4096)}?q=${'q'.repeat(4096)}`;
    const r = await get(`${s1.app}${path}`, { headers, jar });
    assert.equal(r.status, 200, r.body.slice(0, 200));
    const echo = r.json();
    assert.equal(echo.path, path);
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    for (let i = 0; i < 90; i += 1) assert.equal(echo.headers[`x-extra-${i}`], headers[`x-extra-${i}`]);
    // Control: the same request without the session is refused (the filter did look at it).
    const anon = await get(`${s1.app}${path}`, { headers });
    assert.equal(anon.status, 401);
  });
});

describe('identity hygiene', () => {
  it('an email the IdP has not verified is not forwarded (default)', async () => {
    const alice = await signIn(s1, 'alice');
    const up = await upstreamHeaders(s1.app, alice.jar);
    assert.equal(up['x-forwarded-email'], 'alice@example.com', 'control: a verified email is forwarded');
    assert.equal(up['x-auth-request-email'], 'alice@example.com');
    for (const user of ['unverified', 'strverified', 'noverified']) {
      const { jar, done } = await signIn(s1, user);
      assert.equal(done.status, 302, `${user}: ${done.body.slice(0, 200)}`);
      const h = await upstreamHeaders(s1.app, jar);
      assert.equal(h['x-forwarded-user'], user);
      assert.equal(h['x-forwarded-email'], undefined, `${user}: X-Forwarded-Email`);
      assert.equal(h['x-auth-request-email'], undefined, `${user}: X-Auth-Request-Email`);
      assert.ok(!JSON.stringify(h).includes(`${user}@example.com`), JSON.stringify(h));
    }
  });

  it('insecure_allow_unverified_email: true forwards it', async () => {
    const { jar } = await signIn(s2, 'unverified');
    const h = await upstreamHeaders(s2.app, jar);
    assert.equal(h['x-forwarded-user'], 'unverified');
    assert.equal(h['x-forwarded-email'], 'unverified@example.com');
    assert.equal(h['x-auth-request-email'], 'unverified@example.com');
  });

  it('claims.user = email: an unverified email ends the login with 403 email_unverified and no session', async () => {
    const alice = await signIn(s3, 'alice');
    assert.equal(alice.done.status, 302, 'control: a verified email logs in');
    assert.equal((await upstreamHeaders(s3.app, alice.jar))['x-forwarded-user'], 'alice@example.com');
    for (const user of ['unverified', 'strverified']) {
      const { jar, done } = await signIn(s3, user);
      assert.equal(done.status, 403, `${user}: ${done.status} ${done.body.slice(0, 200)}`);
      assert.match(done.body, /email_unverified/);
      assert.ok(!done.setCookies.some((c) => /^_portcullis=[^;]/.test(c)), done.setCookies.join('\n'));
      assert.equal(jar.get('_portcullis'), undefined);
      const next = await get(`${s3.app}/whoami`, { headers: api, jar });
      assert.equal(next.status, 401);
    }
    await sleep(200);
    assert.match(s3.envoy.read(), /403 email_unverified GET \/oauth2\/callback/);
  });

  it('group names with a comma or a control character are dropped, never split', async () => {
    const alice = await signIn(s1, 'alice');
    assert.equal((await upstreamHeaders(s1.app, alice.jar))['x-forwarded-groups'], 'admins,staff', 'control');
    const { jar } = await signIn(s1, 'commas');
    const h = await upstreamHeaders(s1.app, jar);
    assert.equal(h['x-forwarded-groups'], 'staff');
    // Only the identity headers: random ones (x-request-id is a UUID) may hold "c1" or "del" by chance.
    const identity = Object.fromEntries(Object.entries(h).filter(([k]) => /^x-(forwarded|auth-request)-/.test(k)));
    assert.ok(!/ops|admins|bell|line|del|c1/.test(JSON.stringify(identity)), JSON.stringify(identity));
    const one = await signIn(s1, 'commastring');
    const h2 = await upstreamHeaders(s1.app, one.jar);
    assert.equal(h2['x-forwarded-groups'], undefined, `a single "ops,admins" string: ${h2['x-forwarded-groups']}`);
    assert.equal(h2['x-forwarded-user'], 'commastring');
  });

  it('allowed_redirect_domains admit the default port only unless an entry names one (sign_out ?rd=)', async () => {
    const rd = async (stack, url) => {
      const r = await get(`${stack.app}/oauth2/sign_out?rd=${encodeURIComponent(url)}`);
      assert.equal(r.status, 302);
      return r.headers.location;
    };
    const cases = [
      // s1: ['localhost', 'app.test:9999', 'any.test:*']
      [s1, 'http://localhost/x', true],
      [s1, 'https://localhost/x', true],
      [s1, 'http://localhost:9999/', false],
      [s1, 'http://app.test:9999/p', true],
      [s1, 'http://app.test/p', false],
      [s1, 'http://app.test:9998/p', false],
      [s1, 'http://any.test:1234/p', true],
      [s1, 'http://any.test/p', true],
      [s1, 'http://evil.test/', false],
      // s2: ['localhost:9999']
      [s2, 'http://localhost:9999/', true],
      [s2, 'http://localhost:9998/', false],
      [s2, 'http://localhost/', false],
      // s3: ['localhost:*']
      [s3, 'http://localhost:9999/', true],
      [s3, 'http://localhost:1/x', true],
      [s3, 'http://localhost/', true],
      [s3, 'http://localhost.evil.test:9999/', false],
    ];
    for (const [stack, url, allowed] of cases) {
      const name = stack === s1 ? 's1' : stack === s2 ? 's2' : 's3';
      assert.equal(await rd(stack, url), allowed ? url : '/', `${name} rd=${url}`);
    }
  });

  it('double-encoded and overlong escapes never make a path public', async () => {
    const status = async (p) => (await get(`${s1.app}${p}`, { headers: api })).status;
    assert.equal(await status('/public/ok'), 200, 'control: a public path is public');
    assert.equal(await status('/private/ok'), 401, 'control: a private path is not');
    for (const p of [
      '/public/%2e%2e/secret',
      '/public/%252e%252e/secret',
      '/public/%252e%252e%252fsecret',
      '/public/%c0%ae%c0%ae/secret',
      '/public/%c0%ae%c0%ae%c0%afsecret',
      '/public/%C0%AE%C0%AE/secret',
      '/public/%e0%80%ae%e0%80%ae/secret',
    ]) {
      // Resolved to a private path (401), or not normalisable at all (400 path_invalid): never public.
      assert.ok([400, 401].includes(await status(p)), p);
    }
    assert.equal(await status('/public/%252e%252e/secret'), 400, 'a double-encoded escape is refused outright');
    assert.equal(await status('/public/%2e%2e/secret'), 401, 'a single-encoded dot segment resolves to /secret');
  });

  it('a session is bound to the issuer and client id (cookie.accept_client_ids widens it)', async () => {
    const { jar } = await signIn(s1, 'alice');
    assert.equal((await upstreamHeaders(s1.app, jar))['x-forwarded-user'], 'alice', 'control: its own deployment');
    const cookie = { ...api, cookie: `_portcullis=${jar.get('_portcullis')}` };
    // Same issuer and key ring, another client id.
    const other = await get(`${post}/whoami`, { headers: cookie });
    assert.equal(other.status, 401, `portcullis-post accepted a portcullis session: ${other.body.slice(0, 200)}`);
    // ... which accepts it when configured to.
    const accepting = await get(`${postAccepting}/whoami`, { headers: cookie });
    assert.equal(accepting.status, 200, accepting.body.slice(0, 200));
    assert.equal(accepting.json().headers['x-forwarded-user'], 'alice');
    // Same client id and key ring, another issuer (s2 has its own IdP).
    const otherIssuer = await get(`${s2.app}/whoami`, { headers: cookie });
    assert.equal(otherIssuer.status, 401, 'a session from another issuer');
  });
});
