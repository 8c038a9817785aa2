// Exact bytes on the wire, both ways, for the hostile-input tests: Node's http client refuses (or
// re-encodes) header bytes >= 0x80 in some places, and the echo upstream's JSON cannot tell every byte
// apart from its UTF-8 look-alike. Here a request is a Buffer written as-is to a fresh TCP connection and
// the response is parsed by hand; `startRawUpstream` is an in-process HTTP/1.1 server that records every
// request head it receives and answers with each header value in base64.
import net from 'node:net';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

const bytes = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1'));

/**
 * One HTTP/1.1 request head as bytes. `headers` is a list of [name, value] pairs (strings are taken as
 * Latin-1, so '\xe9' is the single byte 0xe9; Buffers as they are). Values may hold any byte but CR, LF
 * and NUL (those would be request smuggling, not hostile header bytes: refused here so a test cannot send
 * them by mistake). `Connection: close` is added unless given.
 */
export function rawHead({ method = 'GET', target = '/', headers = [], body } = {}) {
  const lines = [Buffer.concat([bytes(method), Buffer.from(' '), bytes(target), Buffer.from(' HTTP/1.1')])];
  const hs = [...headers];
  if (!hs.some(([k]) => String(k).toLowerCase() === 'connection')) hs.push(['Connection', 'close']);
  if (body !== undefined && !hs.some(([k]) => String(k).toLowerCase() === 'content-length')) hs.push(['Content-Length', String(bytes(body).length)]);
  for (const [k, v] of hs) {
    const value = bytes(v);
    if (value.includes(0x0d) || value.includes(0x0a) || value.includes(0x00)) throw new Error(`rawHead: CR/LF/NUL in ${k}`);
    lines.push(Buffer.concat([bytes(k), Buffer.from(': '), value]));
  }
  return Buffer.concat([...lines.flatMap((l) => [l, CRLF]), CRLF, ...(body === undefined ? [] : [bytes(body)])]);
}

/** Parses `CRLF`-separated header lines (after the first line) into [name, valueBuffer] pairs. */
function parseHeaderLines(head) {
  const out = [];
  let i = head.indexOf(CRLF);
  if (i < 0) return { first: head, pairs: out };
  const first = head.subarray(0, i);
  let start = i + 2;
  while (start < head.length) {
    let end = head.indexOf(CRLF, start);
    if (end < 0) end = head.length;
    const line = head.subarray(start, end);
    const colon = line.indexOf(0x3a);
    if (colon > 0) {
      let v = line.subarray(colon + 1);
      let a = 0;
      let b = v.length;
      while (a < b && (v[a] === 0x20 || v[a] === 0x09)) a += 1;
      while (b > a && (v[b - 1] === 0x20 || v[b - 1] === 0x09)) b -= 1;
      v = v.subarray(a, b);
      out.push([line.subarray(0, colon).toString('latin1').toLowerCase(), Buffer.from(v)]);
    }
    start = end + 2;
  }
  return { first, pairs: out };
}

/** Decodes a chunked body; `null` while incomplete. */
function dechunk(buf) {
  const parts = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf(CRLF, at);
    if (eol < 0) return null;
    const size = parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size');
    at = eol + 2;
    if (size === 0) {
      const end = buf.indexOf(HEAD_END, at - 2);
      return end < 0 ? null : { body: Buffer.concat(parts), used: end + 4 };
    }
    if (buf.length < at + size + 2) return null;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

/**
 * Writes `head` (a Buffer from rawHead, or any bytes) to a fresh connection to `url`'s host and port and
 * reads one response. Resolves to {status, headers (lowercased name → Latin-1 string, or a list when
 * repeated), pairs ([name, Buffer]), setCookies, body (Buffer), text, json(), closedWithoutResponse}.
 * A connection the server closes without any response resolves with status 0.
 */
export function rawRequest(url, head, { timeout = 15000 } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname === 'localhost' ? '127.0.0.1' : u.hostname, port: Number(u.port) });
    const chunks = [];
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`raw request timed out after ${timeout} ms: ${head.subarray(0, 80).toString('latin1')}`)), timeout);
    const tryParse = (ended) => {
      const buf = Buffer.concat(chunks);
      const he = buf.indexOf(HEAD_END);
      if (he < 0) {
        if (ended) finish(null, { status: 0, headers: {}, pairs: [], setCookies: [], body: buf, text: buf.toString('latin1'), json: () => { throw new Error('no response'); }, closedWithoutResponse: true });
        return;
      }
      const { first, pairs } = parseHeaderLines(buf.subarray(0, he));
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(first.toString('latin1'));
      if (!m) return finish(new Error(`bad status line: ${first.toString('latin1')}`));
      const status = Number(m[1]);
      const rest = buf.subarray(he + 4);
      const find = (n) => pairs.find(([k]) => k === n)?.[1].toString('latin1');
      let body = null;
      if (find('transfer-encoding')?.toLowerCase().includes('chunked')) {
        const d = dechunk(rest);
        if (d) body = d.body;
      } else if (find('content-length') !== undefined) {
        const n = Number(find('content-length'));
        if (rest.length >= n) body = rest.subarray(0, n);
      } else if (status === 204 || status === 304 || status < 200) {
        body = Buffer.alloc(0);
      } else if (ended) {
        body = rest;
      }
      if (body === null) {
        if (ended) finish(new Error(`connection closed mid-body (${rest.length} bytes)`));
        return;
      }
      const headers = {};
      for (const [k, v] of pairs) {
        const s = v.toString('latin1');
        headers[k] = headers[k] === undefined ? s : [].concat(headers[k], s);
      }
      const text = body.toString('utf8');
      finish(null, {
        status, headers, pairs, body, text,
        setCookies: pairs.filter(([k]) => k === 'set-cookie').map(([, v]) => v.toString('latin1')),
        json: () => JSON.parse(text),
        closedWithoutResponse: false,
      });
    };
    sock.on('data', (c) => { chunks.push(c); tryParse(false); });
    sock.on('end', () => tryParse(true));
    sock.on('close', () => tryParse(true));
    sock.on('error', (e) => {
      // A reset after a complete response (or before any) is an answer, not a test error.
      if (chunks.length) tryParse(true); else finish(null, { status: 0, headers: {}, pairs: [], setCookies: [], body: Buffer.alloc(0), text: '', json: () => { throw e; }, closedWithoutResponse: true, error: e.code });
    });
    sock.write(head);
  });
}

/**
 * An in-process HTTP/1.1 upstream on 127.0.0.1 (keep-alive, Content-Length or chunked request bodies).
 * Answers 200 with JSON {method, path, headers: {name: Latin-1 string | list}, b64: [[name, base64]]}:
 * `b64` carries every header value's exact bytes. `received` lists every request head it saw, as
 * {method, path, pairs: [[name, Buffer]], raw: Buffer}, so a test can prove what never arrived.
 */
export function startRawUpstream() {
  const received = [];
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const he = buf.indexOf(HEAD_END);
        if (he < 0) return;
        const raw = buf.subarray(0, he + 4);
        const { first, pairs } = parseHeaderLines(buf.subarray(0, he));
        const [method, path] = first.toString('latin1').split(' ');
        const find = (n) => pairs.find(([k]) => k === n)?.[1].toString('latin1');
        let rest = buf.subarray(he + 4);
        if (find('transfer-encoding')?.toLowerCase().includes('chunked')) {
          const d = dechunk(rest);
          if (!d) return;
          rest = rest.subarray(d.used);
        } else if (find('content-length') !== undefined) {
          const n = Number(find('content-length'));
          if (rest.length < n) return;
          rest = rest.subarray(n);
        }
        buf = Buffer.from(rest);
        const entry = { method, path, pairs, raw: Buffer.from(raw) };
        received.push(entry);
        const headers = {};
        for (const [k, v] of pairs) {
          const s = v.toString('latin1');
          headers[k] = headers[k] === undefined ? s : [].concat(headers[k], s);
        }
        const body = Buffer.from(JSON.stringify({ method, path, headers, b64: pairs.map(([k, v]) => [k, v.toString('base64')]) }));
        sock.write(Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`),
          body,
        ]));
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      received,
      stop: () => { for (const s of sockets) s.destroy(); server.close(); },
    }));
  });
}
