// Configuration refusal, the other client authentication methods, and a broken IdP — all through real
// Envoy and the real oidc-provider.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { bootstrapYaml, envoyConfig, pluginConfig, portcullisFilter } from '../lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../lib/http.mjs';
import { ENVOY, ROOT, startStack, WASM } from '../lib/stack.mjs';

const nav = { accept: 'text/html' };

function validate(plugin) {
  const file = path.join(ROOT, 'target/e2e/validate.yaml');
  fs.writeFileSync(file, bootstrapYaml(envoyConfig({ filters: [portcullisFilter(WASM, plugin)] })));
  const r = spawnSync(ENVOY, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id'], { encoding: 'utf8' });
  return { code: r.status, log: `${r.stdout}${r.stderr}` };
}

async function login(s, user) {
  const jar = new Jar();
  const start = await get(`${s.app}/`, { headers: nav, jar });
  assert.equal(start.status, 302);
  const done = await get(await idpLogin(start.headers.location, user), { headers: nav, jar });
  return { jar, done };
}

describe('configuration', () => {
  it('a valid plugin configuration passes envoy --mode validate', () => {
    const r = validate(pluginConfig());
    assert.equal(r.code, 0, r.log.slice(-1500));
  });

  for (const [what, plugin, field] of [
    ['a missing issuer', (() => { const p = pluginConfig(); delete p.issuer; return p; })(), 'missing field `issuer`'],
    ['a short cookie key', { ...pluginConfig(), cookie: { keys: [{ id: 'k', secret: 'c2hvcnQ=' }] } }, 'cookie.keys[0].secret'],
    ['an HMAC algorithm', { ...pluginConfig(), id_token: { allowed_algs: ['HS256'] } }, 'id_token.allowed_algs[0]'],
    ['a misspelt field', { ...pluginConfig(), public_path: ['/x'] }, 'unknown field `public_path`'],
    ['not JSON at all', '{nope', 'invalid plugin configuration'],
  ]) {
    it(`refuses ${what}, naming the field`, () => {
      const r = validate(plugin);
      assert.notEqual(r.code, 0, 'envoy must refuse the configuration');
      assert.ok(r.log.includes(field), `log should name ${field}:\n${r.log.slice(-1500)}`);
      assert.match(r.log, /Unable to create Wasm plugin portcullis|Failed to configure base Wasm plugin/);
    });
  }
});

describe('client authentication against the real IdP', () => {
  for (const [name, plugin] of [
    ['client_secret_post', { client_id: 'portcullis-post', client_secret: 'portcullis-post-secret', client_auth: 'client_secret_post' }],
    ['a public client (PKCE only)', { client_id: 'portcullis-public', client_secret: undefined }],
  ]) {
    it(`signs in with ${name}`, async () => {
      const s = await startStack({ name: `auth-${plugin.client_id}`, plugin });
      try {
        const { jar, done } = await login(s, 'frank');
        assert.equal(done.status, 302, done.body.slice(0, 300));
        const r = await get(`${s.app}/who`, { jar });
        assert.equal(r.json().headers['x-forwarded-user'], 'frank');
      } finally { s.stop(); }
    });
  }

  it('a wrong client secret ends in 502 and no session', async () => {
    const s = await startStack({ name: 'auth-wrong', plugin: { client_secret: 'not-the-secret' } });
    try {
      const { jar, done } = await login(s, 'gina');
      assert.equal(done.status, 502);
      assert.match(done.body, /token_endpoint_error/);
      assert.equal(jar.get('_portcullis'), undefined);
      assert.match(s.envoy.read(), /502 token_endpoint_error GET \/oauth2\/callback/);
    } finally { s.stop(); }
  });
});

describe('stateless sessions', () => {
  it('a session from one Envoy is served by another replica and survives a restart', async () => {
    const s = await startStack({ name: 'replicas' });
    try {
      const { jar, done } = await login(s, 'ivy');
      assert.equal(done.status, 302);
      const other = await s.replica('replicas-2');
      const r = await get(`${other}/x`, { jar });
      assert.equal(r.status, 200, r.body.slice(0, 200));
      assert.equal(r.json().headers['x-forwarded-user'], 'ivy');
      await s.restart();
      const again = await get(`${s.app}/x`, { jar });
      assert.equal(again.status, 200, again.body.slice(0, 200));
      assert.equal(again.json().headers['x-forwarded-user'], 'ivy');
    } finally { s.stop(); }
  });

  it('a replica with a different key ring does not accept the cookie', async () => {
    const s = await startStack({ name: 'foreign' });
    const t = await startStack({ name: 'foreign-2', plugin: { cookie: { keys: [{ id: 'demo1', secret: 'b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMTI=' }] } } });
    try {
      const { jar } = await login(s, 'jo');
      const r = await get(`${t.app}/x`, { jar, headers: { accept: 'application/json' } });
      assert.equal(r.status, 401, 'same key id, other secret: no session');
    } finally { s.stop(); t.stop(); }
  });
});

describe('a broken IdP', () => {
  it('IdP gone between authorization and callback: 503, a log line, no session, no panic', async () => {
    const s = await startStack({ name: 'idp-down' });
    try {
      const jar = new Jar();
      const start = await get(`${s.app}/`, { headers: nav, jar });
      const callback = await idpLogin(start.headers.location, 'hank');
      s.idpProc.stop();
      await new Promise((r) => setTimeout(r, 200));
      const r = await get(callback, { headers: { accept: 'application/json' }, jar });
      // Envoy reports the refused connection as its own 503.
      assert.equal(r.status, 503, `${r.status} ${r.body}`);
      assert.equal(r.json().error, 'token_endpoint_unavailable');
      assert.ok(r.headers['retry-after'], 'Retry-After');
      assert.equal(jar.get('_portcullis'), undefined);
      // The worker VM survived: it still answers.
      for (let i = 0; i < 6; i += 1) assert.equal((await get(`${s.app}/oauth2/ping`)).status, 200);
      const log = s.envoy.read();
      assert.ok(!/panicked|unreachable|Wasm VM failed/i.test(log), 'no VM crash');
    } finally { s.stop(); }
  });
});
