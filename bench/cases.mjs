// The benchmark cases, shared by bench/run.mjs (throughput, paired) and bench/instructions.mjs (Envoy
// under callgrind): for each, the HTTP filters in front of a direct-response route, the request (path
// and headers, credentials included) and how to obtain the credentials. One definition, so both
// benchmarks measure the same requests under the same names.
//
// Every case talks to the fast IdP (bench/fast-idp.mjs) through Envoy's `idp` cluster: discovery, JWKS
// and the token endpoint. Logins skip the IdP's UI: the bench builds the code from the authorize URL.
import http from 'node:http';
import path from 'node:path';

import { nativeOauth2Filter, noopFilter, pluginConfig, portcullisFilter } from '../tests/lib/envoy-config.mjs';
import { get } from '../tests/lib/http.mjs';
import { ROOT, sleep, WASM } from '../tests/lib/stack.mjs';

export const NOOP_WASM = path.join(ROOT, 'target/wasm32-wasip1/release/portcullis_noop_filter.wasm');
/** `aud` of the bench's bearer token, accepted by native-jwt and wasm-bearer*. */
export const AUDIENCE = 'api://bench';

const NATIVE_SECRETS = [
  { name: 'oauth2-token', generic_secret: { secret: { inline_string: 'envoy-oauth2-secret' } } },
  { name: 'oauth2-hmac', generic_secret: { secret: { inline_string: 'bench-hmac-secret-0123456789abcdef' } } },
];

/** Envoy's jwt_authn: one provider with the IdP's keys inline, required on every path, JWT cache off. */
export function jwtAuthnFilter(idp) {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
      providers: {
        bench: {
          issuer: idp.issuer,
          audiences: [AUDIENCE],
          local_jwks: { inline_string: JSON.stringify(idp.jwks) },
          // No jwt_cache_config: every request is a full RS256 verification, like wasm-bearer.
        },
      },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: 'bench' } }],
    },
  };
}

/** A bearer token both jwt_authn and Portcullis accept: RS256 (2048-bit), our audience, an hour left. */
export function bearerToken(idp) {
  const now = Math.floor(Date.now() / 1000);
  return idp.signToken({ iss: idp.issuer, sub: 'svc-bench', aud: AUDIENCE, client_id: 'bench-client', scope: 'read write', iat: now, exp: now + 3600, jti: 'bench-1' });
}

/**
 * A browser's navigation, as bench/micro/src/bin/session_profile.rs builds it (the same headers and
 * cookies, so this and the native profile measure one request): about fifteen headers and ~1.1 KB of
 * cookies (with a 326-byte session cookie from a login at the fast IdP), ours one of six.
 */
export const BROWSER_PATH = '/dashboard/d/abc?orgId=1';
export function browserHeaders(origin, session) {
  return {
    accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    'accept-language': 'en-US,en;q=0.9',
    'accept-encoding': 'gzip, deflate, br',
    'sec-fetch-mode': 'navigate',
    'sec-fetch-dest': 'document',
    'sec-fetch-site': 'same-origin',
    'sec-ch-ua': '"Chromium";v="131"',
    'upgrade-insecure-requests': '1',
    referer: `${origin}/`,
    'x-forwarded-proto': 'https',
    cookie: `_ga=GA1.2.1700000000.1700000000; _gid=GA1.2.99.88; theme=dark; ${session}; csrftoken=${'a1b2c3d4e5f6'.repeat(20)}; grafana_session=${'a1b2c3d4e5f6'.repeat(40)}`,
  };
}

/**
 * The comparisons both benchmarks report, A / B: each runs (or is computed) when both sides are
 * selected. Filters against the empty wasm filter isolate the filter's own cost; against the native
 * filter that does the same job, what Portcullis costs over Envoy's C++.
 */
export const COMPARISONS = [
  ['wasm-noop', 'passthrough'],
  ['wasm-session', 'wasm-noop'],
  ['wasm-public', 'wasm-noop'],
  ['wasm-session', 'native-oauth2'],
  ['wasm-session-nocache', 'wasm-session'],
  ['wasm-session-lean', 'wasm-session'],
  ['wasm-session-leanest', 'wasm-noop'],
  ['wasm-public-nostatus', 'wasm-noop'],
  ['wasm-bearer', 'native-jwt'],
  ['wasm-bearer-cached', 'native-jwt'],
  ['wasm-session-browser', 'wasm-noop-browser'],
  ['login-portcullis', 'login-native'],
];

// ---- Logins ---------------------------------------------------------------------------------------

/** Cookies a response sets (name -> value), cleared ones (`Max-Age=0`, the 1970 expiry) left out. */
function setCookies(res) {
  const out = new Map();
  for (const sc of res.headers['set-cookie'] || []) {
    const semi = sc.indexOf(';');
    const pair = semi < 0 ? sc : sc.slice(0, semi);
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    out.set(name, /max-age=0|expires=thu, 01 jan 1970/i.test(sc) || value === '' ? null : value);
  }
  return out;
}

function send(agent, port, reqPath, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: reqPath, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`timeout: GET ${reqPath}`)));
    req.end();
  });
}

/**
 * How each filter's login looks from the browser: the navigation (302 to the IdP, login cookies set),
 * then the callback (302 back, the session set). `session`: the cookies a finished login must set.
 */
export const LOGIN_KINDS = {
  portcullis: { accept: 'text/html,application/xhtml+xml', session: ['_portcullis'], back: '/' },
  native: { accept: 'text/html,application/xhtml+xml', session: ['BearerToken', 'OauthHMAC', 'OauthExpires'], back: null },
};

/**
 * One complete login as a fresh browser would do it, on `agent`'s connections: GET / → 302 to the
 * IdP with the login cookies → (the IdP's part skipped: the code is built) GET the callback → 302 with
 * the session cookies. Throws unless every step answered as it must. Resolves to the Cookie header the
 * browser would then send.
 */
export async function loginOnce({ kind, idp, port, host, agent = false }) {
  const k = LOGIN_KINDS[kind];
  const start = await send(agent, port, '/', { host, accept: k.accept });
  const location = start.headers.location || '';
  if (start.statusCode !== 302 || !location.startsWith(idp.issuer)) throw new Error(`${kind} login: GET / answered ${start.statusCode} ${location}`);
  const authorize = new URL(location);
  const jar = setCookies(start);
  const callback = new URL(authorize.searchParams.get('redirect_uri'));
  const cb = `${callback.pathname}?code=${idp.codeFor(location)}&state=${encodeURIComponent(authorize.searchParams.get('state'))}`;
  const cookie = [...jar].filter(([, v]) => v !== null).map(([n, v]) => `${n}=${v}`).join('; ');
  const done = await send(agent, port, cb, { host, accept: k.accept, cookie });
  const set = setCookies(done);
  for (const [n, v] of set) jar.set(n, v);
  const missing = k.session.filter((n) => !set.get(n));
  if (done.statusCode !== 302 || missing.length || (k.back && done.headers.location !== k.back)) {
    throw new Error(`${kind} login: callback answered ${done.statusCode} (location ${done.headers.location}), session cookies missing: ${missing.join(', ') || 'none'}`);
  }
  return [...jar].filter(([, v]) => v !== null).map(([n, v]) => `${n}=${v}`).join('; ');
}

/** Our session cookie alone (`_portcullis=…`) out of a login's cookies. */
const ourCookie = (cookies) => cookies.split('; ').find((c) => c.startsWith('_portcullis='));

// ---- The cases ------------------------------------------------------------------------------------

/**
 * The cases against `idp` (a started fast IdP). Each: `name`, `label`, `filters`, `secrets`, `path`,
 * `ready` (wait for the filter to load the provider), `headers(env) -> {name: value}` (credentials
 * included; env = {idp, port, host, origin, shared}), and for logins `login: kind` (driven by a node
 * loop, not wrk). `shared` carries what one case's setup hands to another (the browser session cookie
 * for the empty filter's browser request). The order matters only there: wasm-session-browser before
 * wasm-noop-browser.
 */
export function benchCases(idp, { wasm = WASM } = {}) {
  const plugin = pluginConfig({ idpPort: idp.port, overrides: { public_paths: ['/public/*'] } });
  const bearer = (cacheSize) => ({
    ...plugin,
    routes: { default: { action: 'authenticate', accept: 'bearer' } },
    bearer: { issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], jwks_uri: `${idp.issuer}/jwks` }], ...(cacheSize === undefined ? {} : { token_cache_size: cacheSize }) },
  });
  const portcullisSession = async (env) => {
    const session = ourCookie(await loginOnce({ kind: 'portcullis', idp, port: env.port, host: env.host }));
    return { cookie: session };
  };
  const token = bearerToken(idp);
  return [
    { name: 'passthrough', label: 'Envoy, no auth filter', filters: [], path: '/', headers: async () => ({}) },
    { name: 'wasm-noop', label: 'Empty wasm filter', filters: [noopFilter(NOOP_WASM)], path: '/', headers: async () => ({}) },
    { name: 'native-oauth2', label: 'Envoy native oauth2, valid session', filters: [nativeOauth2Filter(idp.port)], secrets: NATIVE_SECRETS, path: '/',
      headers: async (env) => ({ cookie: await loginOnce({ kind: 'native', idp, port: env.port, host: env.host }) }) },
    { name: 'wasm-session', label: 'Portcullis, valid session cookie', filters: [portcullisFilter(wasm, plugin)], path: '/', ready: true, headers: portcullisSession },
    // The identity-header lever: one family (`headers.identity: ["x-forwarded"]`), four headers fewer.
    { name: 'wasm-session-lean', label: 'Portcullis, valid session, X-Forwarded-* only', filters: [portcullisFilter(wasm, { ...plugin, headers: { identity: ['x-forwarded'] } })], path: '/', ready: true, headers: portcullisSession },
    // Both levers that are configuration: one identity family, and the forwarded response's status
    // not read (`metrics.upstream_status: false`), for the session and the public route.
    { name: 'wasm-session-leanest', label: 'Portcullis, valid session, X-Forwarded-* only, status unread', filters: [portcullisFilter(wasm, { ...plugin, headers: { identity: ['x-forwarded'] }, metrics: { upstream_status: false } })], path: '/', ready: true, headers: portcullisSession },
    { name: 'wasm-public-nostatus', label: 'Portcullis, public route, status unread', filters: [portcullisFilter(wasm, { ...plugin, metrics: { upstream_status: false } })], path: '/public/x', ready: true, headers: async () => ({}) },
    { name: 'wasm-session-nocache', label: 'Portcullis, session cookie, cache off', filters: [portcullisFilter(wasm, { ...plugin, session_cache_size: 0 })], path: '/', ready: true, headers: portcullisSession },
    { name: 'wasm-public', label: 'Portcullis, public route', filters: [portcullisFilter(wasm, plugin)], path: '/public/x', ready: true, headers: async () => ({}) },
    { name: 'native-jwt', label: 'Envoy jwt_authn, RS256 bearer (no cache)', filters: [jwtAuthnFilter(idp)], path: '/', headers: async () => ({ authorization: `Bearer ${token}` }) },
    { name: 'wasm-bearer', label: 'Portcullis, RS256 bearer, cache off', filters: [portcullisFilter(wasm, bearer(0))], path: '/', ready: true, headers: async () => ({ authorization: `Bearer ${token}` }) },
    { name: 'wasm-bearer-cached', label: 'Portcullis, RS256 bearer, cached', filters: [portcullisFilter(wasm, bearer())], path: '/', ready: true, headers: async () => ({ authorization: `Bearer ${token}` }) },
    { name: 'wasm-session-browser', label: 'Portcullis, session, browser request', filters: [portcullisFilter(wasm, plugin)], path: BROWSER_PATH, ready: true,
      headers: async (env) => {
        const { cookie } = await portcullisSession(env);
        env.shared.browserSession = cookie;
        return browserHeaders(env.origin, cookie);
      } },
    { name: 'wasm-noop-browser', label: 'Empty wasm filter, browser request', filters: [noopFilter(NOOP_WASM)], path: BROWSER_PATH,
      // The same bytes as wasm-session-browser sends: its real session cookie when that case ran first,
      // else a stand-in of the same shape and size (326 bytes; the empty filter reads none of it).
      headers: async (env) => browserHeaders(env.origin, env.shared.browserSession || `_portcullis=demo1.${'x'.repeat(308)}`) },
    { name: 'login-portcullis', label: 'Portcullis, complete logins', filters: [portcullisFilter(wasm, plugin)], path: '/', ready: true, login: 'portcullis' },
    { name: 'login-native', label: 'Envoy native oauth2, complete logins', filters: [nativeOauth2Filter(idp.port)], secrets: NATIVE_SECRETS, path: '/', login: 'native' },
  ];
}

/**
 * Sends `c`'s request until it answers 200 (up to `ms`): a filter that has loaded discovery may not yet
 * have the bearer issuer's JWKS. Throws with the last status otherwise.
 */
export async function probe(c, port, headers, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    const r = await get(`http://127.0.0.1:${port}${c.path}`, { headers });
    if (r.status === 200) return;
    last = `${r.status} ${r.body.slice(0, 200)}`;
    if (Date.now() > end) throw new Error(`${c.name}: probe got ${last}`);
    await sleep(200);
  }
}
