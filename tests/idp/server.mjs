// A real OpenID Provider (oidc-provider, OpenID Certified) on loopback, for tests, the demo and the bench.
// Dev interactions accept any login; the login string becomes `sub`.
//   IDP_PORT (9000)  APP_ORIGINS (comma list, default http://localhost:8080)
// Besides the login clients it serves API access tokens (RFC 8707 resource indicators -> RFC 9068 JWTs),
// the client credentials grant and RFC 7662 introspection; see RESOURCES and the clients below, and
// tests/idp/check-features.mjs, which exercises all of it.
import Provider, { errors } from 'oidc-provider';

import { userClaims } from './users.mjs';

const port = Number(process.env.IDP_PORT || 9000);
const issuer = `http://127.0.0.1:${port}`;
const origins = (process.env.APP_ORIGINS || 'http://localhost:8080').split(',').filter(Boolean);

const common = {
  redirect_uris: origins.map((o) => `${o}/oauth2/callback`),
  post_logout_redirect_uris: origins.flatMap((o) => [`${o}/`, `${o}/signed-out`]),
  grant_types: ['authorization_code'],
  response_types: ['code'],
};

// Users with unusual claims, for the identity-hygiene tests (tests/e2e/bounded_and_hygiene.test.mjs);
// every other login gets the defaults in findAccount.
const TEST_USERS = {
  unverified: { email_verified: false },
  strverified: { email_verified: 'false' },
  noverified: { email_verified: undefined },
  commas: { groups: ['ops,admins', 'staff', 'bad\u0007bell', 'nl\nline', 'del\u007f', 'c1\u0085x'] },
  commastring: { groups: 'ops,admins' },
  // Two hundred groups: a session larger than one cookie (tests/e2e/sessions.test.mjs).
  many: { groups: Array.from({ length: 200 }, (_, i) => `group-number-${i}`) },
};

// Users some of whose claims the IdP releases only at its userinfo endpoint, never in the ID token
// (findAccount's claims() is called with use 'id_token' or 'userinfo').
const USERINFO_ONLY = {
  uionly: ['email', 'email_verified', 'groups'],
};

// Resource servers (RFC 8707 resource indicator = the access token's `aud`). Any client may ask for one
// with `resource=` at /auth (and/or /token); `read` and `write` are their scopes. An authorization code
// whose grant names a resource yields an access token for it even when the token request repeats no
// `resource` (useGrantedResource below); without a resource nothing changes: an opaque access token
// for the userinfo endpoint, as before.
const RESOURCES = {
  'api://portcullis-demo': { audience: 'api://portcullis-demo', scope: 'read write', accessTokenFormat: 'jwt' },
  // A second audience, for wrong-audience tests.
  'api://other': { audience: 'api://other', scope: 'read write', accessTokenFormat: 'jwt' },
  // Opaque access tokens with an audience, for introspection.
  'api://opaque': { audience: 'api://opaque', scope: 'read write', accessTokenFormat: 'opaque' },
  // The Flyte admin service (tests/e2e/flyte.test.mjs): flytekit's access tokens, PKCE or client credentials.
  'api://flyte': { audience: 'api://flyte', scope: 'all offline', accessTokenFormat: 'jwt' },
};
// The resource a client gets when its authorization request names none.
const DEFAULT_RESOURCE = { 'portcullis-api': 'api://portcullis-demo', flytectl: 'api://flyte', 'flyte-worker': 'api://flyte' };

const configuration = {
  clients: [
    // The main client. On sign-out at the IdP it posts a logout token to the first app origin
    // (OpenID Connect Back-Channel Logout 1.0), with `sid` (also put in its ID tokens).
    { ...common, client_id: 'portcullis', client_secret: 'portcullis-secret', token_endpoint_auth_method: 'client_secret_basic',
      // (127.0.0.1, not localhost: Node's fetch may try ::1 first, where Envoy does not listen.)
      backchannel_logout_uri: `${origins[0].replace('//localhost', '//127.0.0.1')}/oauth2/backchannel_logout`, backchannel_logout_session_required: true },
    // Refresh tokens (scope offline_access): access tokens live 8 s, refresh tokens rotate on every use
    // (and a rotated-away one coming back revokes the grant), for tests/e2e/refresh_and_logout.test.mjs.
    { ...common, client_id: 'portcullis-refresh', client_secret: 'portcullis-refresh-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'] },
    { ...common, client_id: 'portcullis-post', client_secret: 'portcullis-post-secret', token_endpoint_auth_method: 'client_secret_post' },
    { ...common, client_id: 'portcullis-public', token_endpoint_auth_method: 'none' },
    // Envoy's native oauth2 filter (bench baseline): it sends its own redirect URI path.
    { ...common, client_id: 'envoy-oauth2', client_secret: 'envoy-oauth2-secret', token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: origins.map((o) => `${o}/callback`) },
    // Logins whose access token is a JWT for api://portcullis-demo without asking (DEFAULT_RESOURCE);
    // it carries `read`/`write` only when those are in the requested scope.
    { ...common, client_id: 'portcullis-api', client_secret: 'portcullis-api-secret', token_endpoint_auth_method: 'client_secret_basic' },
    // A service: client credentials grant only.
    { client_id: 'svc-worker', client_secret: 'svc-worker-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    // A service whose access tokens live three seconds (expired-token tests without waiting minutes).
    { client_id: 'svc-short', client_secret: 'svc-short-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    // Command-line clients (issue 7). flytekit's PKCE login: a public client with flytekit's own loopback
    // redirect URI (its default, also what Portcullis's /config/v1/flyte_client hands out).
    { client_id: 'flytectl', token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: ['http://localhost:53593/callback'] },
    // Flyte's service workers: client credentials (flytekit auth_mode="ClientSecret").
    { client_id: 'flyte-worker', client_secret: 'flyte-worker-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    // lakeFS's web-identity login: the user's helper gets a code as this public client (PKCE, the verifier
    // passed on as `state`), and Portcullis's STS endpoint redeems it as the same client.
    { client_id: 'lakefs-cli', token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['authorization_code'], response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:53595/callback'] },
    // The same exchange as a confidential client (client_secret_basic at the token endpoint).
    { client_id: 'lakefs-confidential', client_secret: 'lakefs-confidential-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'], response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:53595/callback'] },
    // A resource server that only introspects (any confidential client may introspect any token).
    { client_id: 'portcullis-introspect', client_secret: 'portcullis-introspect-secret', token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [], response_types: [], redirect_uris: [] },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  // Put the scope's claims in the ID token itself (the relying party reads them from there).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: {
    ClientCredentials: (ctx, token, client) => (client.clientId === 'svc-short' ? 3 : 600),
    AccessToken: (ctx, token, client) => (client?.clientId === 'portcullis-refresh' ? 8 : 3600),
  },
  rotateRefreshToken: true,
  // Outgoing requests (back-channel logout tokens) go to the app on loopback: drop oidc-provider's
  // SSRF guard, which refuses loopback and private addresses (right for a public IdP, not for tests).
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
  cookies: { keys: ['portcullis-dev-idp-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    backchannelLogout: { enabled: true },
    // POST /token/introspection. The default allowedPolicy: a confidential client may introspect any
    // token, a public one (auth method none) only its own (others come back {active: false}).
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || DEFAULT_RESOURCE[client?.clientId],
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (Object.hasOwn(RESOURCES, resourceIndicator)) return RESOURCES[resourceIndicator];
        throw new errors.InvalidTarget();
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      // No external fonts (the machines have no internet); same form ids as the default page.
      logoutSource: async (ctx, form) => {
        ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>Sign out</title></head><body>
          <h1>Sign out of the IdP?</h1>${form}
          <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
          </body></html>`;
      },
    },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims(use) {
        const claims = {
          ...userClaims(sub),
          ...(Object.hasOwn(TEST_USERS, sub) ? TEST_USERS[sub] : {}),
        };
        if (use === 'id_token' && Object.hasOwn(USERINFO_ONLY, sub)) {
          for (const name of USERINFO_ONLY[sub]) delete claims[name];
        }
        return claims;
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('idp server_error', err));
provider.on('backchannel.success', (ctx, client, accountId, sid) => console.log(`idp backchannel logout sent to ${client.clientId} for ${accountId} (sid ${sid})`));
provider.on('backchannel.error', (ctx, err, client) => console.error(`idp backchannel logout to ${client.clientId} failed: ${err.message} ${err.cause?.code || ""} ${err.cause?.message || ""}`));
const server = provider.listen(port, '127.0.0.1');
// Node closes an idle keep-alive connection after 5 s; Envoy's pool keeps it for an hour. A callout
// sent on a connection Node is closing at that moment is reset (Envoy's 503, our 502): a flake seen
// once in CI on the introspection test. Real IdPs keep idle connections longer (nginx 75 s); so does
// this one, longer than any test idles.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
console.log(`idp listening on ${issuer}`);
