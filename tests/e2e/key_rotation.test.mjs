// Cookie key rotation without logouts, across two Envoy replicas restarted one at a time with new
// configurations (a rolling change): add a key (the first seals, every key opens), promote it, retire
// the old one. A session from before each step stays signed in on both replicas at every moment; a
// session sealed by a retired key means a fresh login, never an error.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import { envoyConfig, pluginConfig, portcullisFilter } from '../lib/envoy-config.mjs';
import { get, idpLogin, Jar } from '../lib/http.mjs';
import { freePort, sleep, startEcho, startEnvoy, startIdp, waitFilterReady, WASM } from '../lib/stack.mjs';

const K1 = { id: 'k1', secret: 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=' };
const K2 = { id: 'k2', secret: 'YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=' };
const nav = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };

let idp; let echo; let ports;
const replicas = {};

before(async () => {
  const [idpPort, up, la, aa, lb, ab] = await Promise.all(Array.from({ length: 6 }, freePort));
  ports = { idpPort, up, A: { listen: la, admin: aa }, B: { listen: lb, admin: ab } };
  idp = await startIdp({ port: idpPort, origins: [`http://localhost:${la}`, `http://localhost:${lb}`] });
  echo = await startEcho({ port: up });
  await Promise.all(['A', 'B'].map((r) => deploy(r, [K1])));
});
after(() => { for (const e of Object.values(replicas)) e.stop(); echo?.stop(); idp?.stop(); });

const url = (r) => `http://localhost:${ports[r].listen}`;

/** (Re)starts replica `r` with this key ring: a rolling configuration change of one replica. */
async function deploy(r, keys) {
  if (replicas[r]) { replicas[r].stop(); await sleep(300); }
  const plugin = pluginConfig({ idpPort: ports.idpPort, overrides: { cookie: { keys } } });
  const cfg = envoyConfig({ listen: ports[r].listen, admin: ports[r].admin, upstream: ports.up, idp: ports.idpPort, filters: [portcullisFilter(WASM, plugin)] });
  replicas[r] = await startEnvoy({ name: `rotation-${r}-${keys.map((k) => k.id).join('-')}`, cfg });
  await waitFilterReady(url(r));
}

async function signIn(r) {
  const jar = new Jar();
  const start = await get(`${url(r)}/app`, { headers: nav, jar });
  const done = await get(await idpLogin(start.headers.location, 'alice'), { headers: nav, jar });
  assert.equal(done.status, 302);
  return jar;
}

/** Both replicas, several fresh connections each (both workers): signed in everywhere. */
async function assertSignedIn(jar, what) {
  for (const r of ['A', 'B']) {
    for (let i = 0; i < 4; i += 1) {
      const res = await get(`${url(r)}/app`, { jar, headers: { accept: 'application/json' } });
      assert.equal(res.status, 200, `${what}: replica ${r} said ${res.status}`);
      assert.equal(res.json().headers['x-forwarded-user'], 'alice');
    }
  }
}

it('rotates the cookie key across two replicas without logging anyone out', async () => {
  const early = await signIn('A');
  assert.match(early.get('_portcullis'), /^k1\./);
  await assertSignedIn(early, 'before');

  // 1. Add k2 behind k1, one replica at a time: k1 still seals, both open.
  await deploy('A', [K1, K2]); await assertSignedIn(early, 'A has k1,k2');
  await deploy('B', [K1, K2]); await assertSignedIn(early, 'both have k1,k2');

  // 2. Promote k2. While only A has, A seals with k2 and B (k1,k2) opens it.
  await deploy('A', [K2, K1]);
  await assertSignedIn(early, 'A promoted k2');
  const late = await signIn('A');
  assert.match(late.get('_portcullis'), /^k2\./);
  await assertSignedIn(late, 'a k2 session while B still seals with k1');
  await deploy('B', [K2, K1]);
  await assertSignedIn(early, 'both promoted k2');
  await assertSignedIn(late, 'both promoted k2');

  // 3. Retire k1: the k2 session lives on; the k1 session means a fresh login, not an error.
  await deploy('A', [K2]);
  await deploy('B', [K2]);
  await assertSignedIn(late, 'k1 retired');
  for (const r of ['A', 'B']) {
    const api = await get(`${url(r)}/app`, { jar: early, headers: { accept: 'application/json' } });
    assert.equal(api.status, 401, `replica ${r}: an API call with a retired key's session`);
    const page = await get(`${url(r)}/app`, { jar: early, headers: nav });
    assert.equal(page.status, 302, `replica ${r}: a navigation logs in again`);
    assert.ok(page.headers.location.startsWith(`http://127.0.0.1:${ports.idpPort}/auth?`), page.headers.location);
  }
});
