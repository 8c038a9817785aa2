// The client flows several end-to-end files drive the same way: a browser login through oidc-provider's
// interactions, and a service's client-credentials token.
import assert from 'node:assert/strict';

import { get, idpLogin, Jar, request } from './http.mjs';

const nav = { accept: 'text/html' };
const api = { accept: 'application/json' };

/** A browser starts a login at `path` and signs in at the IdP: the callback URL, and the jar with the login cookie. */
export async function toCallback(s, user, path = '/app') {
  const jar = new Jar();
  const start = await get(`${s.app}${path}`, { headers: nav, jar });
  assert.equal(start.status, 302, `login start for ${user}: ${start.status} ${start.body.slice(0, 300)}`);
  const callback = await idpLogin(start.headers.location, user);
  assert.ok(callback.startsWith(`${s.app}/oauth2/callback?`), callback);
  return { jar, callback };
}

/** A complete login that must succeed: session cookie set, then a request forwarded as that user. Returns the jar. */
export async function signIn(s, user, path = '/app') {
  const { jar, callback } = await toCallback(s, user, path);
  const done = await get(callback, { headers: nav, jar });
  assert.equal(done.status, 302, `callback for ${user}: ${done.status} ${done.body.slice(0, 400)}`);
  assert.ok(jar.get('_portcullis'), `a session for ${user}`);
  const r = await get(`${s.app}/who`, { headers: api, jar });
  assert.equal(r.status, 200, r.body.slice(0, 300));
  assert.equal(r.json().headers['x-forwarded-user'], user);
  return jar;
}

/** A client credentials access token from oidc-provider (an RFC 9068 JWT for `resource`). */
export async function serviceToken(s, { client = 'svc-worker', resource = 'api://portcullis-demo', scope = 'read' } = {}) {
  const basic = Buffer.from(`${client}:${client}-secret`).toString('base64');
  const r = await request('POST', `${s.idp}/token`, {
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
  });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).access_token;
}

/** Headers of an API request with a bearer token. */
export const bearer = (t) => ({ ...api, authorization: `Bearer ${t}` });
