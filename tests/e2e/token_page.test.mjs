// The token page of Portcullis's own (issue 7, point 4), `{prefix}/auth` and API routes, through real
// Envoy and oidc-provider: Chromium opens /oauth2/token, signs in at the IdP, and lands back on the page;
// the token it shows is the session, as a bearer and as the cookie, until the session ends; the upstream
// never sees it. A 401 for an API client says where to log in.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import { chromium } from 'playwright-core';

import { get } from '../lib/http.mjs';
import { startStack } from '../lib/stack.mjs';

let s;
let browser;
before(async () => {
  s = await startStack({
    name: 'token-page',
    plugin: {
      token_page: true,
      // Sessions end after 10 s, so the expiry of a pasted token is seen within the test.
      cookie: { keys: [{ id: 'demo1', secret: 'ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=' }], session_ttl_seconds: 10 },
      routes: { rules: [{ name: 'api', prefix: '/api', action: 'authenticate', api: true }] },
    },
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); s?.stop(); });

const api = { accept: 'application/json' };

it('chromium signs in at /oauth2/token and the token it shows works as a bearer and as the cookie', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/oauth2/token`);
  assert.ok(page.url().startsWith(`${s.idp}/interaction/`), `at the IdP login: ${page.url()}`);
  await page.fill('input[name="login"]', 'dora');
  await page.fill('input[name="password"]', 'anything');
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/interaction\//);
  await page.click('button[type="submit"]'); // consent
  await page.waitForURL(`${s.app}/oauth2/token`);
  assert.equal(await page.textContent('#portcullis-user'), 'dora');
  const token = (await page.textContent('#portcullis-token')).trim();
  const expires = Number(await page.textContent('#portcullis-expires'));
  const cookie = (await context.cookies(s.app)).find((c) => c.name === '_portcullis');
  assert.equal(token, cookie.value, 'the token is the session');
  // A script on an app page of the same origin (an XSS) cannot read the token page: Chromium's fetch
  // carries Sec-Fetch-Mode: cors, and Portcullis refuses it; the HttpOnly session stays out of reach.
  // (On the token page itself its CSP blocks any fetch.)
  await page.goto(`${s.app}/app`);
  const scripted = await page.evaluate(async () => {
    const r = await fetch('/oauth2/token', { headers: { accept: 'application/json' } });
    return { status: r.status, body: await r.text() };
  });
  assert.equal(scripted.status, 403);
  assert.ok(!scripted.body.includes(token));
  await context.close();

  // A CLI with the pasted token: bearer, then cookie; the upstream sees the user, not the token.
  for (const headers of [{ ...api, authorization: `Bearer ${token}` }, { ...api, cookie: `_portcullis=${token}` }]) {
    const r = await get(`${s.app}/api/whoami`, { headers });
    assert.equal(r.status, 200, r.body.slice(0, 300));
    const seen = r.json().headers;
    assert.equal(seen['x-forwarded-user'], 'dora');
    assert.equal(seen.authorization, undefined, 'our token never reaches the upstream');
    assert.ok(!(seen.cookie || '').includes(token), 'nor does the cookie');
  }
  const auth = await get(`${s.app}/oauth2/auth`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(auth.status, 202);
  assert.equal(auth.headers['x-auth-request-email'], 'dora@example.com');
  // One character changed: refused, never forwarded.
  const bad = `${token.slice(0, -4)}${token.at(-4) === 'A' ? 'B' : 'A'}${token.slice(-3)}`;
  const r = await get(`${s.app}/api/whoami`, { headers: { ...api, authorization: `Bearer ${bad}` } });
  assert.equal(r.status, 401);
  assert.equal(r.json().code, 'session_token_rejected');
  // After the session's end the token is refused too.
  assert.ok(expires * 1000 > Date.now(), 'still valid until now');
  await new Promise((done) => setTimeout(done, expires * 1000 - Date.now() + 1000));
  const late = await get(`${s.app}/api/whoami`, { headers: { ...api, authorization: `Bearer ${token}` } });
  assert.equal(late.status, 401);
});

it('an API route answers a CLI 401 with where to log in; /oauth2/auth answers 401 without a session', async () => {
  // Accept */* (what curl, requests and SkyPilot send) would be a browser navigation elsewhere.
  const r = await get(`${s.app}/api/health`, { headers: { accept: '*/*' } });
  assert.equal(r.status, 401);
  assert.equal(r.json().login_url, '/oauth2/start?rd=%2Fapi%2Fhealth');
  assert.equal(r.json().token_url, '/oauth2/token');
  assert.equal(r.headers.link, '</oauth2/start?rd=%2Fapi%2Fhealth>; rel="login", </oauth2/token>; rel="token"');
  const nav = await get(`${s.app}/dashboard`, { headers: { accept: '*/*' } });
  assert.equal(nav.status, 302, 'not an API route: a login redirect');
  const auth = await get(`${s.app}/oauth2/auth`, { headers: { accept: 'text/html' } });
  assert.equal(auth.status, 401);
  assert.equal(auth.headers.location, undefined);
});
