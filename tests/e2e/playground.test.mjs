// The configuration playground in a real browser: Debian's Chromium (headless, playwright-core) loads
// the static page, whose WebAssembly core checks the configuration and explains the request.
// Builds the playground first with scripts/playground-build.sh (incremental: seconds when nothing
// changed; on a fresh machine it installs wasm-bindgen-cli once, ~3 min) so it tests the current core.
//   cd tests && node --test e2e/playground.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, it } from 'node:test';

import { chromium } from 'playwright-core';

import { servePlayground } from '../../scripts/playground.mjs';

const repo = new URL('../../', import.meta.url).pathname;

let browser;
let served;
let page;
let example; // the page's own example configuration (it has the group-only rule `admin`)
before(async () => {
  execFileSync('scripts/playground-build.sh', { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
  served = await servePlayground({ port: 0 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(served.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 }).catch(() => {
    throw new Error(`the playground did not load: ${errors.join('; ')}`);
  });
  example = await page.inputValue('#config');
});
after(async () => { await browser?.close(); served?.server.close(); });

/** Sets the whole form (each test starts from the example configuration) and presses Explain. */
async function explain({ config = example, method = 'GET', url, headers = 'accept: text/html\nsec-fetch-mode: navigate', user, email = '', groups = '' }) {
  await page.fill('#config', config);
  await page.selectOption('#method', method);
  await page.fill('#url', url);
  await page.fill('#headers', headers);
  await page.setChecked('#signed-in', Boolean(user));
  if (user) {
    await page.fill('#user', user);
    await page.fill('#email', email);
    await page.fill('#groups', groups);
  }
  await page.click('#explain');
}

const visible = (sel) => page.isVisible(sel);
const textOf = (sel) => page.textContent(sel);

it('a configuration with a bad field shows the error naming that field', async () => {
  const cfg = JSON.parse(example);
  cfg.cookie.keys[0].secret = 'dG9vLXNob3J0'; // base64 of 9 bytes, not 32
  await explain({ config: JSON.stringify(cfg, null, 2), url: 'http://app.example.com/' });
  assert.ok(await visible('#config-error'), 'the error is shown');
  assert.equal(await visible('#decision'), false, 'no decision for a refused configuration');
  assert.equal(await textOf('#error-field'), 'cookie.keys[0].secret');
  assert.match(await textOf('#error-message'), /invalid plugin configuration: cookie\.keys\[0\]\.secret: /);

  // An unknown field (a typo) is refused too, and the message names it.
  delete cfg.cookie.keys[0].secret;
  cfg.cookie.keys[0].secrett = 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';
  await explain({ config: JSON.stringify(cfg), url: 'http://app.example.com/' });
  assert.match(await textOf('#error-message'), /unknown field `secrett`/);
});

it('a group-only route with a test session lacking the group is 403 naming the group', async () => {
  await explain({ url: 'http://app.example.com/admin/users', user: 'bob', email: 'bob@example.com', groups: 'dev, qa' });
  assert.equal(await visible('#config-error'), false);
  assert.ok(await visible('#decision'));
  assert.equal(await textOf('#rule'), 'admin — authenticate (session), requires {"groups":["platform-admins"]}');
  assert.equal(await textOf('#outcome'), 'forbidden');
  assert.equal(await textOf('#status'), '403');
  assert.equal(await textOf('#reason'), 'forbidden_group');
  assert.equal(await textOf('#requirement'),
    'require.groups (forbidden_group): requires platform-admins; the session has dev, qa');
  assert.match(await textOf('#summary'), /requires one of the groups \[platform-admins\]/);
  assert.equal(await visible('#upstream-block'), false, 'nothing goes upstream');
});

it('with the group it is forwarded, with the identity headers and without the spoofed one', async () => {
  await explain({
    url: 'http://app.example.com/admin/users',
    headers: 'accept: text/html\nsec-fetch-mode: navigate\nx-forwarded-user: mallory\ncookie: theme=dark',
    user: 'alice',
    email: 'alice@example.com',
    groups: 'platform-admins',
  });
  assert.equal(await textOf('#outcome'), 'forward');
  assert.equal(await textOf('#reason'), 'authenticated');
  assert.ok(await visible('#upstream-block'));
  const upstream = (await textOf('#upstream')).split('\n');
  assert.ok(upstream.includes('x-forwarded-user: alice'), upstream.join('\n'));
  assert.ok(upstream.includes('x-forwarded-email: alice@example.com'), upstream.join('\n'));
  assert.ok(upstream.includes('x-forwarded-groups: platform-admins'), upstream.join('\n'));
  assert.ok(upstream.includes('x-spinnaker-user: alice@example.com'), 'the mapped header of the example');
  assert.ok(upstream.includes('cookie: theme=dark'), 'the client\'s own cookie, without our session cookie');
  assert.ok(!upstream.some((h) => h.includes('mallory')), upstream.join('\n'));
  assert.ok(!(await textOf('#raw')).includes('_portcullis='), 'the sealed session is never shown');
});

it('without a session: a login redirect for a navigation, 401 for an API call', async () => {
  await explain({ url: 'http://app.example.com/reports/q3' });
  assert.equal(await textOf('#outcome'), 'login_redirect');
  assert.equal(await textOf('#status'), '302');
  assert.match(await textOf('#response'), /^location: https:\/\/login\.example\.com\/authorize\?response_type=code&client_id=console&/m);
  await explain({ url: 'http://app.example.com/reports/q3', headers: 'accept: application/json' });
  assert.equal(await textOf('#outcome'), 'unauthorized');
  assert.equal(await textOf('#status'), '401');
  assert.equal(await textOf('#reason'), 'login_required');
});
