// The real SkyPilot 0.14.1 CLI and API server behind Portcullis (issue 7): `sky api start` on loopback
// with a throw-away HOME and no cloud credentials; Envoy + Portcullis in front of it; Chromium signs in at
// oidc-provider. The client's and the server's contract these tests rest on (with file:line in the
// installed package) is summed up at the top of tests/lib/skypilot.mjs. ~60 s, most of it the two servers'
// start (~9 s, in parallel) and the CLI's own start (~3 s per command).
//
//  1. `sky api login -e <envoy>`: the first health check gets Portcullis's 401 (not a redirect), the CLI
//     asks for the token of SkyPilot's own /token page, which the browser shows after its login (the
//     route forwards our session cookie, so the token holds it); `sky api info` then names the user the
//     server read from X-Auth-Request-Email.
//  2. The CLI's default flow with a browser: it opens /token?local_port=N and the page posts the token
//     to the CLI's loopback listener.
//  3. `--relogin`: SkyPilot's polling flow (/auth/authorize in the browser, the CLI polling the public
//     /api/v1/auth/token).
//  4. SkyPilot's oauth2-proxy mode with Portcullis as the oauth2-proxy: the server asks
//     Portcullis's /oauth2/auth about each request's cookies; a whole CLI login through it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';

import { chromium } from 'playwright-core';

import { envoyConfig } from '../lib/envoy-config.mjs';
import { get, request } from '../lib/http.mjs';
import {
  browserRecorder, decodeToken, encodeToken, jarCookies, pickSkyPort, runSky, SKY_CLIENT_HEADERS, startSkyServer, tempHome, userHash,
} from '../lib/skypilot.mjs';
import { freePort, startEnvoy, startStack } from '../lib/stack.mjs';

// Portcullis's routes for a SkyPilot API server (the README's SkyPilot example).
const SKY_ROUTES = {
  default: { action: 'authenticate', accept: 'session' },
  rules: [
    // The CLI polls this without cookies while the user authorizes in the browser (sky/client/sdk.py
    // _try_polling_auth); only the holder of the verifier gets the token. SkyPilot's own oauth2-proxy
    // middleware lets it through too (sky/server/auth/oauth2_proxy.py:204).
    { name: 'sky-poll', path: '/api/v1/auth/token', methods: ['GET'], action: 'public' },
    // The token page and the polling flow's authorize call hand the cookies the server received to the
    // CLI: our session cookie has to reach the server there.
    { name: 'sky-token', path: '/token', action: 'authenticate', forward_session_cookie: true },
    { name: 'sky-authorize', path: '/api/v1/auth/authorize', methods: ['POST'], action: 'authenticate', forward_session_cookie: true, api: true },
    // The CLI's GETs (`Accept: */*`, no Sec-Fetch-Mode) would count as navigations: 401, never a redirect.
    { name: 'sky-api', prefix: '/api', action: 'authenticate', api: true },
  ],
};

const SESSION_COOKIE = /^_portcullis(_\d+)?$/;

let sky; // the API server behind Portcullis (its default auth mode: X-Auth-Request-Email)
let skyProxy; // a second one in SkyPilot's oauth2-proxy mode, asking Portcullis's /oauth2/auth
let front; // a plain Envoy (no filter) on 127.0.0.2:<listen> in front of skyProxy
let s;
let URL_;
let browser;
const homes = [];
const recorders = [];
const home = (label) => { const h = tempHome(label); homes.push(h); return h; };
const recorder = (label) => { const r = browserRecorder(label); recorders.push(r); return r; };

before(async () => {
  const [listen, skyPort] = [await freePort(), await pickSkyPort()];
  // The two servers start (~9 s each, most of this file's time) while the stack comes up; whatever
  // started is kept for after() even when another part failed.
  const started = await Promise.allSettled([
    startSkyServer({ name: 'sky', port: skyPort }).then((x) => { sky = x; }),
    startSkyServer({
      name: 'sky-oauth2-proxy',
      env: { SKYPILOT_AUTH_OAUTH2_PROXY_ENABLED: 'true', SKYPILOT_AUTH_OAUTH2_PROXY_BASE_URL: `http://127.0.0.1:${listen}` },
    }).then((x) => { skyProxy = x; }),
    startStack({
      name: 'skypilot', listenPort: listen, upstreamPort: skyPort, hosts: ['127.0.0.1', '127.0.0.2'],
      plugin: { routes: SKY_ROUTES },
    }).then((x) => { s = x; }),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  URL_ = `http://127.0.0.1:${s.listen}`;
  // The oauth2-proxy-mode server's public face: 127.0.0.2 is loopback too (Chromium keeps Secure cookies
  // there), and Envoy's X-Forwarded-Proto tells SkyPilot the request came through a proxy.
  const cfg = envoyConfig({ listen: s.listen, admin: await freePort(), upstream: skyProxy.port, idp: 9 });
  cfg.static_resources.listeners[0].address.socket_address.address = '127.0.0.2';
  front = await startEnvoy({ name: 'sky-front', cfg });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  front?.stop();
  s?.stop();
  await Promise.all([sky?.stop(), skyProxy?.stop()]);
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  for (const r of recorders) r.remove();
});

/** At the IdP's login page: signs `user` in and consents. */
async function idpSignIn(page, user) {
  await page.waitForURL((u) => u.toString().startsWith(`${s.idp}/interaction/`));
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'anything');
  await page.click('button[type="submit"]');
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
  await page.click('button[type="submit"]');
}

/** A browser that signs `user` in by opening `url` (a protected page); resolves when back at `url`'s path. */
async function browse(user, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await idpSignIn(page, user);
  const want = new URL(url);
  await page.waitForURL((u) => u.host === want.host && u.pathname === want.pathname);
  return { context, page };
}

const apiHeaders = { ...SKY_CLIENT_HEADERS, accept: '*/*', 'user-agent': 'python-requests/2.32.5' };

it('without a session the CLI gets 401 JSON (never a redirect); the poll path is public; spoofed identity is dropped', async () => {
  // What the CLI's first health check sends (sky/server/rest.py: version headers, Accept */*).
  const health = await get(`${URL_}/api/health`, { headers: apiHeaders });
  assert.equal(health.status, 401, health.body);
  assert.equal(health.headers.location, undefined);
  assert.match(health.headers['content-type'], /application\/json/);
  assert.ok(health.json().login_url, health.body);
  assert.equal(health.headers['x-skypilot-api-version'], undefined, 'a 401 of ours, not the server');
  // A client-sent identity header buys nothing.
  const spoofed = await get(`${URL_}/api/health`, { headers: { ...apiHeaders, 'x-auth-request-email': 'mallory@example.com' } });
  assert.equal(spoofed.status, 401);
  // SkyPilot's API calls are POSTs at the root.
  const status = await request('POST', `${URL_}/status`, { headers: { ...apiHeaders, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(status.status, 401, status.body);
  // The polling endpoint reaches SkyPilot without a session (its own 404: nobody authorized yet)...
  const poll = await get(`${URL_}/api/v1/auth/token?code_verifier=nobody`, { headers: apiHeaders });
  assert.equal(poll.status, 404, poll.body);
  assert.deepEqual(poll.json(), { detail: 'Session not found' });
  assert.equal(poll.headers['x-skypilot-api-version'], '62', 'SkyPilot answered, its version headers intact');
  // ...but not the authorize call that would mint a token.
  const authorize = await request('POST', `${URL_}/api/v1/auth/authorize`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code_challenge: 'x'.repeat(43) }) });
  assert.equal(authorize.status, 401);
  // A browser opening the token page is sent to the IdP.
  const page = await get(`${URL_}/token`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 302);
  assert.ok(page.headers.location.startsWith(`${s.idp}/auth?`), page.headers.location);
});

let alice; // {context, page, token, home}

it('sky api login -e <envoy> takes the token of SkyPilot\'s /token page after a Chromium login; sky api info shows the user', async () => {
  const b = await browse('alice', `${URL_}/token`);
  assert.match(await b.page.textContent('body'), /Logged in as alice@example\.com/);
  const token = (await b.page.textContent('#token-box')).trim();
  const data = decodeToken(token);
  assert.equal(data.v, 1);
  assert.equal(data.user, await userHash('alice@example.com'));
  const names = Object.keys(data.cookies);
  assert.ok(names.includes('_portcullis'), `the token holds our session cookie: ${names}`);
  // Of our cookies only the session's reach the server (no login cookie). The IdP's own cookies
  // (_session, _session.sig) are there too only because the IdP shares the host 127.0.0.1 in this test
  // (cookies ignore the port), and other cookies are not ours to strip.
  const ours = names.filter((n) => n.startsWith('_portcullis'));
  assert.ok(ours.every((n) => SESSION_COOKIE.test(n)), `only session cookies of ours reach the server: ${names}`);

  const h = home('alice');
  const login = await runSky(['api', 'login', '-e', URL_], { home: h, input: `${token}\n` });
  assert.equal(login.code, 0, login.out);
  assert.match(login.out, new RegExp(`Visit this URL to get the token:\\s+${URL_}/token`));
  assert.match(login.out, new RegExp(`Logged into SkyPilot API server at: ${URL_}`));
  assert.match(login.out, new RegExp(`User: alice@example\\.com \\(${await userHash('alice@example.com')}\\)`));
  // The jar holds our cookie for the endpoint's host (not Secure: the endpoint is http).
  const jar = jarCookies(h);
  assert.deepEqual(jar.map((c) => [c.domain, c.name]), names.map((n) => ['.127.0.0.1', n]));
  assert.equal(fs.readFileSync(path.join(h, '.sky/config.yaml'), 'utf8').includes(URL_), true);

  // (Both read only: run side by side, each CLI start costs ~3 s.)
  const [info, json] = await Promise.all([runSky(['api', 'info'], { home: h }), runSky(['api', 'info', '-o', 'json'], { home: h })]);
  assert.equal(info.code, 0, info.out);
  assert.match(info.out, new RegExp(`Using SkyPilot API server and dashboard: ${URL_}`));
  assert.match(info.out, /Status: ApiServerStatus\.HEALTHY/);
  assert.match(info.out, new RegExp(`User: alice@example\\.com \\(${await userHash('alice@example.com')}\\)`));
  assert.equal(json.code, 0, json.out);
  const parsed = JSON.parse(json.stdout.slice(json.stdout.indexOf('{')));
  assert.equal(parsed.user, 'alice@example.com');
  assert.equal(parsed.server.status, 'healthy');
  alice = { ...b, token, home: h, session: data.cookies._portcullis, cookie: ours.map((n) => `${n}=${data.cookies[n]}`).join('; ') };
});

it('with the session the server sees the session\'s user, never a client-sent one; version headers pass both ways', async () => {
  const r = await get(`${URL_}/api/health`, { headers: { ...apiHeaders, cookie: alice.cookie, 'x-auth-request-email': 'mallory@example.com', 'x-forwarded-email': 'mallory@example.com' } });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json().user.name, 'alice@example.com');
  assert.equal(r.json().status, 'healthy');
  assert.equal(r.headers['x-skypilot-api-version'], '62');
  assert.equal(r.headers['x-skypilot-version'], '0.14.1');
  // The server only adds them when the client sent its own (sky/server/server.py APIVersionMiddleware):
  // proof that the request headers reached it as well.
  const bare = await get(`${URL_}/api/health`, { headers: { accept: 'application/json', cookie: alice.cookie } });
  assert.equal(bare.status, 200);
  assert.equal(bare.headers['x-skypilot-api-version'], undefined);
});

it('a garbled or forged token is refused: no login, no user', async () => {
  const [hg, h] = [home('garbled'), home('forged')];
  // Well-formed, but the cookie is not a session of ours: the CLI's check after login gets our 401.
  const forged = encodeToken({ v: 1, user: await userHash('alice@example.com'), cookies: { _portcullis: `${alice.session.slice(0, -8)}AAAAAAAA` } });
  const [garbled, f] = await Promise.all([
    runSky(['api', 'login', '-e', URL_], { home: hg, input: 'eyJub3QiOiAidG9rZW4=garbage%%%\n' }),
    runSky(['api', 'login', '-e', URL_], { home: h, input: `${forged}\n` }),
  ]);
  assert.notEqual(garbled.code, 0, garbled.out);
  assert.match(garbled.out, /Malformed token/);
  assert.equal(fs.existsSync(path.join(hg, '.sky/config.yaml')), false, 'no endpoint saved');
  assert.notEqual(f.code, 0, f.out);
  assert.match(f.out, new RegExp(`Cannot log in API server at ${URL_} \\(status: needs_auth\\)`));
  assert.doesNotMatch(f.out, /alice@example\.com/);
  // The CLI kept the forged cookie in its jar; pointed at the endpoint, info cannot get through.
  const info = await runSky(['api', 'info'], { home: h, env: { SKYPILOT_API_SERVER_ENDPOINT: URL_ } });
  assert.match(info.out, new RegExp(`Could not connect to SkyPilot API server at ${URL_}`));
  assert.doesNotMatch(info.out, /alice@example\.com/);
});

it('the CLI\'s browser flow: it opens /token?local_port=N, the page posts the token to the CLI', async () => {
  const rec = recorder('callback');
  const h = home('bob');
  const login = runSky(['api', 'login', '-e', URL_], { home: h, browser: rec.program, timeoutMs: 60000 });
  const opened = await rec.next();
  assert.match(opened, new RegExp(`^${URL_}/token\\?local_port=\\d+$`));
  const b = await browse('bob', opened);
  const done = await login;
  assert.equal(done.code, 0, done.out);
  assert.match(done.out, new RegExp(`User: bob@example\\.com \\(${await userHash('bob@example.com')}\\)`));
  const info = await runSky(['api', 'info', '-o', 'json'], { home: h });
  assert.equal(JSON.parse(info.stdout.slice(info.stdout.indexOf('{'))).user, 'bob@example.com');
  await b.context.close();
});

it('sky api login --relogin: SkyPilot\'s polling flow (authorize in the browser, the CLI polls the public path)', async () => {
  // alice's CLI is logged in, so the server's API version is known and the polling flow comes first;
  // carol authorizes in her own browser: the CLI ends up with carol's session.
  const rec = recorder('poll');
  const login = runSky(['api', 'login', '--relogin', '-e', URL_], { home: alice.home, browser: rec.program, timeoutMs: 60000 });
  const opened = await rec.next();
  const m = opened.match(new RegExp(`^${URL_}/auth/authorize\\?code_challenge=([A-Za-z0-9_-]{43})$`));
  assert.ok(m, opened);
  const b = await browse('carol', opened);
  assert.match(await b.page.textContent('body'), /Logged in as carol@example\.com/);
  await b.page.click('#authorize-btn');
  await b.page.waitForSelector('text=Authorization Complete');
  const done = await login;
  assert.equal(done.code, 0, done.out);
  assert.match(done.out, /User: carol@example\.com/);
  const info = await runSky(['api', 'info', '-o', 'json'], { home: alice.home });
  assert.equal(JSON.parse(info.stdout.slice(info.stdout.indexOf('{'))).user, 'carol@example.com');
  await b.context.close();
});

it('oauth2-proxy mode: the server asks Portcullis\'s /oauth2/auth with the request\'s cookies', async () => {
  // Straight to the server, as if through a proxy (X-Forwarded-For: SkyPilot skips the check for plain
  // loopback requests, sky/server/auth/loopback.py).
  const via = { ...apiHeaders, 'x-forwarded-for': '203.0.113.7' };
  const withSession = await get(`${skyProxy.url}/api/health`, { headers: { ...via, cookie: alice.cookie } });
  assert.equal(withSession.status, 200, withSession.body);
  assert.equal(withSession.json().user.name, 'alice@example.com');
  assert.equal(withSession.json().user.user_type, 'sso');
  const page = await get(`${skyProxy.url}/auth/authorize?code_challenge=x`, { headers: { ...via, cookie: alice.cookie } });
  assert.equal(page.status, 200);
  assert.match(page.body, /Logged in as alice@example\.com/);
  // No session, or a forged one: health answers anonymously (needs_auth, no user); any other path is
  // sent to the server's own /oauth2/start (which it proxies to Portcullis).
  for (const cookie of [undefined, '_portcullis=forged']) {
    const headers = cookie ? { ...via, cookie } : via;
    const h = await get(`${skyProxy.url}/api/health`, { headers });
    assert.equal(h.status, 200);
    assert.equal(h.json().status, 'needs_auth');
    assert.equal(h.json().user, null);
    const p = await get(`${skyProxy.url}/auth/authorize?code_challenge=x`, { headers });
    assert.equal(p.status, 307);
    assert.equal(p.headers.location, `${skyProxy.url}/oauth2/start?rd=/auth/authorize%3Fcode_challenge%3Dx`);
    // A client-sent X-Auth-Request-Email is not read in this mode.
    const spoof = await get(`${skyProxy.url}/api/health`, { headers: { ...headers, 'x-auth-request-email': 'mallory@example.com' } });
    assert.equal(spoof.json().user, null);
  }
  // The caveat of the mode: a loopback peer without proxy headers is not asked about at all.
  const local = await get(`${skyProxy.url}/auth/authorize?code_challenge=x`, { headers: apiHeaders });
  assert.equal(local.status, 200);
  assert.doesNotMatch(local.body, /Logged in as/);
});

it('oauth2-proxy mode end to end: sky api login through the server, which proxies /oauth2/* to Portcullis', async () => {
  const endpoint = `http://127.0.0.2:${s.listen}`;
  const rec = recorder('proxy-mode');
  const h = home('dave');
  // The server answers health 200 `needs_auth` with its version headers, so the CLI goes straight to the
  // polling flow: /auth/authorize → 307 /oauth2/start → Portcullis → IdP → /oauth2/callback (through
  // the server) → the authorize page.
  const login = runSky(['api', 'login', '-e', endpoint], { home: h, browser: rec.program, timeoutMs: 60000 });
  const opened = await rec.next();
  assert.match(opened, new RegExp(`^${endpoint}/auth/authorize\\?code_challenge=[A-Za-z0-9_-]{43}$`));
  const b = await browse('dave', opened);
  assert.match(await b.page.textContent('body'), /Logged in as dave@example\.com/);
  const cookies = await b.context.cookies(endpoint);
  assert.ok(cookies.some((c) => c.name === '_portcullis'), `session cookie for the server's host: ${cookies.map((c) => c.name)}`);
  await b.page.click('#authorize-btn');
  await b.page.waitForSelector('text=Authorization Complete');
  const done = await login;
  assert.equal(done.code, 0, done.out);
  assert.match(done.out, new RegExp(`User: dave@example\\.com \\(${await userHash('dave@example.com')}\\)`));
  const info = await runSky(['api', 'info'], { home: h });
  assert.match(info.out, /User: dave@example\.com/);
  await b.context.close();
});
