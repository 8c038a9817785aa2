// A small HTTP client for the tests: every request on a fresh connection (so Envoy's workers share the
// load and a login on one worker is followed by requests on the other), no automatic redirects, and a
// cookie jar per host that behaves like a browser's for what we need.
import http from 'node:http';

export class Jar {
  constructor() { this.cookies = new Map(); }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  apply(setCookies = []) {
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      this.cookies.delete(name);
      if (!expired) this.cookies.set(name, value);
    }
  }
  get(name) { return this.cookies.get(name); }
  names() { return [...this.cookies.keys()]; }
}

/** One request. `jar` supplies and receives cookies. Resolves to {status, headers, body, setCookies, json()}. */
export function request(method, url, { headers = {}, body, jar } = {}) {
  const u = new URL(url);
  const h = { ...headers };
  if (jar && jar.cookies.size && !h.cookie) h.cookie = jar.header();
  if (body !== undefined && !h['content-type']) h['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = http.request({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const setCookies = res.headers['set-cookie'] || [];
        if (jar) jar.apply(setCookies);
        resolve({ status: res.statusCode, headers: res.headers, body: text, setCookies, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const get = (url, opts) => request('GET', url, opts);

/**
 * Logs `user` in at the real oidc-provider without a browser: follows its redirects and answers its dev
 * login and consent forms. Returns the URL the IdP finally sends the browser to (our callback).
 */
export async function idpLogin(authorizeUrl, user, idpJar = new Jar()) {
  let url = authorizeUrl;
  const origin = new URL(authorizeUrl).origin;
  for (let step = 0; step < 12; step += 1) {
    const res = await get(url, { jar: idpJar });
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.location, url).toString();
      if (!next.startsWith(origin)) return next;
      url = next;
      continue;
    }
    if (res.status !== 200) throw new Error(`IdP answered ${res.status} at ${url}: ${res.body.slice(0, 300)}`);
    const action = (res.body.match(/<form[^>]*action="([^"]+)"/) || [])[1];
    if (!action) throw new Error(`no form at ${url}`);
    const prompt = res.body.includes('value="login"') ? `prompt=login&login=${encodeURIComponent(user)}&password=x` : 'prompt=consent';
    const post = await request('POST', new URL(action, url).toString(), { body: prompt, jar: idpJar });
    if (post.status < 300 || post.status >= 400) throw new Error(`IdP form post answered ${post.status}`);
    const next = new URL(post.headers.location, url).toString();
    if (!next.startsWith(origin)) return next;
    url = next;
  }
  throw new Error('IdP login did not finish');
}
