// The real flytekit (1.16.31, .venv-flyte from `scripts/setup.sh clients`) through Envoy and Portcullis to a
// Flyte admin (tests/upstream/flyte_admin.py: flyteidl's servicers over h2c). flytekit asks the admin for its
// auth metadata over gRPC (public at Portcullis: the admin answers), its first AdminService call goes out
// without a token and must come back UNAUTHENTICATED, then it logs in (PKCE with a scripted browser, or
// client credentials) and retries with `flyte-authorization: Bearer <IdP access token>`. The admin sees the
// user in x-auth-request-user, and never a call Portcullis refused. Portcullis also serves the two HTTP
// endpoints flyteadmin's gateway does (/config/v1/flyte_client, /.well-known/oauth-authorization-server).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { serviceToken } from '../lib/flows.mjs';
import { browserInbox, requireFlytekit, runFlyte, startFlyteAdmin, tempDir, writeConfig } from '../lib/flyte.mjs';
import { get } from '../lib/http.mjs';
import { freePort, startStack } from '../lib/stack.mjs';

const REDIRECT = 'http://localhost:53593/callback';

const plugin = (idp) => ({
  bearer: { issuers: [{ issuer: idp, audiences: ['api://flyte'] }] },
  flyte: { client_id: 'flytectl', redirect_uri: REDIRECT, scopes: ['all', 'offline'], authorization_metadata_key: 'flyte-authorization' },
  routes: {
    rules: [
      // flyteadmin answers its auth metadata anonymously; flytekit asks for it before it has a token.
      { name: 'flyte-auth-metadata', prefix: '/flyteidl.service.AuthMetadataService/', action: 'public' },
      { name: 'flyte-admin', prefix: '/flyteidl.service.AdminService/', action: 'authenticate', accept: 'bearer',
        bearer_header: ['flyte-authorization', 'authorization'] },
    ],
  },
});

describe('flytekit through Portcullis', () => {
  let s;
  let admin;
  let endpoint;
  let dir;
  const secret = () => path.join(dir, 'secret');

  before(async () => {
    requireFlytekit();
    const port = await freePort();
    s = await startStack({ plugin, name: 'flyte', upstreamPort: port, upstreamHttp2: true });
    admin = await startFlyteAdmin({ port, idp: s.idp });
    endpoint = `localhost:${s.listen}`;
    dir = tempDir();
    fs.writeFileSync(secret(), 'flyte-worker-secret');
  });
  after(() => { admin?.stop(); s?.stop(); if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  const whoami = (r) => {
    assert.equal(r.code, 0, `flytekit failed: ${JSON.stringify(r.result)}\n${r.stderr.slice(-2000)}`);
    const p = r.result.projects.find((x) => x.id === 'whoami');
    assert.ok(p, JSON.stringify(r.result));
    return { user: p.name, identity: JSON.parse(p.description) };
  };
  // Refused by Portcullis for `code`: Envoy carries the 401's JSON body as the grpc-message.
  const refused = (r, what, code) => {
    assert.equal(r.code, 1, `${what}: expected a refusal, got ${JSON.stringify(r.result)}`);
    assert.equal(r.result.grpc_code, 'UNAUTHENTICATED', `${what}: ${JSON.stringify(r.result)}`);
    assert.equal(JSON.parse(r.result.details).code, code, `${what}: ${r.result.details}`);
  };
  const raw = (extra) => runFlyte(['--raw', endpoint, ...extra]);

  it('PKCE: flytekit opens the browser at the IdP, logs carol in, and lists projects as carol', async () => {
    await admin.resetCalls();
    const inbox = await browserInbox({ user: 'carol' });
    try {
      const cfg = writeConfig(dir, { endpoint: `dns:///${endpoint}`, insecure: true, authType: 'Pkce' });
      const r = await runFlyte(['--config', cfg], { inbox });
      const { user, identity } = whoami(r);
      assert.equal(user, 'carol');
      assert.equal(identity['x-forwarded-user'], 'carol');
      // (No email header: the IdP's access token for api://flyte carries sub, not email.)
      // One login: the authorize URL flytekit built from the public client config, our IdP and PKCE S256.
      assert.equal(inbox.opened.length, 1, JSON.stringify(inbox.opened));
      const [{ url, callback, status, error }] = inbox.opened;
      assert.equal(error, null);
      const u = new URL(url);
      assert.equal(`${u.origin}${u.pathname}`, `${s.idp}/auth`);
      assert.equal(u.searchParams.get('client_id'), 'flytectl');
      assert.equal(u.searchParams.get('redirect_uri'), REDIRECT);
      assert.equal(u.searchParams.get('scope'), 'all offline');
      assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(callback.startsWith(`${REDIRECT}?code=`), callback);
      assert.equal(status, 200, 'flytekit\'s callback server took the code');
      // The admin saw the two metadata calls (public, no identity) and ONE ListProjects: the first,
      // tokenless one was refused by Portcullis and never arrived.
      const { counts, log } = await admin.calls();
      assert.deepEqual(counts, { ListProjects: 1, GetPublicClientConfig: 1, GetOAuth2Metadata: 1 });
      for (const e of log.filter((x) => x.method !== 'ListProjects')) assert.deepEqual(e.identity, {}, JSON.stringify(e));
      // The token goes on to the admin in flytekit's header (flyteadmin with auth on checks it again).
      assert.deepEqual(log.find((x) => x.method === 'ListProjects').token_headers, ['flyte-authorization']);
    } finally {
      await inbox.close();
    }
  });

  it('client credentials (ClientSecret, flyte-worker): lists projects as the service', async () => {
    await admin.resetCalls();
    const cfg = writeConfig(dir, { endpoint: `dns:///${endpoint}`, insecure: true, authType: 'ClientSecret', clientId: 'flyte-worker', clientSecretLocation: secret() });
    const r = await runFlyte(['--config', cfg]);
    const { user, identity } = whoami(r);
    assert.equal(user, 'flyte-worker');
    assert.equal(identity['x-forwarded-user'], 'flyte-worker');
    const { counts } = await admin.calls();
    assert.deepEqual(counts, { ListProjects: 1, GetPublicClientConfig: 1, GetOAuth2Metadata: 1 });
  });

  it('no token, a garbage token, a token for another audience: UNAUTHENTICATED, and nothing reaches the admin', async () => {
    await admin.resetCalls();
    refused(await raw([]), 'no token', 'bearer_missing');
    refused(await raw(['--token', 'not-a-jwt']), 'garbage token', 'bearer_malformed');
    const other = await serviceToken(s, { resource: 'api://portcullis-demo' });
    refused(await raw(['--token', other]), 'api://portcullis-demo token on flyte-authorization', 'bearer_wrong_audience');
    refused(await raw(['--header', 'authorization', '--token', other]), 'api://portcullis-demo token on authorization', 'bearer_wrong_audience');
    // The first header present wins: a bad flyte-authorization is not rescued by a good authorization.
    const good = await serviceToken(s, { client: 'flyte-worker', resource: 'api://flyte', scope: 'all' });
    refused(await raw(['--token', 'not-a-jwt', '--metadata', `authorization=Bearer ${good}`]), 'bad first header', 'bearer_malformed');
    // flytekit itself with a token from an external command (admin.command): it retries and gives up.
    const cmd = writeConfig(dir, { endpoint: `dns:///${endpoint}`, insecure: true, authType: 'ExternalCommand', command: ['echo', other] });
    const r = await runFlyte(['--config', cmd]);
    refused(r, 'flytekit with a wrong-audience token', 'bearer_wrong_audience');
    assert.equal(r.result.error, 'FlyteAuthenticationException');
    const { counts } = await admin.calls();
    assert.equal(counts.ListProjects, undefined, `refused calls reached the admin: ${JSON.stringify(counts)}`);
    assert.equal(counts.GetPublicClientConfig, 1, 'ExternalCommand read the header key from the admin');
  });

  it('a good token on authorization (the second header) is accepted; spoofed identity metadata is replaced', async () => {
    await admin.resetCalls();
    const good = await serviceToken(s, { client: 'flyte-worker', resource: 'api://flyte', scope: 'all' });
    const r = await raw(['--header', 'authorization', '--token', good, '--metadata', 'x-auth-request-user=root', '--metadata', 'x-forwarded-user=root']);
    const { user, identity } = whoami(r);
    assert.equal(user, 'flyte-worker');
    assert.equal(identity['x-forwarded-user'], 'flyte-worker');
    assert.equal((await admin.calls()).counts.ListProjects, 1);
  });

  it('the metadata RPCs pass without a token, answered by the admin', async () => {
    await admin.resetCalls();
    const r = await raw(['--rpc', 'GetPublicClientConfig', '--metadata', 'x-auth-request-user=root']);
    assert.equal(r.code, 0, JSON.stringify(r.result));
    assert.equal(r.result.response.client_id, 'flytectl');
    assert.equal(r.result.response.authorization_metadata_key, 'flyte-authorization');
    const m = await raw(['--rpc', 'GetOAuth2Metadata']);
    assert.equal(m.result.response.token_endpoint, `${s.idp}/token`);
    const { counts, log } = await admin.calls();
    assert.deepEqual(counts, { GetPublicClientConfig: 1, GetOAuth2Metadata: 1 });
    assert.deepEqual(log[0].identity, {}, 'a spoofed identity header is stripped on a public route too');
  });

  it('Portcullis serves /config/v1/flyte_client and /.well-known/oauth-authorization-server (flyteadmin\'s JSON)', async () => {
    await admin.resetCalls();
    const disco = (await get(`${s.idp}/.well-known/openid-configuration`)).json();
    // flyte-cli setup-config fetches the client config with requests' Accept */*; the gateway's clients ask
    // for application/json. Both get flyteadmin's field names.
    for (const accept of ['application/json', '*/*']) {
      const c = await get(`${s.app}/config/v1/flyte_client`, { headers: { accept } });
      assert.equal(c.status, 200, c.body);
      assert.match(c.headers['content-type'], /^application\/json/);
      const j = c.json();
      // PublicClientAuthConfigResponse, every field present (grpc-gateway's EmitUnpopulated).
      assert.deepEqual(Object.keys(j).sort(), ['audience', 'authorization_metadata_key', 'client_id', 'redirect_uri', 'scopes', 'service_http_endpoint']);
      assert.equal(j.client_id, 'flytectl');
      assert.equal(j.redirect_uri, REDIRECT);
      assert.deepEqual(j.scopes, ['all', 'offline']);
      assert.equal(j.authorization_metadata_key, 'flyte-authorization');
      assert.equal(j.audience, '');
      const m = await get(`${s.app}/.well-known/oauth-authorization-server`, { headers: { accept } });
      assert.equal(m.status, 200, m.body);
      const md = m.json();
      // OAuth2MetadataResponse's ten fields, the IdP's values.
      assert.deepEqual(Object.keys(md).sort(), ['authorization_endpoint', 'code_challenge_methods_supported', 'device_authorization_endpoint',
        'grant_types_supported', 'issuer', 'jwks_uri', 'response_types_supported', 'scopes_supported', 'token_endpoint',
        'token_endpoint_auth_methods_supported']);
      assert.equal(md.issuer, s.idp);
      assert.equal(md.authorization_endpoint, disco.authorization_endpoint);
      assert.equal(md.token_endpoint, disco.token_endpoint);
      assert.equal(md.jwks_uri, disco.jwks_uri);
      assert.deepEqual(md.code_challenge_methods_supported, disco.code_challenge_methods_supported);
      assert.deepEqual(md.grant_types_supported, disco.grant_types_supported);
      assert.equal(md.device_authorization_endpoint, '', 'the IdP has no device flow');
    }
    assert.deepEqual((await admin.calls()).counts, {}, 'answered by Portcullis, not forwarded');
  });
});
