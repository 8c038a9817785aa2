// Sessions that last, through real Envoy (2 workers) + the Portcullis filter + oidc-provider: large
// sessions over several cookies, twenty tabs logging in at once in Chromium, and one sign-in shared by
// two apps on two host names in Chromium (sign-out on either ends both and the IdP session).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { chromium } from 'playwright-core';

import { get, idpLogin, Jar } from '../lib/http.mjs';
import { startStack } from '../lib/stack.mjs';

const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function signIn(app, user, path = '/') {
  const jar = new Jar();
  const start = await get(`${app}${path}`, { headers: nav, jar });
  assert.equal(start.status, 302);
  const callback = await idpLogin(start.headers.location, user);
  const done = await get(callback, { headers: nav, jar });
  assert.equal(done.status, 302, done.body);
  return jar;
}

describe('a session larger than one cookie', () => {
  let s;
  before(async () => { s = await startStack({ name: 'large', plugin: { headers: { pass_access_token: true } } }); });
  after(() => s?.stop());

  it('200 groups log in over numbered cookies, every group reaches the app, tampering is a login', async () => {
    const jar = await signIn(s.app, 'many');
    const chunks = jar.names().filter((n) => /^_portcullis(_\d+)?$/.test(n)).sort();
    assert.ok(chunks.length >= 2, `chunks: ${chunks}`);
    assert.match(jar.get('_portcullis'), new RegExp(`^${chunks.length}~`));
    for (const n of chunks) assert.ok(n.length + jar.get(n).length < 4000, `${n} fits a cookie`);
    for (let i = 0; i < 6; i += 1) { // fresh connections: both workers open it
      const r = await get(`${s.app}/api/me`, { jar });
      assert.equal(r.status, 200, r.body.slice(0, 200));
      const h = r.json().headers;
      assert.equal(h['x-forwarded-groups'].split(',').length, 200);
      assert.equal(h['x-forwarded-user'], 'many');
      assert.ok(h['x-forwarded-access-token']?.length > 10);
      assert.ok(!String(h.cookie || '').includes('_portcullis'), 'no chunk reaches the app');
    }
    // Drop, swap or alter a chunk: no session (401 for the API), never a 500.
    const variants = [];
    for (const n of chunks) {
      const dropped = new Jar(); for (const k of jar.names()) if (k !== n) dropped.cookies.set(k, jar.get(k));
      variants.push([`without ${n}`, dropped]);
      const altered = new Jar(); for (const k of jar.names()) altered.cookies.set(k, jar.get(k));
      const v = jar.get(n); altered.cookies.set(n, v.slice(0, 40) + (v[40] === 'A' ? 'B' : 'A') + v.slice(41));
      variants.push([`altered ${n}`, altered]);
    }
    const extra = new Jar(); for (const k of jar.names()) extra.cookies.set(k, jar.get(k));
    extra.cookies.set(`_portcullis_${chunks.length}`, 'demo1.AAAA');
    variants.push(['extra chunk', extra]);
    for (const [what, j] of variants) {
      const r = await get(`${s.app}/api/me`, { jar: j, headers: { accept: 'application/json' } });
      assert.equal(r.status, 401, `${what}: ${r.status}`);
    }
    // A callback replayed in a browser that is already signed in (the back button, a second tab that
    // lost the race) lands on the app instead of an error page; its code is not redeemed again.
    const again = new Jar();
    const start = await get(`${s.app}/elsewhere`, { headers: nav, jar: again });
    const callback = await idpLogin(start.headers.location, 'alice');
    assert.equal((await get(callback, { headers: nav, jar: again })).status, 302);
    const attempts = again.names().filter((n) => n.includes('_login_'));
    assert.deepEqual(attempts, []);
    const replay = await get(callback, { headers: nav, jar: again });
    assert.equal(replay.status, 302, replay.body.slice(0, 200));
    assert.equal(replay.headers.location, '/');
    const stranger = await get(callback, { headers: nav, jar: new Jar() });
    assert.equal(stranger.status, 403, 'without a session the replay is still refused');
    // Sign-out clears every chunk.
    const out = await get(`${s.app}/oauth2/sign_out`, { jar, headers: nav });
    assert.equal(out.status, 302);
    assert.deepEqual(jar.names().filter((n) => n.startsWith('_portcullis')), []);
  });
});

describe('in Chromium', () => {
  let s;
  let browser;
  const hosts = ['app1.portcullis.test', 'app2.portcullis.test'];
  before(async () => {
    s = await startStack({
      name: 'sso',
      hosts,
      // Plain http on made-up host names: Secure cookies would be dropped there (localhost is exempt).
      plugin: { cookie: { keys: [{ id: 'demo1', secret: 'ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q=' }], domain: '.portcullis.test', secure: false } },
    });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP *.portcullis.test 127.0.0.1'],
    });
  });
  after(async () => { await browser?.close(); s?.stop(); });

  /** Answers the IdP's login form, then its consent form if it asks (it does not once granted). */
  async function idpForm(page, user) {
    const at = page.url();
    await page.fill('input[name="login"]', user);
    await page.fill('input[name="password"]', 'x');
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.toString() !== at);
    await page.waitForLoadState();
    if (page.url().includes('/interaction/')) await page.click('button[type="submit"]'); // consent
  }

  it('twenty tabs that start a login at once all complete, each on its own URL', async () => {
    const app = `http://${hosts[0]}:${s.listen}`;
    const context = await browser.newContext();
    const pages = await Promise.all(Array.from({ length: 20 }, () => context.newPage()));
    await Promise.all(pages.map((p, i) => p.goto(`${app}/tab/${i}?q=${i}`)));
    for (const p of pages) assert.ok(p.url().startsWith(`${s.idp}/`), `at the IdP: ${p.url()}`);
    const attempts = (await context.cookies(app)).filter((c) => c.name.startsWith('_portcullis_login_'));
    assert.equal(attempts.length, 20, 'one attempt cookie per tab, none evicted');
    // Finish them in an order unlike the one they started in.
    const order = [...pages.keys()].sort((a, b) => (a % 3) - (b % 3) || b - a);
    for (const i of order) {
      const p = pages[i];
      if (p.url().includes('/interaction/')) {
        if (await p.$('input[name="login"]')) await idpForm(p, 'alice');
        else await p.click('button[type="submit"]');
      }
      await p.waitForURL(`${app}/tab/${i}?q=${i}`);
      assert.equal(await p.textContent('#who'), 'Signed in as alice', `tab ${i}`);
    }
    const left = (await context.cookies(app)).filter((c) => c.name.startsWith('_portcullis_login_'));
    assert.deepEqual(left, [], 'every attempt cookie cleared');
    // A callback replayed in a signed-in browser (the back button) lands on the app, not an error.
    await context.close();
  });

  it('signs in once for two apps on two hosts and signs out of both from either', async () => {
    const [one, two] = hosts.map((h) => `http://${h}:${s.listen}`);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${one}/console`);
    assert.ok(page.url().startsWith(`${s.idp}/interaction/`), page.url());
    await idpForm(page, 'alice');
    await page.waitForURL(`${one}/console`);
    assert.equal(await page.textContent('#who'), 'Signed in as alice');
    // The other app: no login at all (no visit to the IdP).
    const visited = [];
    page.on('request', (r) => { if (r.isNavigationRequest()) visited.push(r.url()); });
    await page.goto(`${two}/grafana`);
    assert.equal(page.url(), `${two}/grafana`);
    assert.equal(await page.textContent('#who'), 'Signed in as alice');
    assert.ok(!visited.some((u) => u.startsWith(s.idp)), `went to the IdP: ${visited}`);
    const cookie = (await context.cookies(two)).find((c) => c.name === '_portcullis');
    assert.equal(cookie.domain, '.portcullis.test');
    // Sign out on the second app: the IdP session ends, and the first app asks for a login again.
    await page.click('#signout');
    await page.waitForURL(/\/session\/end/);
    await page.click('button[name="logout"]');
    await page.waitForURL((u) => !u.toString().includes('/session/end'));
    assert.deepEqual((await context.cookies(one)).filter((c) => /^_portcullis(_\d+|_hint)?$/.test(c.name)), [], 'session cookies cleared');
    await page.goto(`${one}/console`);
    assert.ok(page.url().startsWith(`${s.idp}/interaction/`), `app one signed out: ${page.url()}`);
    assert.ok(await page.$('input[name="login"]'), 'the IdP asks for credentials: its session ended');
    await context.close();
  });
});
