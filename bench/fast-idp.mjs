// A minimal, fast OpenID Provider for the benchmarks (bench/run.mjs, bench/instructions.mjs and the
// footprint measurements). oidc-provider (tests/idp/server.mjs) is the real thing for the tests, but it
// spends milliseconds per request on its own bookkeeping: a login benchmark against it measures the IdP.
// This one does the least a provider must: one RSA-2048 key generated at start, discovery and JWKS
// served from strings built once, and per token request one RS256 signature and nothing else.
//
// No login UI: the bench builds the authorization code itself from the authorize URL our filter sent
// the browser to (`codeFor`), so a login costs the filter's two requests and one token exchange.
// The code is base64url JSON `{nonce, client_id, redirect_uri, sub}`: nothing is stored, any number of
// codes may be redeemed at once, and the ID token carries the nonce the filter expects.
// GET /authorize does the same without a UI: 302 straight back to redirect_uri with such a code.
//
//   const idp = await startFastIdp({ port });   // port 0 or absent: any free port
//   idp.issuer, idp.port, idp.jwks (the JWKS object), idp.signToken(claims) -> compact RS256 JWS with kid,
//   idp.codeFor(authorizeUrl, sub?) -> code, idp.stats (requests per endpoint), await idp.stop()
import crypto from 'node:crypto';
import http from 'node:http';

import { userClaims } from '../tests/idp/users.mjs';

const b64 = (s) => Buffer.from(s).toString('base64url');

// Claims of a user: the same as tests/idp/server.mjs's (so sessions are the same size as there).
export { userClaims };

export async function startFastIdp({ port = 0, host = '127.0.0.1', tokenTtl = 3600 } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = publicKey.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(pub.n).digest('base64url').slice(0, 16);
  const jwks = { keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid, n: pub.n, e: pub.e }] };
  const jwksBody = JSON.stringify(jwks);
  const header = b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const stats = { discovery: 0, jwks: 0, authorize: 0, token: 0, userinfo: 0, errors: 0 };

  /** A compact JWS (RS256, this key's kid) over `claims`, exactly as given. */
  function signToken(claims) {
    const input = `${header}.${b64(JSON.stringify(claims))}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  }

  /** The code for a login the filter started: its authorize URL's nonce, client and redirect URI. */
  function codeFor(authorizeUrl, sub = 'alice') {
    const q = new URL(authorizeUrl).searchParams;
    return b64(JSON.stringify({ nonce: q.get('nonce'), client_id: q.get('client_id'), redirect_uri: q.get('redirect_uri'), sub }));
  }

  let issuer;
  let discoveryBody;
  const json = (res, status, body, extra = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };
  const oauthError = (res, status, error, description) => {
    stats.errors += 1;
    json(res, status, JSON.stringify({ error, error_description: description }));
  };

  function token(req, res, body) {
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'authorization_code') return oauthError(res, 400, 'unsupported_grant_type', 'authorization_code only');
    // client_secret_basic (RFC 6749 §2.3.1: form-encoded, then base64) or client_secret_post. The
    // secret itself is not checked: the benchmark's clients are configured, not attackers.
    let clientId = form.get('client_id');
    const auth = req.headers.authorization;
    if (auth && auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
    }
    let code;
    try { code = JSON.parse(Buffer.from(form.get('code') || '', 'base64url').toString('utf8')); } catch { code = null; }
    if (!code || typeof code !== 'object') return oauthError(res, 400, 'invalid_grant', 'not a code of this IdP');
    if (!clientId || code.client_id !== clientId) return oauthError(res, 400, 'invalid_grant', 'code issued to another client');
    if (code.redirect_uri && form.get('redirect_uri') !== code.redirect_uri) return oauthError(res, 400, 'invalid_grant', 'redirect_uri mismatch');
    const now = Math.floor(Date.now() / 1000);
    const sub = typeof code.sub === 'string' && code.sub ? code.sub : 'alice';
    const idToken = signToken({
      iss: issuer, aud: clientId, ...userClaims(sub), ...(code.nonce ? { nonce: code.nonce } : {}), iat: now, exp: now + tokenTtl,
    });
    stats.token += 1;
    // Opaque access token: the user's name, readable by /userinfo without any state here.
    const accessToken = `at.${b64(sub)}.${crypto.randomBytes(12).toString('base64url')}`;
    return json(res, 200, JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: tokenTtl, id_token: idToken, scope: 'openid email profile' }));
  }

  const server = http.createServer((req, res) => {
    const q = req.url.indexOf('?');
    const p = q < 0 ? req.url : req.url.slice(0, q);
    if (req.method === 'GET' && p === '/.well-known/openid-configuration') { stats.discovery += 1; return json(res, 200, discoveryBody); }
    if (req.method === 'GET' && p === '/jwks') { stats.jwks += 1; return json(res, 200, jwksBody, { 'content-type': 'application/jwk-set+json' }); }
    if (req.method === 'GET' && p === '/authorize') {
      stats.authorize += 1;
      const url = new URL(req.url, issuer);
      const redirect = url.searchParams.get('redirect_uri');
      if (!redirect) return oauthError(res, 400, 'invalid_request', 'redirect_uri missing');
      const back = new URL(redirect);
      back.searchParams.set('code', codeFor(url.toString()));
      if (url.searchParams.has('state')) back.searchParams.set('state', url.searchParams.get('state'));
      back.searchParams.set('iss', issuer);
      res.writeHead(302, { location: back.toString(), 'content-length': 0 });
      return res.end();
    }
    if (req.method === 'GET' && p === '/userinfo') {
      stats.userinfo += 1;
      const m = /^Bearer at\.([A-Za-z0-9_-]+)\./.exec(req.headers.authorization || '');
      if (!m) return oauthError(res, 401, 'invalid_token', 'no access token of this IdP');
      return json(res, 200, JSON.stringify(userClaims(Buffer.from(m[1], 'base64url').toString('utf8'))));
    }
    if (req.method === 'POST' && p === '/token') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => token(req, res, Buffer.concat(chunks).toString('utf8')));
      return undefined;
    }
    if (p === '/logout') { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 11 }); return res.end('signed out\n'); }
    return oauthError(res, 404, 'not_found', p);
  });
  // Envoy's pool keeps IdP connections up to the cluster's idle timeout (4 s); never close one first.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  const actualPort = server.address().port;
  issuer = `http://${host}:${actualPort}`;
  discoveryBody = JSON.stringify({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    userinfo_endpoint: `${issuer}/userinfo`,
    end_session_endpoint: `${issuer}/logout`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    grant_types_supported: ['authorization_code'],
    scopes_supported: ['openid', 'email', 'profile'],
  });
  return {
    issuer,
    port: actualPort,
    kid,
    jwks,
    stats,
    signToken,
    codeFor,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
