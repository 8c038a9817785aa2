// A real OpenID Provider (oidc-provider, OpenID Certified) on loopback, for tests, the demo and the bench.
// Dev interactions accept any login; the login string becomes `sub`.
//   IDP_PORT (9000)  APP_ORIGINS (comma list, default http://localhost:8080)
import Provider from 'oidc-provider';

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
};

const configuration = {
  clients: [
    { ...common, client_id: 'portcullis', client_secret: 'portcullis-secret', token_endpoint_auth_method: 'client_secret_basic' },
    { ...common, client_id: 'portcullis-post', client_secret: 'portcullis-post-secret', token_endpoint_auth_method: 'client_secret_post' },
    { ...common, client_id: 'portcullis-public', token_endpoint_auth_method: 'none' },
    // Envoy's native oauth2 filter (bench baseline): it sends its own redirect URI path.
    { ...common, client_id: 'envoy-oauth2', client_secret: 'envoy-oauth2-secret', token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: origins.map((o) => `${o}/callback`) },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  // Put the scope's claims in the ID token itself (the relying party reads them from there).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['portcullis-dev-idp-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
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
      async claims() {
        return {
          sub,
          email: `${sub}@example.com`,
          email_verified: true,
          name: `${sub[0].toUpperCase()}${sub.slice(1)} Example`,
          preferred_username: sub,
          groups: sub === 'alice' ? ['admins', 'staff'] : ['staff'],
          ...(Object.hasOwn(TEST_USERS, sub) ? TEST_USERS[sub] : {}),
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('idp server_error', err));
provider.listen(port, '127.0.0.1');
console.log(`idp listening on ${issuer}`);
