// The demo/test upstream: echoes the request it received. JSON by default; a small HTML page for browsers
// showing who Portcullis says you are.    ECHO_PORT (9100)
import http from 'node:http';

const port = Number(process.env.ECHO_PORT || 9100);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Idle keep-alive longer than Node's 5 s default, so Envoy never reuses a connection being closed
// (see tests/idp/server.mjs).
http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  const headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    headers[k] = headers[k] === undefined ? req.rawHeaders[i + 1] : [].concat(headers[k], req.rawHeaders[i + 1]);
  }
  const echo = { method: req.method, path: req.url, headers };
  if ((req.headers.accept || '').includes('text/html')) {
    const user = headers['x-forwarded-user'];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Portcullis demo app</title></head>
<body style="font-family:sans-serif;max-width:48em;margin:3em auto">
<h1 id="who">${user ? `Signed in as ${esc(user)}` : 'Not signed in'}</h1>
<p>Email: <span id="email">${esc(headers['x-forwarded-email'] || '')}</span>;
groups: <span id="groups">${esc(headers['x-forwarded-groups'] || '')}</span></p>
<p><a id="signout" href="/oauth2/sign_out">Sign out</a></p>
<h2>Request as the upstream received it</h2><pre id="echo">${esc(JSON.stringify(echo, null, 2))}</pre></body></html>`);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(echo));
}).listen(port, '127.0.0.1', () => console.log(`echo upstream listening on http://127.0.0.1:${port}`));
