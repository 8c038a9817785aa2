// lakeFS's web-identity login (issue 7) with the real lakeFS Python SDK (.venv-lakefs: lakefs 0.16.0,
// lakefs_sdk 1.88.0) against real Envoy + Portcullis + oidc-provider, and a small lakeFS stand-in upstream
// (tests/upstream/lakefs_stub.mjs) that answers as the user Portcullis names and counts every request.
//
// The helper's side is done over HTTP the way lakeFS's own sample does it: an authorization request as
// the IdP client `lakefs-cli` with PKCE, the verifier sent as `state`, and the code taken from the
// redirect to http://127.0.0.1:53595/callback (nothing listens there). Then
// `lakefs.client.from_web_identity(code, state, redirect_uri, ttl_seconds, host=Envoy)` posts them to
// POST /api/v1/sts/login, where Portcullis redeems the code at the IdP and mints its own JWT; the SDK's
// next call (GET /api/v1/user) carries it as a bearer token through Portcullis to the stub.
// Two stacks, 11 tests, 9 SDK runs (~1 s each): about 20-30 s on the 2-core machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { get, idpLogin, request } from '../lib/http.mjs';
import { ROOT, startStack } from '../lib/stack.mjs';
import { startLakefsStub } from '../upstream/lakefs_stub.mjs';

const PY = path.join(ROOT, '.venv-lakefs/bin/python');
const DRIVER = path.join(ROOT, 'tests/clients/lakefs_login.py');
const REDIRECT = 'http://127.0.0.1:53595/callback';
const STS_ISSUER = 'https://portcullis.invalid/sts';
const STS_AUDIENCE = 'portcullis';

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const api = { accept: 'application/json' };
const jsonPost = (url, body) => request('POST', url, {
  headers: { ...api, 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const bearer = (t) => ({ ...api, authorization: `Bearer ${t}` });

/** Runs the SDK driver; resolves to its JSON line (ok true/false). Fails on anything else. */
function sdk(args) {
  return new Promise((resolve, reject) => {
    execFile(PY, [DRIVER, ...args], { timeout: 60000, env: { ...process.env, HOME: path.join(ROOT, 'target/e2e') } }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop();
      try {
        const out = JSON.parse(line);
        if (err && err.code !== 3) throw new Error(`exit ${err.code}`);
        resolve(out);
      } catch (e) {
        reject(new Error(`lakefs_login.py ${args.join(' ')}: ${e.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

/** The helper's half of lakeFS's web identity login: a code for `user`, with the PKCE verifier as state. */
async function idpCode(s, user, { client = 'lakefs-cli' } = {}) {
  const verifier = b64u(crypto.randomBytes(32));
  const q = new URLSearchParams({
    client_id: client, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid email profile',
    code_challenge: b64u(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
    state: verifier,
  });
  const back = new URL(await idpLogin(`${s.idp}/auth?${q}`, user));
  assert.equal(`${back.origin}${back.pathname}`, REDIRECT, back.toString());
  assert.equal(back.searchParams.get('state'), verifier);
  const code = back.searchParams.get('code');
  assert.ok(code, back.toString());
  return { code, state: verifier, redirect_uri: REDIRECT };
}

// `--name=value`: a code or a verifier is random base64url and starts with '-' one time in 64, which
// argparse would read as an option (seen once in CI: "argument --state: expected one argument").
const loginArgs = (s, c, ttl, mode = 'web-identity') => [
  '--mode', mode, '--host', `http://127.0.0.1:${s.listen}`,
  `--code=${c.code}`, `--state=${c.state}`, `--redirect-uri=${c.redirect_uri}`, ...(ttl === undefined ? [] : ['--ttl', String(ttl)]),
];

function decode(token) {
  const [h, p, sig] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    input: Buffer.from(`${h}.${p}`),
    sig: Buffer.from(sig ?? '', 'base64url'),
  };
}

function sign(header, payload, key) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const sig = header.alg === 'EdDSA'
    ? crypto.sign(null, Buffer.from(input), key)
    : crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

/** Verifies `token` with the key /oauth2/jwks.json publishes under its kid (node:crypto, JWK import). */
function verifyWithJwks(token, jwks) {
  const { header, input, sig } = decode(token);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `a JWKS key for kid ${header.kid}`);
  const pub = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return header.alg === 'EdDSA'
    ? crypto.verify(null, input, pub, sig)
    : crypto.verify('sha256', input, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
}

/** A Portcullis token Portcullis minted, as the SDK received it: header, claims and lifetime. */
function assertMinted(token, { user, alg, kid, ttl }) {
  const { header, payload } = decode(token);
  assert.equal(header.alg, alg);
  assert.equal(header.kid, kid);
  assert.equal(payload.iss, STS_ISSUER);
  assert.ok(payload.aud === STS_AUDIENCE || (Array.isArray(payload.aud) && payload.aud.includes(STS_AUDIENCE)), JSON.stringify(payload.aud));
  assert.equal(payload.sub, user);
  assert.ok(Number.isInteger(payload.exp), `exp ${payload.exp}`);
  // The lifetime exactly (exp - iat, both from Portcullis's clock: no timing window to flake on a
  // loaded machine), and minted no later than now.
  assert.equal(payload.exp - payload.iat, ttl, `exp - iat, asked ${ttl}`);
  assert.ok(payload.iat <= now() + 1, `iat ${payload.iat} not in the future`);
  return payload;
}

function stsPlugin({ client, secret = null, key, maxTtl = 86400, defaultTtl = 3600 }) {
  // No bearer.issuers: the STS's own tokens are the only bearer tokens lakeFS's routes take.
  return {
    routes: { default: { action: 'authenticate', accept: 'bearer' } },
    sts: {
      path: '/api/v1/sts/login',
      authenticator_path: '/sts/login',
      client_id: client,
      client_secret: secret,
      redirect_uris: [REDIRECT],
      issuer: STS_ISSUER,
      audience: STS_AUDIENCE,
      default_ttl_seconds: defaultTtl,
      max_ttl_seconds: maxTtl,
      signing_keys: [key],
    },
  };
}

describe('lakeFS web identity with the public client lakefs-cli (PKCE verifier as state, EdDSA)', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const key = { kid: 'sts-1', alg: 'EdDSA', private_key_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
  let s;
  let stub;
  let minted; // a token the SDK received from Portcullis, for the refusal tests

  before(async () => {
    assert.ok(fs.existsSync(path.join(ROOT, '.venv-lakefs/.portcullis-stamp')), 'the lakeFS SDK (scripts/setup.sh clients)');
    stub = await startLakefsStub();
    s = await startStack({ name: 'lakefs', upstreamPort: stub.port, plugin: stsPlugin({ client: 'lakefs-cli', key }) });
  });
  after(async () => { s?.stop(); await stub?.close(); });

  it('from_web_identity logs in through Portcullis and the SDK then calls lakeFS as the user', async () => {
    const c = await idpCode(s, 'dave');
    stub.reset();
    const out = await sdk(loginArgs(s, c, 600));
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(out.host, `http://127.0.0.1:${s.listen}/api/v1`);
    assert.deepEqual(out.user, { id: 'dave', creation_date: 1700000000, friendly_name: 'dave', email: 'dave@example.com' });
    assertMinted(out.token, { user: 'dave', alg: 'EdDSA', kid: 'sts-1', ttl: 600 });
    // Only the SDK's user call reached lakeFS, with Portcullis's identity headers: the STS login did not.
    assert.equal(stub.count(), 1, JSON.stringify(stub.log));
    assert.equal(stub.log[0].method, 'GET');
    assert.equal(stub.log[0].path, '/api/v1/user');
    assert.equal(stub.log[0].user, 'dave');
    assert.equal(stub.log[0].email, 'dave@example.com');
    assert.equal(stub.log[0].client, 'python-lakefs');
    minted = out.token;
  });

  it('the SDK parses token_expiration as an integer (ttl honoured), and /oauth2/jwks.json verifies the token', async () => {
    const c = await idpCode(s, 'erin');
    const out = await sdk(loginArgs(s, c, 900, 'sdk-sts'));
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(out.user.id, 'erin');
    assert.equal(out.token_expiration_type, 'int');
    const claims = assertMinted(out.token, { user: 'erin', alg: 'EdDSA', kid: 'sts-1', ttl: 900 });
    assert.equal(claims.exp, out.token_expiration);

    const r = await get(`${s.app}/oauth2/jwks.json`);
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /json/);
    const jwks = r.json();
    const jwk = jwks.keys.find((k) => k.kid === 'sts-1');
    assert.equal(jwk.kty, 'OKP');
    assert.equal(jwk.crv, 'Ed25519');
    assert.equal(jwk.x, publicKey.export({ format: 'jwk' }).x);
    assert.equal(jwk.d, undefined, 'no private part in the JWKS');
    assert.equal(verifyWithJwks(out.token, jwks), true);
    const [h, p] = out.token.split('.');
    assert.equal(verifyWithJwks(`${h}.${p}.${b64u(crypto.randomBytes(64))}`, jwks), false);
  });

  it('the raw exchange answers {token, token_expiration} JSON, default ttl when none is asked', async () => {
    const c = await idpCode(s, 'grace');
    const before = stub.count();
    const r = await jsonPost(`${s.app}/api/v1/sts/login`, { code: c.code, state: c.state, redirect_uri: c.redirect_uri });
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /^application\/json/);
    const body = r.json();
    assert.deepEqual(Object.keys(body).sort(), ['token', 'token_expiration']);
    assert.ok(Number.isInteger(body.token_expiration), String(body.token_expiration));
    assertMinted(body.token, { user: 'grace', alg: 'EdDSA', kid: 'sts-1', ttl: 3600 });
    assert.equal(decode(body.token).payload.exp, body.token_expiration);
    assert.equal(stub.count(), before, 'the exchange is answered by Portcullis, never forwarded');
  });

  it('a code is redeemed once: the SDK logging in again with it is refused', async () => {
    const c = await idpCode(s, 'heidi');
    const first = await sdk(loginArgs(s, c, 300));
    assert.equal(first.ok, true, JSON.stringify(first));
    const again = await sdk(loginArgs(s, c, 300));
    assert.equal(again.ok, false, JSON.stringify(again));
    assert.equal(again.stage, 'login');
    assert.equal(again.status, 401, JSON.stringify(again));
    assert.equal(again.exception, 'NotAuthorizedException');
  });

  it('a redirect_uri that is not configured is refused with 400 before the IdP sees the code', async () => {
    const c = await idpCode(s, 'ivan');
    const before = stub.count();
    const r = await jsonPost(`${s.app}/api/v1/sts/login`, { ...c, redirect_uri: 'http://127.0.0.1:53595/elsewhere', ttl_seconds: 60 });
    assert.equal(r.status, 400, r.body);
    assert.equal(r.json().token, undefined);
    // The code was not spent: the same code with the configured redirect_uri still logs in.
    const ok = await jsonPost(`${s.app}/api/v1/sts/login`, { ...c, ttl_seconds: 60 });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(decode(ok.json().token).payload.sub, 'ivan');
    assert.equal(stub.count(), before);
  });

  it('the wrong PKCE verifier (state) and a malformed request are refused, no token minted', async () => {
    const c = await idpCode(s, 'judy');
    const wrong = await jsonPost(`${s.app}/api/v1/sts/login`, { ...c, state: b64u(crypto.randomBytes(32)) });
    assert.equal(wrong.status, 401, wrong.body);
    assert.equal(JSON.parse(wrong.body).token, undefined);
    const bad = await jsonPost(`${s.app}/api/v1/sts/login`, '{"code": ');
    assert.equal(bad.status, 400, bad.body);
    const missing = await jsonPost(`${s.app}/api/v1/sts/login`, { state: c.state, redirect_uri: c.redirect_uri });
    assert.equal(missing.status, 400, missing.body);
  });

  it("the remote-authenticator shape: POST /sts/login {code, redirect_uri, state} -> {claims} of strings", async () => {
    const c = await idpCode(s, 'carol');
    const before = stub.count();
    const r = await jsonPost(`${s.app}/sts/login`, { code: c.code, redirect_uri: c.redirect_uri, state: c.state });
    assert.equal(r.status, 200, r.body);
    // lakeFS parses the body only when the Content-Type names JSON, and every claim as a JSON string.
    assert.match(r.headers['content-type'], /json/);
    const body = r.json();
    assert.deepEqual(Object.keys(body), ['claims']);
    for (const [k, v] of Object.entries(body.claims)) assert.equal(typeof v, 'string', `claim ${k} = ${JSON.stringify(v)}`);
    assert.equal(body.claims.sub, 'carol');
    assert.equal(body.claims.email, 'carol@example.com');
    // Spent: lakeFS would map a second answer's 401 to "insufficient permissions".
    const again = await jsonPost(`${s.app}/sts/login`, { code: c.code, redirect_uri: c.redirect_uri, state: c.state });
    assert.equal(again.status, 401, again.body);
    assert.equal(stub.count(), before);
  });

  it('forged, expired, foreign-key, unsigned and mis-addressed tokens get 401 and never reach lakeFS', async () => {
    assert.ok(minted, 'the SDK login test ran first');
    const real = decode(minted);
    const control = await get(`${s.app}/api/v1/user`, { headers: bearer(minted) });
    assert.equal(control.status, 200, control.body);
    assert.equal(control.json().user.id, 'dave');
    const before = stub.count();

    const [h, , sig] = minted.split('.');
    const forged = `${h}.${b64u(JSON.stringify({ ...real.payload, sub: 'root', email: 'root@example.com' }))}.${sig}`;
    const expired = sign(real.header, { ...real.payload, iat: now() - 7200, exp: now() - 3600 }, privateKey);
    const foreignKey = crypto.generateKeyPairSync('ed25519').privateKey;
    const foreign = sign(real.header, { ...real.payload, exp: now() + 600 }, foreignKey);
    const unsigned = `${b64u(JSON.stringify({ alg: 'none', kid: 'sts-1', typ: 'JWT' }))}.${b64u(JSON.stringify(real.payload))}.`;
    const otherAud = sign(real.header, { ...real.payload, aud: 'someone-else' }, privateKey);
    const otherIss = sign(real.header, { ...real.payload, iss: 'https://evil.invalid' }, privateKey);
    for (const [name, t] of Object.entries({ forged, expired, foreign, unsigned, otherAud, otherIss })) {
      const r = await get(`${s.app}/api/v1/user`, { headers: bearer(t) });
      assert.equal(r.status, 401, `${name}: ${r.status} ${r.body}`);
    }
    // The same refusal as the SDK sees it.
    for (const t of [expired, foreign]) {
      const out = await sdk(['--mode', 'token', '--host', `http://127.0.0.1:${s.listen}`, `--token=${t}`]);
      assert.equal(out.ok, false, JSON.stringify(out));
      assert.equal(out.exception, 'NotAuthorizedException');
      assert.equal(out.status, 401);
    }
    assert.equal(stub.count(), before, JSON.stringify(stub.log.slice(before)));
  });
});

describe('lakeFS web identity with the confidential client lakefs-confidential (ES256), ttl clamped', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = { kid: 'sts-es', alg: 'ES256', private_key_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
  const MAX = 120;
  let s;
  let stub;

  before(async () => {
    stub = await startLakefsStub();
    s = await startStack({
      name: 'lakefs-conf', upstreamPort: stub.port,
      plugin: stsPlugin({ client: 'lakefs-confidential', secret: 'lakefs-confidential-secret', key, maxTtl: MAX, defaultTtl: 60 }),
    });
  });
  after(async () => { s?.stop(); await stub?.close(); });

  it('the SDK asks for a day and gets max_ttl_seconds; the token works and the JWKS (P-256) verifies it', async () => {
    const c = await idpCode(s, 'frank', { client: 'lakefs-confidential' });
    stub.reset();
    const out = await sdk(loginArgs(s, c, 86400, 'sdk-sts'));
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(out.user.id, 'frank');
    assert.equal(out.user.email, 'frank@example.com');
    assert.equal(out.token_expiration_type, 'int');
    assert.equal(assertMinted(out.token, { user: 'frank', alg: 'ES256', kid: 'sts-es', ttl: MAX }).exp, out.token_expiration);
    assert.equal(stub.count(), 1);
    assert.equal(stub.log[0].user, 'frank');

    const jwks = (await get(`${s.app}/oauth2/jwks.json`)).json();
    const jwk = jwks.keys.find((k) => k.kid === 'sts-es');
    const mine = publicKey.export({ format: 'jwk' });
    assert.deepEqual({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, { kty: 'EC', crv: 'P-256', x: mine.x, y: mine.y });
    assert.equal(jwk.d, undefined);
    assert.equal(verifyWithJwks(out.token, jwks), true);
  });

  it('from_web_identity with a shorter ttl gets it; no ttl_seconds gets default_ttl_seconds', async () => {
    const c1 = await idpCode(s, 'gina', { client: 'lakefs-confidential' });
    const out = await sdk(loginArgs(s, c1, 30));
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(out.user.id, 'gina');
    assertMinted(out.token, { user: 'gina', alg: 'ES256', kid: 'sts-es', ttl: 30 });
    const c2 = await idpCode(s, 'gina', { client: 'lakefs-confidential' });
    const r = await jsonPost(`${s.app}/api/v1/sts/login`, c2);
    assert.equal(r.status, 200, r.body);
    const minted = assertMinted(r.json().token, { user: 'gina', alg: 'ES256', kid: 'sts-es', ttl: 60 });
    assert.equal(r.json().token_expiration, minted.exp, 'default ttl');
  });

  it('a code issued to another client (lakefs-cli) is refused by the IdP, so no token', async () => {
    const c = await idpCode(s, 'mallory', { client: 'lakefs-cli' });
    const out = await sdk(loginArgs(s, c, 60));
    assert.equal(out.ok, false, JSON.stringify(out));
    assert.equal(out.stage, 'login');
    assert.equal(out.status, 401, JSON.stringify(out));
  });
});
