// Checks the test IdP (tests/idp/server.mjs) end to end, without Envoy: it starts the IdP on a free
// loopback port, drives its login (dev interactions) with fetch and checks the features the e2e tests
// rely on. Run from the repository root: `node tests/idp/check-features.mjs` (exit 1 on any failure).
//   - existing logins unchanged (opaque access token for userinfo, scope claims in the ID token)
//   - JWT access tokens (RFC 9068) for a resource (RFC 8707) from the authorization code flow
//   - the client credentials grant, for two audiences
//   - introspection (RFC 7662)
//   - a user whose email/groups are released only at the userinfo endpoint
// CHECK_VERBOSE=1 prints every decoded token and response; IDP_SERVER=<file> checks another server file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = process.env.IDP_SERVER || path.join(HERE, 'server.mjs');
const VERBOSE = !!process.env.CHECK_VERBOSE;
const APP = 'http://localhost:8080';
const REDIRECT_URI = `${APP}/oauth2/callback`;
const API = 'api://portcullis-demo';
const OTHER = 'api://other';
const OPAQUE = 'api://opaque';
const SECRETS = {
  portcullis: 'portcullis-secret',
  'portcullis-api': 'portcullis-api-secret',
  'svc-worker': 'svc-worker-secret',
  'portcullis-introspect': 'portcullis-introspect-secret',
};

// ----- plumbing -------------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startIdp() {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, IDP_PORT: String(port), APP_ORIGINS: APP }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const issuer = `http://127.0.0.1:${port}`;
  const end = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the IdP exited (${child.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${issuer}/.well-known/openid-configuration`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > end) { child.kill('SIGKILL'); throw new Error(`the IdP did not start:\n${log}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { issuer, child, log: () => log };
}

/** Cookies by name for one host (oidc-provider scopes its interaction cookies by path; names suffice). */
class Jar {
  constructor() { this.c = new Map(); }
  header() { return [...this.c].map(([k, v]) => `${k}=${v}`).join('; '); }
  take(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)
        || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
      this.c.delete(name);
      if (!gone) this.c.set(name, pair.slice(i + 1).trim());
    }
  }
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const form = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== undefined)).toString();

function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
const isJwt = (t) => typeof t === 'string' && t.split('.').length === 3;

async function verifyJwt(issuer, jwt) {
  const { header } = decodeJwt(jwt);
  const { keys } = await (await fetch(`${issuer}/jwks`)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} in the JWKS`);
  assert.equal(header.alg, 'RS256');
  const [h, p, s] = jwt.split('.');
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  assert.ok(ok, 'JWT signature verifies against the JWKS');
  return decodeJwt(jwt);
}

/**
 * A browser login at the IdP: GET /auth -> 303 /interaction/<uid> (login form) -> POST
 * prompt=login&login=<user>&password=x -> 303 /auth/<uid> -> 303 /interaction/<uid2> (consent form) ->
 * POST prompt=consent -> 303 /auth/<uid2> -> 303 <redirect_uri>?code=...&state=...&iss=...
 * Returns the callback's parameters and the request trace.
 */
async function authorize(issuer, { clientId, user, scope = 'openid email profile', resource, jar = new Jar() }) {
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(8));
  const nonce = b64url(crypto.randomBytes(8));
  const q = form({
    client_id: clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope, state, nonce,
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256', resource,
  });
  let url = `${issuer}/auth?${q}`;
  const trace = [];
  for (let step = 0; step < 12; step += 1) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    trace.push(`GET ${new URL(url).pathname} -> ${res.status}`);
    let next;
    if (res.status >= 300 && res.status < 400) {
      next = new URL(res.headers.get('location'), url).toString();
    } else {
      assert.equal(res.status, 200, `GET ${url}`);
      const body = await res.text();
      const action = (body.match(/<form[^>]*action="([^"]+)"/) || [])[1];
      assert.ok(action, `a form at ${url}`);
      const isLogin = body.includes('name="prompt" value="login"');
      const post = await fetch(new URL(action, url), {
        method: 'POST', redirect: 'manual',
        headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: isLogin ? form({ prompt: 'login', login: user, password: 'x' }) : 'prompt=consent',
      });
      jar.take(post);
      trace.push(`POST ${action} (${isLogin ? `prompt=login&login=${user}&password=x` : 'prompt=consent'}) -> ${post.status}`);
      assert.ok(post.status >= 300 && post.status < 400, `form post answered ${post.status}`);
      next = new URL(post.headers.get('location'), url).toString();
    }
    if (next.startsWith(REDIRECT_URI)) {
      trace.push(`-> ${REDIRECT_URI}?${[...new URL(next).searchParams.keys()].join('&')}`);
      const p = Object.fromEntries(new URL(next).searchParams);
      if (p.state !== undefined) assert.equal(p.state, state);
      return { ...p, verifier, nonce, trace };
    }
    url = next;
  }
  throw new Error('the login did not finish');
}

async function token(issuer, clientId, params, { auth = 'basic' } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'basic') headers.authorization = basic(clientId, SECRETS[clientId]);
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body: form(params) });
  return { status: res.status, body: await res.json() };
}

/** authorize + code exchange. */
async function login(issuer, opts) {
  const cb = await authorize(issuer, opts);
  assert.ok(cb.code, `a code (callback: ${JSON.stringify(cb)})`);
  const t = await token(issuer, opts.clientId, {
    grant_type: 'authorization_code', code: cb.code, redirect_uri: REDIRECT_URI, code_verifier: cb.verifier, resource: opts.tokenResource,
  });
  assert.equal(t.status, 200, `token endpoint: ${JSON.stringify(t.body)}`);
  return { ...t.body, nonce: cb.nonce, trace: cb.trace };
}

async function userinfo(issuer, accessToken) {
  const res = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, body: await res.json().catch(() => null), wwwAuthenticate: res.headers.get('www-authenticate') };
}

async function introspect(issuer, tokenValue, { clientId = 'portcullis-introspect', auth = 'basic', hint } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = { token: tokenValue, token_type_hint: hint };
  if (auth === 'basic') headers.authorization = basic(clientId, SECRETS[clientId]);
  if (auth === 'none') body.client_id = clientId;
  const res = await fetch(`${issuer}/token/introspection`, { method: 'POST', headers, body: form(body) });
  return { status: res.status, body: await res.json() };
}

// ----- the checks -----------------------------------------------------------------------------------

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL ${name}\n     ${String(e.stack || e).split('\n').slice(0, 6).join('\n     ')}`);
  }
}
const show = (label, v) => { if (VERBOSE) console.log(`     ${label}: ${JSON.stringify(v, null, 2).replace(/\n/g, '\n     ')}`); };

// What the ID token holds (no at_hash, auth_time or jti); `sid` since the `portcullis` client registered
// for back-channel logout with backchannel_logout_session_required.
const ID_TOKEN_KEYS = ['aud', 'email', 'email_verified', 'exp', 'groups', 'iat', 'iss', 'name', 'nonce', 'preferred_username', 'sid', 'sub'];

const idp = await startIdp();
const { issuer } = idp;
console.log(`IdP ${SERVER} on ${issuer}`);

try {
  await check('discovery lists userinfo_endpoint (/me) and introspection_endpoint (/token/introspection)', async () => {
    const d = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    assert.equal(d.userinfo_endpoint, `${issuer}/me`);
    assert.equal(d.introspection_endpoint, `${issuer}/token/introspection`);
    assert.equal(d.token_endpoint, `${issuer}/token`);
    assert.equal(d.jwks_uri, `${issuer}/jwks`);
    assert.ok(d.grant_types_supported.includes('client_credentials'));
    show('discovery', d);
  });

  let aliceOpaque;
  await check('existing login unchanged: opaque access token, scope claims in the ID token, userinfo works', async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'alice' });
    show('token response', { ...t, trace: undefined });
    assert.ok(!isJwt(t.access_token), 'opaque access token');
    assert.equal(t.token_type, 'Bearer');
    assert.equal(t.scope, 'openid email profile');
    assert.equal(t.expires_in, 3600);
    assert.equal(t.refresh_token, undefined);
    const { header, payload } = await verifyJwt(issuer, t.id_token);
    show('id_token', { header, payload });
    assert.deepEqual(Object.keys(payload).sort(), ID_TOKEN_KEYS);
    assert.equal(header.typ, undefined);
    assert.equal(payload.aud, 'portcullis');
    assert.equal(payload.iss, issuer);
    assert.equal(payload.nonce, t.nonce);
    assert.deepEqual([payload.sub, payload.email, payload.email_verified, payload.name, payload.preferred_username, payload.groups],
      ['alice', 'alice@example.com', true, 'Alice Example', 'alice', ['admins', 'staff']]);
    const ui = await userinfo(issuer, t.access_token);
    show('userinfo', ui);
    assert.equal(ui.status, 200);
    assert.deepEqual(ui.body, { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example', preferred_username: 'alice', groups: ['admins', 'staff'] });
    aliceOpaque = t.access_token;
    console.log(`     login sequence: ${t.trace.join('\n                     ')}`);
  });

  await check(`code flow + resource=${API} (at /auth only): RFC 9068 JWT access token, ID token as before`, async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'alice', scope: 'openid email profile read write', resource: API });
    show('token response', { ...t, trace: undefined });
    assert.ok(isJwt(t.access_token), 'JWT access token');
    assert.equal(t.scope, 'read write', 'the token response scope is the access token\'s (resource) scope');
    const at = await verifyJwt(issuer, t.access_token);
    show('access_token', at);
    assert.equal(at.header.typ, 'at+jwt');
    assert.deepEqual(Object.keys(at.payload).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
    assert.equal(at.payload.aud, API, 'aud is a plain string');
    assert.equal(at.payload.scope, 'read write', 'scope is a space-separated string');
    assert.equal(at.payload.client_id, 'portcullis');
    assert.equal(at.payload.sub, 'alice');
    assert.equal(at.payload.iss, issuer);
    assert.equal(at.payload.exp - at.payload.iat, 3600);
    const id = await verifyJwt(issuer, t.id_token);
    show('id_token', id);
    assert.deepEqual(Object.keys(id.payload).sort(), ID_TOKEN_KEYS);
    assert.equal(id.payload.aud, 'portcullis');
    assert.equal(id.payload.email, 'alice@example.com');
    assert.deepEqual(id.payload.groups, ['admins', 'staff']);
    const ui = await userinfo(issuer, t.access_token);
    show('userinfo with the JWT', ui);
    assert.equal(ui.status, 401, 'oidc-provider refuses access tokens with an audience at userinfo');
    assert.equal(ui.body.error, 'invalid_token');
  });

  await check(`code flow + resource=${API} at /auth and /token: same JWT`, async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'bob', scope: 'openid email profile read', resource: API, tokenResource: API });
    const at = await verifyJwt(issuer, t.access_token);
    assert.equal(at.payload.aud, API);
    assert.equal(at.payload.scope, 'read');
    assert.equal(at.payload.sub, 'bob');
  });

  await check('code flow, resource only at /token (not at /auth): refused with invalid_target', async () => {
    const cb = await authorize(issuer, { clientId: 'portcullis', user: 'alice', scope: 'openid email profile read write' });
    const t = await token(issuer, 'portcullis', { grant_type: 'authorization_code', code: cb.code, redirect_uri: REDIRECT_URI, code_verifier: cb.verifier, resource: API });
    show('token response', t);
    assert.equal(t.status, 400);
    assert.equal(t.body.error, 'invalid_target');
  });

  await check(`code flow + resource=${OTHER}: JWT for the other audience`, async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'alice', scope: 'openid email profile read write', resource: OTHER });
    const at = await verifyJwt(issuer, t.access_token);
    assert.equal(at.payload.aud, OTHER);
  });

  await check('code flow + an unknown resource: error=invalid_target at the callback', async () => {
    const cb = await authorize(issuer, { clientId: 'portcullis', user: 'alice', resource: 'api://nope' });
    show('callback', cb);
    assert.equal(cb.error, 'invalid_target');
    assert.equal(cb.code, undefined);
  });

  await check(`client portcullis-api (default resource ${API}), scope "openid email profile read write": JWT`, async () => {
    const t = await login(issuer, { clientId: 'portcullis-api', user: 'alice', scope: 'openid email profile read write' });
    const at = await verifyJwt(issuer, t.access_token);
    show('access_token', at);
    assert.equal(at.payload.aud, API);
    assert.equal(at.payload.scope, 'read write');
    assert.equal(at.payload.client_id, 'portcullis-api');
    const id = await verifyJwt(issuer, t.id_token);
    assert.equal(id.payload.aud, 'portcullis-api');
    assert.deepEqual(Object.keys(id.payload).sort(), ID_TOKEN_KEYS.filter((k) => k !== "sid"), "no sid: this client has no back-channel logout");
  });

  await check('client portcullis-api, default scopes "openid email profile": JWT without a scope claim', async () => {
    const t = await login(issuer, { clientId: 'portcullis-api', user: 'alice' });
    show('token response', { ...t, trace: undefined });
    const at = await verifyJwt(issuer, t.access_token);
    show('access_token', at);
    assert.equal(at.payload.aud, API);
    assert.equal(at.payload.scope, undefined);
    assert.equal(t.scope, '', 'the token response carries scope ""');
  });

  let ccJwt;
  await check(`client credentials (svc-worker, resource=${API}, scope="read write"): JWT, sub = client_id`, async () => {
    const t = await token(issuer, 'svc-worker', { grant_type: 'client_credentials', resource: API, scope: 'read write' });
    show('token response', t);
    assert.equal(t.status, 200);
    assert.equal(t.body.token_type, 'Bearer');
    assert.equal(t.body.scope, 'read write');
    assert.equal(t.body.expires_in, 600);
    const at = await verifyJwt(issuer, t.body.access_token);
    show('access_token', at);
    assert.equal(at.header.typ, 'at+jwt');
    assert.deepEqual(Object.keys(at.payload).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
    assert.equal(at.payload.aud, API);
    assert.equal(at.payload.sub, 'svc-worker');
    assert.equal(at.payload.client_id, 'svc-worker');
    assert.equal(at.payload.scope, 'read write');
    assert.equal(at.payload.exp - at.payload.iat, 600);
    ccJwt = t.body.access_token;
  });

  await check(`client credentials for ${OTHER}, scope=read: JWT with aud ${OTHER}, scope "read"`, async () => {
    const t = await token(issuer, 'svc-worker', { grant_type: 'client_credentials', resource: OTHER, scope: 'read' });
    assert.equal(t.status, 200);
    const at = await verifyJwt(issuer, t.body.access_token);
    show('access_token', at);
    assert.equal(at.payload.aud, OTHER);
    assert.equal(at.payload.scope, 'read');
  });

  await check('client credentials refusals: wrong secret 401 invalid_client; unknown resource 400 invalid_target; code-flow client 400', async () => {
    const bad = await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: basic('svc-worker', 'nope'), 'content-type': 'application/x-www-form-urlencoded' }, body: form({ grant_type: 'client_credentials', resource: API }) });
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).error, 'invalid_client');
    const t = await token(issuer, 'svc-worker', { grant_type: 'client_credentials', resource: 'api://nope', scope: 'read' });
    assert.equal(t.status, 400);
    assert.equal(t.body.error, 'invalid_target');
    const c = await token(issuer, 'portcullis', { grant_type: 'client_credentials', resource: API, scope: 'read' });
    show('client_credentials with the portcullis client', c);
    assert.equal(c.status, 400);
    assert.equal(c.body.error, 'invalid_request');
    assert.match(c.body.error_description, /grant type is not allowed/);
  });

  let ccOpaque;
  await check(`client credentials for ${OPAQUE}: opaque token; introspection active with aud/scope/client_id`, async () => {
    const t = await token(issuer, 'svc-worker', { grant_type: 'client_credentials', resource: OPAQUE, scope: 'read write' });
    show('token response', t);
    assert.equal(t.status, 200);
    assert.ok(!isJwt(t.body.access_token));
    ccOpaque = t.body.access_token;
    const r = await introspect(issuer, ccOpaque);
    show('introspection', r);
    assert.equal(r.status, 200);
    assert.equal(r.body.active, true);
    assert.equal(r.body.client_id, 'svc-worker');
    assert.equal(r.body.aud, OPAQUE);
    assert.equal(r.body.scope, 'read write');
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.iss, issuer);
    assert.equal(r.body.sub, undefined, 'client credentials tokens introspect without sub');
    assert.equal(r.body.exp - r.body.iat, 600);
  });

  await check('introspection of the opaque login access token: active, sub alice, no aud', async () => {
    const r = await introspect(issuer, aliceOpaque);
    show('introspection', r);
    assert.equal(r.body.active, true);
    assert.equal(r.body.sub, 'alice');
    assert.equal(r.body.client_id, 'portcullis');
    assert.equal(r.body.scope, 'openid email profile');
    assert.equal(r.body.aud, undefined);
    assert.equal(r.body.token_type, 'Bearer');
    const own = await introspect(issuer, aliceOpaque, { clientId: 'portcullis' });
    assert.equal(own.body.active, true, 'the portcullis client may introspect too');
  });

  await check(`code flow + resource=${OPAQUE}: opaque user token with an audience; introspection shows sub and aud`, async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'carol', scope: 'openid email profile read', resource: OPAQUE });
    assert.ok(!isJwt(t.access_token));
    assert.equal(t.scope, 'read');
    const r = await introspect(issuer, t.access_token);
    show('introspection', r);
    assert.equal(r.body.active, true);
    assert.equal(r.body.sub, 'carol');
    assert.equal(r.body.aud, OPAQUE);
    assert.equal(r.body.scope, 'read');
    assert.equal(r.body.client_id, 'portcullis');
    const ui = await userinfo(issuer, t.access_token);
    show('userinfo with it', ui);
    assert.equal(ui.status, 403, 'its scope lacks openid (and it has an audience): no userinfo');
    assert.equal(ui.body.error, 'insufficient_scope');
  });

  await check('introspection: garbage -> active:false; JWT -> 400 unsupported_token_type; public client on a foreign token -> active:false', async () => {
    const g = await introspect(issuer, 'not-a-token');
    show('garbage', g);
    assert.equal(g.status, 200);
    assert.deepEqual(g.body, { active: false });
    const j = await introspect(issuer, ccJwt);
    show('jwt', j);
    assert.equal(j.status, 400);
    assert.equal(j.body.error, 'unsupported_token_type');
    const pub = await introspect(issuer, ccOpaque, { clientId: 'portcullis-public', auth: 'none' });
    show('public client', pub);
    assert.equal(pub.status, 200);
    assert.deepEqual(pub.body, { active: false });
  });

  await check('introspection client auth: none -> 400 invalid_request; wrong secret -> 401 invalid_client; basic and post both accepted', async () => {
    const none = await fetch(`${issuer}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: ccOpaque }) });
    const noneBody = await none.json();
    show('no client auth', { status: none.status, body: noneBody });
    assert.equal(none.status, 400);
    assert.equal(noneBody.error, 'invalid_request');
    const bad = await fetch(`${issuer}/token/introspection`, { method: 'POST', headers: { authorization: basic('portcullis-introspect', 'nope'), 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: ccOpaque }) });
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).error, 'invalid_client');
    const post = await fetch(`${issuer}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: ccOpaque, client_id: 'portcullis-introspect', client_secret: SECRETS['portcullis-introspect'] }) });
    const postBody = await post.json();
    show('client_secret_post for a client_secret_basic client', { status: post.status, body: postBody });
    assert.equal(post.status, 200, 'oidc-provider accepts client_secret_post and _basic interchangeably');
    assert.equal(postBody.active, true);
  });

  await check('user uionly: email/email_verified/groups only at userinfo, not in the ID token', async () => {
    const t = await login(issuer, { clientId: 'portcullis', user: 'uionly' });
    const id = await verifyJwt(issuer, t.id_token);
    show('id_token', id);
    for (const c of ['email', 'email_verified', 'groups']) assert.equal(id.payload[c], undefined, `${c} not in the ID token`);
    assert.equal(id.payload.sub, 'uionly');
    assert.equal(id.payload.name, 'Uionly Example');
    assert.equal(id.payload.preferred_username, 'uionly');
    const ui = await userinfo(issuer, t.access_token);
    show('userinfo', ui);
    assert.equal(ui.status, 200);
    assert.deepEqual(ui.body, { sub: 'uionly', email: 'uionly@example.com', email_verified: true, name: 'Uionly Example', preferred_username: 'uionly', groups: ['staff'] });
  });
} finally {
  idp.child.kill('SIGKILL');
}

const failed = results.filter(([, e]) => e);
console.log(`${results.length - failed.length}/${results.length} checks passed`);
if (failed.length && VERBOSE) console.log(idp.log());
process.exit(failed.length ? 1 : 0);
