// Routes, requirements, mapped headers and bearer tokens through real Envoy and the real oidc-provider:
// a public route, a group-only route, a scope-by-method API route, bearer tokens from oidc-provider's
// client credentials grant (right audience, wrong audience, expired), a custom bearer header and a
// mapped upstream header.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { bearer, serviceToken } from '../lib/flows.mjs';
import { get, idpLogin, Jar, request } from '../lib/http.mjs';
import { sleep, startStack } from '../lib/stack.mjs';

const nav = { accept: 'text/html' };
const api = { accept: 'application/json' };

const plugin = (idp) => ({
  claims: { headers: [{ name: 'X-Spinnaker-User', from: 'email' }] },
  bearer: { issuers: [{ issuer: idp, audiences: ['api://portcullis-demo', 'api://opaque'], leeway_seconds: 0,
    introspection: { client_id: 'portcullis-introspect', client_secret: 'portcullis-introspect-secret' } }] },
  routes: {
    rules: [
      { name: 'admin', prefix: '/admin', action: 'authenticate', require: { groups: ['admins'] } },
      { name: 'internal', prefix: '/internal', action: 'deny' },
      { name: 'api', prefix: '/api', action: 'authenticate', accept: 'bearer',
        require: { scopes_by_method: { GET: ['read'], HEAD: ['read'], POST: ['write'] } } },
      { name: 'flyte', prefix: '/flyteidl', action: 'authenticate', accept: 'bearer', bearer_header: 'flyte-authorization' },
    ],
  },
});

async function login(s, user) {
  const jar = new Jar();
  const start = await get(`${s.app}/`, { headers: nav, jar });
  assert.equal(start.status, 302);
  const done = await get(await idpLogin(start.headers.location, user), { headers: nav, jar });
  assert.equal(done.status, 302, done.body);
  return jar;
}


describe('routes, requirements and bearer tokens', () => {
  let s;
  before(async () => { s = await startStack({ plugin, name: 'policy' }); });
  after(() => s?.stop());

  it('a public route is forwarded without login, spoofed identity headers stripped', async () => {
    const r = await get(`${s.app}/public/x`, { headers: { ...api, 'x-forwarded-user': 'root', 'X-Spinnaker-User': 'root' } });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body);
    assert.equal(echo.headers['x-forwarded-user'], undefined);
    assert.equal(echo.headers['x-spinnaker-user'], undefined);
  });

  it('a group-only route admits alice (admins) and refuses bob (403 naming the requirement)', async () => {
    const alice = await login(s, 'alice');
    const bob = await login(s, 'bob');
    const ok = await get(`${s.app}/admin/users`, { headers: api, jar: alice });
    assert.equal(ok.status, 200);
    const echo = JSON.parse(ok.body);
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    const no = await get(`${s.app}/admin/users`, { headers: api, jar: bob });
    assert.equal(no.status, 403);
    assert.deepEqual([JSON.parse(no.body).error, JSON.parse(no.body).requirement, JSON.parse(no.body).rule],
      ['forbidden_group', 'groups', 'admin']);
    // bob is still fine elsewhere, and the mapped header carries his verified email, not the spoof.
    const home = await get(`${s.app}/home`, { headers: { ...api, 'x-spinnaker-user': 'alice@example.com' }, jar: bob });
    assert.equal(home.status, 200);
    assert.equal(JSON.parse(home.body).headers['x-spinnaker-user'], 'bob@example.com');
    const denied = await get(`${s.app}/internal/x`, { headers: api, jar: alice });
    assert.equal(denied.status, 403);
    assert.equal(JSON.parse(denied.body).error, 'route_denied');
    // An unnormalisable path is refused before any rule is tried.
    const bad = await get(`${s.app}/admin/..%2F..%2Fx`, { headers: api, jar: bob });
    assert.equal(bad.status, 400);
    // The core counts every decision by reason and every denial by rule; the filter exports the
    // counts on its next tick.
    let stats = '';
    for (let i = 0; i < 30 && !/portcullis_decisions_total\.reason\.forbidden_group: [1-9]/.test(stats); i += 1) {
      await sleep(200);
      stats = (await get(`${s.admin}/stats?filter=portcullis_`)).body;
    }
    assert.match(stats, /portcullis_policy_denials_total\.rule\.admin\.requirement\.groups: [1-9]/, stats);
    for (const name of ['forbidden_group', 'route_denied', 'path_invalid', 'authenticated']) {
      assert.match(stats, new RegExp(`portcullis_decisions_total\\.reason\\.${name}: [1-9]`), stats);
    }
  });

  it('client credentials: the service reaches the API as itself; GET needs read, POST write', async () => {
    const read = await serviceToken(s, { scope: 'read' });
    const rw = await serviceToken(s, { scope: 'read write' });
    const g = await get(`${s.app}/api/items`, { headers: bearer(read) });
    assert.equal(g.status, 200, g.body);
    const echo = JSON.parse(g.body);
    assert.equal(echo.headers['x-forwarded-user'], 'svc-worker');
    assert.equal(echo.headers.authorization, `Bearer ${read}`, 'the token itself goes upstream');
    const p = await request('POST', `${s.app}/api/items`, { headers: bearer(read), body: '{}' });
    assert.equal(p.status, 403);
    assert.match(p.headers['www-authenticate'], /error="insufficient_scope", scope="write"/);
    const p2 = await request('POST', `${s.app}/api/items`, { headers: bearer(rw), body: '{}' });
    assert.equal(p2.status, 200);
    const del = await request('DELETE', `${s.app}/api/items/1`, { headers: bearer(rw) });
    assert.equal(del.status, 403, 'a method with no scopes listed is refused');
  });

  it('a token for another audience, an expired one, none at all: 401 with a challenge, no redirect', async () => {
    const other = await serviceToken(s, { resource: 'api://other' });
    const r = await get(`${s.app}/api/items`, { headers: bearer(other) });
    assert.equal(r.status, 401);
    assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
    assert.equal(JSON.parse(r.body).code, 'bearer_wrong_audience');
    assert.equal(r.headers['set-cookie'], undefined);
    assert.equal(r.headers.location, undefined);

    const short = await serviceToken(s, { client: 'svc-short' });
    const fresh = await get(`${s.app}/api/items`, { headers: bearer(short) });
    assert.equal(fresh.status, 200, 'valid while it lives');
    // Three-second tokens; the filter's clock is the last one-second tick, so wait well past exp.
    await sleep(5000);
    const stale = await get(`${s.app}/api/items`, { headers: bearer(short) });
    assert.equal(stale.status, 401, 'refused once expired, even though it was cached');
    assert.equal(JSON.parse(stale.body).code, 'bearer_expired');

    const none = await get(`${s.app}/api/items`, { headers: nav });
    assert.equal(none.status, 401, 'a bearer route never redirects a browser');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="' + new URL(s.app).host + '"');
  });

  it('an opaque token is introspected at oidc-provider (RFC 7662); an unknown one is inactive', async () => {
    const opaque = await serviceToken(s, { resource: 'api://opaque', scope: 'read write' });
    assert.ok(!opaque.includes('.'), `an opaque token: ${opaque.length} chars`);
    const g = await get(`${s.app}/api/items`, { headers: bearer(opaque) });
    assert.equal(g.status, 200, g.body);
    assert.equal(JSON.parse(g.body).headers['x-forwarded-user'], 'svc-worker');
    const p = await request('POST', `${s.app}/api/items`, { headers: bearer(opaque), body: '{}' });
    assert.equal(p.status, 200, 'write scope from the introspection reply');
    const bad = await get(`${s.app}/api/items`, { headers: bearer('not-a-token-the-idp-issued') });
    assert.equal(bad.status, 401);
    assert.equal(JSON.parse(bad.body).code, 'bearer_inactive');
    assert.match(bad.headers['www-authenticate'], /error="invalid_token"/);
  });

  it('without claims.userinfo, claims the IdP releases only at userinfo are absent', async () => {
    const jar = await login(s, 'uionly');
    const h = JSON.parse((await get(`${s.app}/home`, { headers: api, jar })).body).headers;
    assert.equal(h['x-forwarded-user'], 'uionly');
    assert.equal(h['x-forwarded-email'], undefined);
    assert.equal(h['x-forwarded-groups'], undefined);
  });

  it('a route reading the token from flyte-authorization', async () => {
    const t = await serviceToken(s);
    const plain = await get(`${s.app}/flyteidl/x`, { headers: bearer(t) });
    assert.equal(plain.status, 401, 'Authorization is not this route\'s header');
    const r = await get(`${s.app}/flyteidl/x`, { headers: { ...api, 'flyte-authorization': `Bearer ${t}` } });
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).headers['x-forwarded-user'], 'svc-worker');
  });
});

describe('claims from the IdP\'s userinfo endpoint', () => {
  let s;
  before(async () => { s = await startStack({ plugin: { claims: { userinfo: true } }, name: 'userinfo' }); });
  after(() => s?.stop());

  it('a user whose email and groups exist only at userinfo gets them upstream', async () => {
    const jar = await login(s, 'uionly');
    const h = JSON.parse((await get(`${s.app}/home`, { headers: api, jar })).body).headers;
    assert.equal(h['x-forwarded-user'], 'uionly');
    assert.equal(h['x-forwarded-email'], 'uionly@example.com');
    assert.equal(h['x-forwarded-groups'], 'staff');
    // An ordinary user is unchanged (the ID token's claims win).
    const alice = await login(s, 'alice');
    const a = JSON.parse((await get(`${s.app}/home`, { headers: api, jar: alice })).body).headers;
    assert.equal(a['x-forwarded-groups'], 'admins,staff');
  });
});
