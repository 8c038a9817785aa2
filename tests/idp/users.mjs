// The claims every test user has at the IdP (tests/idp/server.mjs) and at the benchmark's fast IdP
// (bench/fast-idp.mjs), so sessions from either are the same shape and size.

/** The standard claims of user `sub`. */
export function userClaims(sub) {
  return {
    sub,
    email: `${sub}@example.com`,
    email_verified: true,
    name: `${sub[0].toUpperCase()}${sub.slice(1)} Example`,
    preferred_username: sub,
    groups: sub === 'alice' ? ['admins', 'staff'] : ['staff'],
  };
}
