// One real browser: Debian's Chromium (headless, driven by playwright-core) signs in through Envoy and
// oidc-provider, sees the protected page with its identity, then signs out everywhere.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import { chromium } from 'playwright-core';

import { startStack } from '../lib/stack.mjs';

let s;
let browser;
before(async () => {
  s = await startStack({ name: 'browser' });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); s?.stop(); });

it('chromium signs in, sees the protected page, and signs out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/reports?q=1`);
  assert.ok(page.url().startsWith(`${s.idp}/interaction/`), `at the IdP login: ${page.url()}`);
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'anything');
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/interaction\//);
  await page.click('button[type="submit"]'); // consent
  await page.waitForURL(`${s.app}/reports?q=1`);
  assert.equal(await page.textContent('#who'), 'Signed in as alice');
  assert.equal(await page.textContent('#email'), 'alice@example.com');
  assert.equal(await page.textContent('#groups'), 'admins,staff');
  const cookies = await context.cookies(s.app);
  const session = cookies.find((c) => c.name === '_portcullis');
  assert.ok(session, 'session cookie stored');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');
  assert.ok(!(await page.textContent('#echo')).includes('_portcullis'), 'the upstream never sees our cookie');
  await page.screenshot({ path: new URL('../../target/e2e/signed-in.png', import.meta.url).pathname }).catch(() => {});

  await page.click('#signout');
  await page.waitForURL(/\/session\/end/);
  await page.click('button[name="logout"]');
  await page.waitForURL((u) => u.toString().startsWith(`${s.idp}/interaction/`) || u.toString() === `${s.app}/`);
  // Back at the app, which is protected again: a new login begins at the IdP.
  assert.ok(page.url().startsWith(`${s.idp}/interaction/`), `signed out everywhere: ${page.url()}`);
  const after = await context.cookies(s.app);
  assert.equal(after.find((c) => c.name === '_portcullis'), undefined, 'session cookie cleared');
  await context.close();
});
