//! The invariant target: the engine (fixed config, fake-IdP provider loaded, see `src/engine.rs`)
//! driven by a sequence of operations read from the input: requests with arbitrary method, path,
//! authority and headers (raw bytes, non-UTF-8 included) carrying valid, tampered, truncated, misplaced
//! or foreign cookies; callback requests for real pending logins; token-endpoint and JWKS replies from
//! the fake IdP, pre-signed good and bad ID tokens, arbitrary bytes and statuses, or no reply; a browser
//! cookie jar; logins at the fake IdP; the root refresh timer; and a clock that only moves forward.
//!
//! Invariants after every request:
//! - never a panic;
//! - `Forward` for a non-public path (`/public/*`, on the normalized path) only when the request carried
//!   a session cookie value this engine minted that is valid now, and then `X-Forwarded-User` is that
//!   session's user; a public forward carries no identity;
//! - after the `Forward`'s edits (`HeaderEdits::apply_raw`) no client-sent identity header survives (any
//!   case, `_` for `-`), and no `Cookie` header upstream holds one of our cookies (`_pc`, `_pc_hint`,
//!   `_pc_login_*`), read by the core's parser or as a bare pair;
//! - a login completes only with an ID token genuinely signed by the IdP for that login's nonce, within
//!   its validity; `/userinfo` answers 200 only for a valid session;
//! - a `Respond` never contains the client secret (raw, form-encoded or in a Basic header), never has a
//!   control character in a header, sets only our cookies (token names; HttpOnly, Secure,
//!   SameSite=Lax), and a 302's
//!   single `Location` resolves to this host, the IdP, or an allowlisted host;
//! - callouts go only to the IdP cluster, and only for the callback.
//!
//! Input format (byte code, so seeds can be written by hand; missing bytes read as 0): a seed byte for
//! the RNG, a cache capacity byte, then operations `op = byte % 6`: 0 request, 1 advance seconds (u16),
//! 2 advance minutes (u8), 3 log in at the fake IdP, 4 root timer tick, 5 browser navigation. See
//! `fuzz/seeds.py` for the encoder.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portcullis_core::decision::{Callout, CalloutResponse, Decision, HeaderEdits, Reason};
use portcullis_core::policy::path::normalize_path;
use portcullis_core::request::{
    cookie_pairs, encode_component, parse_cookie_header, query_param, RawHeader, Request,
};
use portcullis_core::testkit::FakeIdp;
use portcullis_core::{Engine, Outcome, UnixTime, VmState};
use portcullis_fuzz::engine::{
    apply_set_cookies, fake_idp, sign_ed, world, KnownSession, World, AUTO_KIND, GOOD_KINDS,
    LEEWAY, SESSION_TTL, T0, TOKEN_KINDS,
};
use portcullis_fuzz::{
    allowlist_admits, is_identity_name, is_pc_cookie, lenient_percent_decode, APP_HOST,
    CLIENT_SECRET, HEADER_NAMES,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const PATHS: &[&str] = &[
    "/",
    "/app",
    "/app?x=1",
    "/public/",
    "/public/a.css",
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2e/admin",
    "/public/.%2e/admin",
    "/public/..%2fadmin",
    "/public/..;/admin",
    "/public/%252e%252e/admin",
    "/public/%c0%ae%c0%ae/admin",
    "/public\\..\\admin",
    "//public/x",
    "/public%2f..%2fadmin",
    "/healthz",
    "/oauth2/ping",
    "/oauth2/ping/x",
    "/oauth2//ping",
    "/OAUTH2/ping",
    "/oauth2/start?rd=//evil.com",
    "/oauth2/start?rd=https://app.example.com/x",
    "/oauth2/callback?code=a&state=bbbbbbbbbbbbbbbbbbbbbb",
    "/oauth2/callback?error=access_denied",
    "/oauth2/userinfo",
    "/oauth2/sign_out",
    "/oauth2/backchannel_logout",
    "/oauth2/sign_out?rd=https://evil.com/",
    "*",
    "",
    "app",
    "/\u{0}",
    "/%",
    "/a b",
    "/app#frag",
];

const RDS: &[&str] = &[
    "/",
    "/app?x=1",
    "https://app.example.com/x",
    "https://app.example.com:8443/x",
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "/%2F%2Fevil.com",
    "/%5Cevil.com",
    "/\t/evil.com",
    "/%09/evil.com",
    "/%0d%0aSet-Cookie:x=y",
    "/x?q=%0d%0aSet-Cookie:x=y",
    "https://evil.com/",
    "https://example.com.evil.com/",
    "https://app.example.com@evil.com/",
    "https://evil.com\\@app.example.com/",
    "javascript:alert(1)",
    "https://0x7f.1/",
    "https:evil.com",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get"];
const ACCEPTS: &[&str] = &[
    "",
    "text/html",
    "application/json",
    "*/*",
    "text/html;q=0.5, application/json",
];
const COOKIE_NAMES: &[&str] = &[
    "_pc",
    "_pc_hint",
    "_pc_login_",
    "_PC",
    "_pcx",
    "theme",
    "_pc_login_zzzzzzzzzzzz",
];
const SEPARATORS: &[&str] = &["; ", ";", ";  ", ", ", ";\t", " ; "];
const USERS: &[&str] = &[
    "alice",
    "bob",
    "eve\r\nx-forwarded-groups: admins",
    "\u{fc}n\u{ef}",
];

/// Reads the byte code; past the end every read is 0 / empty.
struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn pick<'b>(&mut self, xs: &[&'b str]) -> &'b str {
        xs[usize::from(self.u8()) % xs.len()]
    }
    /// A length byte, then that many bytes (fewer at the end of the input).
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8()).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How to answer one callout.
#[derive(Debug, Clone)]
enum Reply {
    /// The IdP's own answer (token endpoint: the good reply of the attempt the code names, or the fake
    /// IdP for codes it issued; JWKS: the rotated set; discovery: the document).
    Auto,
    /// A pre-signed reply of an attempt, by kind (see `TOKEN_KINDS`).
    Token { attempt: usize, kind: usize },
    /// Any status and body.
    Raw { status: u16, body: Vec<u8> },
    /// No reply at all (timeout, reset).
    Failed,
    /// 0: rotated JWKS, 1: original JWKS, 2: an empty key set, 3: discovery document.
    Doc(u8),
}

fn read_replies(r: &mut R<'_>) -> Vec<Reply> {
    (0..r.u8() % 4)
        .map(|_| match r.u8() % 6 {
            0 => Reply::Auto,
            1 => Reply::Token {
                attempt: usize::from(r.u8()),
                kind: usize::from(r.u8()),
            },
            2 => Reply::Raw {
                status: r.u16() % 600,
                body: r.bytes().to_vec(),
            },
            3 => Reply::Raw {
                status: [200, 400, 401, 500, 502, 503, 504][usize::from(r.u8()) % 7],
                body: Vec::new(),
            },
            4 => Reply::Failed,
            _ => Reply::Doc(r.u8() % 4),
        })
        .collect()
}

/// What the last token-endpoint reply carried.
#[derive(Debug, Clone, Default)]
struct TokenSeen {
    /// The ID token is genuinely the IdP's (a good kind, or the fake IdP's own token endpoint).
    genuine: bool,
    /// Its payload, read without verification.
    claims: Option<Value>,
}

struct Run<'w> {
    w: &'w World,
    engine: Engine,
    vm: VmState,
    rng: ChaCha20Rng,
    now: u64,
    jar: Vec<(String, String)>,
    minted: Vec<KnownSession>,
    idp: Option<FakeIdp>,
    last_authorize: Option<String>,
    natural_callback: Option<String>,
    /// state -> nonce of logins started at the fake IdP during this run.
    natural: Vec<(String, String)>,
    /// code -> (user, nonce) the fake IdP issued during this run.
    natural_codes: Vec<(String, String, String)>,
}

fn claims_of(body: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let payload = v.get("id_token")?.as_str()?.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Whether the client itself sent `secret` in a header (name or value), as written, percent-decoded, or
/// with the characters the engine drops from what it echoes (controls, quotes, backslashes:
/// `"pc-fuzz\x01-secret"` in `:authority` is the secret in the realm, and a path's control
/// characters are dropped from the log line).
fn client_sent(h: &[(Vec<u8>, Vec<u8>)], secret: &str) -> bool {
    let scrub = |b: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(b)
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
            .collect::<String>()
            .into_bytes()
    };
    h.iter().any(|(n, v)| {
        let dv = lenient_percent_decode(v);
        let forms = [n.clone(), v.clone(), scrub(v), scrub(&dv), dv];
        forms.iter().any(|x| contains(x, secret.as_bytes()))
    })
}

fn secret_forms() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            CLIENT_SECRET.to_string(),
            encode_component(CLIENT_SECRET),
            STANDARD.encode(format!("app:{}", encode_component(CLIENT_SECRET))),
        ]
    })
}

/// `PORTCULLIS_FUZZ_TRACE=1` prints one line per request (replay a seed or a crash to see the flow).
fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("PORTCULLIS_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // First byte before the slice compare: every `bcmp` is hooked by libFuzzer, which costs.
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w[0] == needle[0] && w == needle)
}

impl<'w> Run<'w> {
    fn sessions(&self) -> impl Iterator<Item = &KnownSession> {
        self.w.sessions.iter().chain(self.minted.iter())
    }

    fn session_value(&self, i: u8) -> String {
        let n = self.w.sessions.len() + self.minted.len();
        self.sessions()
            .nth(usize::from(i) % n)
            .map(|s| s.value.clone())
            .unwrap_or_default()
    }

    fn idp(&mut self) -> &mut FakeIdp {
        let now = self.now;
        let idp = self.idp.get_or_insert_with(|| fake_idp(now));
        idp.now = now;
        idp
    }

    fn cookie_value(&mut self, r: &mut R<'_>) -> String {
        let w = self.w;
        match r.u8() % 6 {
            0 => self.session_value(r.u8()),
            1 => w.bogus[usize::from(r.u8()) % w.bogus.len()].clone(),
            2 => w.attempts[usize::from(r.u8()) % w.attempts.len()]
                .cookie
                .1
                .clone(),
            3 => w.hints[usize::from(r.u8()) % w.hints.len()].clone(),
            4 => {
                // A tampered valid session: one byte changed.
                let mut v = self.session_value(r.u8()).into_bytes();
                let (at, x) = (r.u16(), r.u8());
                if !v.is_empty() {
                    let at = usize::from(at) % v.len();
                    v[at] ^= if x == 0 { 1 } else { x };
                }
                String::from_utf8_lossy(&v).into_owned()
            }
            _ => {
                let v = self.session_value(r.u8());
                let cut = usize::from(r.u16()) % (v.len() + 1);
                v.get(..cut).unwrap_or("").to_string()
            }
        }
    }

    /// One `Cookie` header value.
    fn cookie_header(&mut self, r: &mut R<'_>) -> Vec<u8> {
        let sep = r.pick(SEPARATORS);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for _ in 0..r.u8() % 6 {
            let part = match r.u8() % 6 {
                0 => format!("_pc={}", self.cookie_value(r)).into_bytes(),
                1 => {
                    let a = &self.w.attempts[usize::from(r.u8()) % self.w.attempts.len()];
                    format!("{}={}", a.cookie.0, a.cookie.1).into_bytes()
                }
                2 => format!(
                    "_pc_hint={}",
                    self.w.hints[usize::from(r.u8()) % self.w.hints.len()]
                )
                .into_bytes(),
                3 => self
                    .jar
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
                    .into_bytes(),
                4 => r.bytes().to_vec(),
                _ => {
                    // Any prefix bytes, a name, any value.
                    let mut p = r.bytes().to_vec();
                    p.extend_from_slice(r.pick(COOKIE_NAMES).as_bytes());
                    p.extend_from_slice(&r.bytes().to_vec());
                    p.push(b'=');
                    p.extend_from_slice(self.cookie_value(r).as_bytes());
                    p
                }
            };
            parts.push(part);
        }
        parts.join(sep.as_bytes())
    }

    fn path(&mut self, r: &mut R<'_>) -> Vec<u8> {
        let w = self.w;
        match r.u8() % 8 {
            0 => r.pick(PATHS).as_bytes().to_vec(),
            1 => r.bytes().to_vec(),
            2 => [b"/public/".as_slice(), r.bytes()].concat(),
            3 => {
                let i = usize::from(r.u8()) % w.attempts.len();
                let a = &w.attempts[i];
                let mut q = Vec::new();
                match r.u8() % 4 {
                    0 => q.push(format!("code=sc-{i}")),
                    1 => {}
                    2 => q.push(format!("code={}", r.text())),
                    _ => q.push(format!("code=sc-{i}&code=sc-{i}")),
                }
                let other = &w.attempts[(i + 1) % w.attempts.len()];
                match r.u8() % 5 {
                    0 => q.push(format!("state={}", a.state)),
                    1 => q.push(format!("state={}", other.state)),
                    2 => {}
                    3 => q.push(format!("state={}", r.text())),
                    _ => q.push(format!("state={0}&state={0}", a.state)),
                }
                match r.u8() % 3 {
                    0 => {}
                    1 => q.push("iss=https%3A%2F%2Fidp.test".into()),
                    _ => q.push("iss=https%3A%2F%2Fevil.test".into()),
                }
                let extra = r.text();
                format!("/oauth2/callback?{}{extra}", q.join("&")).into_bytes()
            }
            4 => self
                .natural_callback
                .clone()
                .unwrap_or_else(|| "/oauth2/callback".into())
                .into_bytes(),
            5 | 6 => {
                let ep = if r.u8() % 2 == 0 { "start" } else { "sign_out" };
                let rd = match r.u8() % 3 {
                    0 => String::new(),
                    1 => format!("?rd={}", encode_component(r.pick(RDS))),
                    _ => format!("?rd={}", r.text()),
                };
                format!("/oauth2/{ep}{rd}").into_bytes()
            }
            _ => [r.pick(PATHS).as_bytes(), b"?", r.bytes()].concat(),
        }
    }

    fn request(&mut self, r: &mut R<'_>) {
        let method: Vec<u8> = match r.u8() % 9 {
            8 => r.bytes().to_vec(),
            i => METHODS
                .get(usize::from(i))
                .map_or(Vec::new(), |m| m.as_bytes().to_vec()),
        };
        let path = self.path(r);
        let mut h: Vec<(Vec<u8>, Vec<u8>)> =
            vec![(b":method".to_vec(), method), (b":path".to_vec(), path)];
        match r.u8() % 5 {
            0 => h.push((b":authority".to_vec(), APP_HOST.into())),
            1 => {}
            2 => h.push((b":authority".to_vec(), r.bytes().to_vec())),
            3 => h.push((b"host".to_vec(), APP_HOST.into())),
            _ => {
                h.push((b":authority".to_vec(), r.bytes().to_vec()));
                h.push((b"Host".to_vec(), r.bytes().to_vec()));
            }
        }
        let flags = r.u8();
        h.push((
            b":scheme".to_vec(),
            if flags & 1 != 0 { "https" } else { "http" }.into(),
        ));
        let accept = ACCEPTS[usize::from(flags >> 2 & 7) % ACCEPTS.len()];
        if !accept.is_empty() {
            h.push((b"accept".to_vec(), accept.into()));
        }
        if flags & 0x20 != 0 {
            h.push((b"sec-fetch-mode".to_vec(), b"cors".to_vec()));
        }
        if flags & 0x40 != 0 {
            h.push((b"x-requested-with".to_vec(), b"XMLHttpRequest".to_vec()));
        }
        for _ in 0..r.u8() % 6 {
            let i = usize::from(r.u8());
            let name = HEADER_NAMES
                .get(i)
                .map_or_else(|| r.bytes().to_vec(), |n| n.as_bytes().to_vec());
            h.push((name, r.bytes().to_vec()));
        }
        if flags & 2 != 0 && !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            h.push((b"cookie".to_vec(), c.join("; ").into_bytes()));
        }
        for _ in 0..r.u8() % 4 {
            let c = self.cookie_header(r);
            h.push((
                if flags & 0x80 != 0 {
                    b"Cookie".to_vec()
                } else {
                    b"cookie".to_vec()
                },
                c,
            ));
        }
        let replies = read_replies(r);
        self.send(&h, replies);
    }

    fn navigate(&mut self, r: &mut R<'_>) {
        let path = self.path(r);
        let mut h: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b":method".to_vec(), b"GET".to_vec()),
            (b":path".to_vec(), path),
            (b":authority".to_vec(), APP_HOST.into()),
            (b":scheme".to_vec(), b"https".to_vec()),
            (b"accept".to_vec(), b"text/html".to_vec()),
        ];
        if !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            h.push((b"cookie".to_vec(), c.join("; ").into_bytes()));
        }
        self.send(&h, Vec::new());
    }

    fn answer_token(
        &mut self,
        reply: Reply,
        callout: &Callout,
    ) -> (Option<u16>, Vec<u8>, TokenSeen) {
        let w = self.w;
        let form = String::from_utf8_lossy(&callout.body).into_owned();
        let code = query_param(&form, "code")
            .ok()
            .flatten()
            .unwrap_or_default();
        let setup_attempt = code
            .strip_prefix("sc-")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < w.attempts.len());
        let (status, body, genuine) = match reply {
            Reply::Auto => match setup_attempt {
                Some(i) => (Some(200), w.attempts[i].tokens[AUTO_KIND].clone(), true),
                None => {
                    let auth = callout
                        .headers
                        .iter()
                        .find(|(n, _)| n == "authorization")
                        .map(|(_, v)| v.clone());
                    // The fake IdP checks the code, PKCE and client authentication as usual; its ID
                    // token is signed with its Ed25519 key (an RS256 signature costs milliseconds).
                    let grant = self
                        .natural_codes
                        .iter()
                        .find(|(c, _, _)| *c == code)
                        .cloned();
                    let idp = self.idp();
                    // A code we did not see issued (the fuzzer can spell one): the IdP's last nonce.
                    let (user, nonce) = grant.map_or_else(
                        || {
                            (
                                "alice".to_string(),
                                idp.last_nonce.clone().unwrap_or_default(),
                            )
                        },
                        |(_, user, nonce)| (user, nonce),
                    );
                    idp.id_token_override = Some(sign_ed(&idp.claims(&user, &nonce)));
                    let (s, b) = idp.token(&callout.body, auth.as_deref());
                    idp.id_token_override = None;
                    (Some(s), b.into_bytes(), s == 200)
                }
            },
            Reply::Token { attempt, kind } => {
                let (a, k) = (attempt % w.attempts.len(), kind % TOKEN_KINDS.len());
                (
                    Some(200),
                    w.attempts[a].tokens[k].clone(),
                    GOOD_KINDS.contains(&k),
                )
            }
            Reply::Raw { status, body } => (Some(status), body, false),
            Reply::Failed => (None, Vec::new(), false),
            Reply::Doc(d) => (Some(200), self.doc(d), false),
        };
        let seen = TokenSeen {
            genuine,
            claims: claims_of(&body),
        };
        (status, body, seen)
    }

    fn doc(&self, d: u8) -> Vec<u8> {
        match d {
            0 => self.w.jwks_rotated.clone(),
            1 => self.w.jwks.clone(),
            2 => br#"{"keys":[]}"#.to_vec(),
            _ => self.w.discovery.clone(),
        }
    }

    fn answer_doc(&self, reply: Reply, callout: &Callout) -> (Option<u16>, Vec<u8>) {
        match reply {
            Reply::Auto if callout.path.ends_with("/openid-configuration") => {
                (Some(200), self.w.discovery.clone())
            }
            Reply::Auto => (Some(200), self.w.jwks_rotated.clone()),
            Reply::Token { attempt, kind } => {
                let a = &self.w.attempts[attempt % self.w.attempts.len()];
                (Some(200), a.tokens[kind % TOKEN_KINDS.len()].clone())
            }
            Reply::Raw { status, body } => (Some(status), body),
            Reply::Failed => (None, Vec::new()),
            Reply::Doc(d) => (Some(200), self.doc(d)),
        }
    }

    fn send(&mut self, h: &[(Vec<u8>, Vec<u8>)], replies: Vec<Reply>) {
        let raw: Vec<RawHeader<'_>> = h.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let req = Request::from_headers(&raw);
        let mut replies = replies.into_iter();
        let mut d =
            self.engine
                .handle_request(&req, UnixTime(self.now), &mut self.rng, &mut self.vm);
        if let Decision::ReadBody { limit } = d {
            // The body is fuzzer-chosen: the last header's value (a back-channel logout endpoint).
            let body = h.last().map_or(&[][..], |(_, v)| &v[..]);
            let mut with_body = req;
            with_body.body = Some(&body[..body.len().min(limit + 1)]);
            d = self.engine.handle_request(
                &with_body,
                UnixTime(self.now),
                &mut self.rng,
                &mut self.vm,
            );
            assert!(
                !matches!(d, Decision::ReadBody { .. }),
                "asked twice for the body"
            );
        }
        let mut token: Option<TokenSeen> = None;
        let mut first = true;
        while let Decision::Callout { callout, pending } = d {
            assert_eq!(
                callout.cluster, "idp",
                "callout to another cluster: {callout:?}"
            );
            if first {
                assert!(
                    req.path_only() == "/oauth2/callback" && req.method == "GET",
                    "a callout for {} {:?}",
                    req.method,
                    req.path
                );
            }
            let reply = replies.next().unwrap_or(Reply::Auto);
            let (status, body) = if first {
                let (s, b, seen) = self.answer_token(reply, &callout);
                token = Some(seen);
                (s, b)
            } else {
                assert!(
                    callout.path.ends_with("/jwks"),
                    "second callout is not the JWKS: {callout:?}"
                );
                self.answer_doc(reply, &callout)
            };
            first = false;
            let response = match status {
                Some(status) => CalloutResponse::Received {
                    status,
                    body: &body,
                },
                None => CalloutResponse::Failed,
            };
            d = self.engine.handle_callout_response(
                pending,
                response,
                UnixTime(self.now),
                &mut self.rng,
                &mut self.vm,
            );
        }
        self.check(&req, h, &d, token.as_ref());
        self.check_log_line(&req, h, &d);
        if trace() {
            let status = match &d {
                Decision::Respond { status, .. } => *status,
                _ => 0,
            };
            eprintln!(
                "T0+{:<6} {} {:?} -> {} {}",
                self.now - T0,
                req.method,
                req.path,
                status,
                d.reason().map_or("callout", |r| r.code())
            );
        }
        if let Decision::Respond { headers, .. } = &d {
            apply_set_cookies(&mut self.jar, headers);
            if d.reason() == Some(Reason::LoginStarted) {
                self.last_authorize = headers
                    .iter()
                    .find(|(n, _)| n == "location")
                    .map(|(_, v)| v.clone());
            }
            if d.reason() == Some(Reason::LoginCompleted) {
                let value = headers
                    .iter()
                    .filter(|(n, _)| n == "set-cookie")
                    .find_map(|(_, v)| v.strip_prefix("_pc=").and_then(|v| v.split(';').next()))
                    .expect("a completed login sets the session cookie");
                let sub = token
                    .as_ref()
                    .and_then(|t| t.claims.as_ref())
                    .and_then(|c| c.get("sub"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.minted.push(KnownSession {
                    value: value.to_string(),
                    user: sub.chars().filter(|c| !c.is_control()).collect(),
                    issued: self.now,
                    expires: self.now + SESSION_TTL,
                });
            }
        }
    }

    /// The decision log when the request ends: never a panic, one line without control characters,
    /// and never the client secret or a session cookie the client did not put in its own path.
    fn check_log_line(&mut self, req: &Request<'_>, h: &[(Vec<u8>, Vec<u8>)], d: &Decision) {
        let status = match d {
            Decision::Respond { status, .. } => *status,
            _ => 200,
        };
        self.vm.request_started();
        let outcome = Outcome::begin(req, d);
        let Some(line) = self
            .engine
            .finish_request(&outcome, status, 1_234, &mut self.vm)
        else {
            return;
        };
        assert!(
            !line.text.chars().any(char::is_control),
            "control character in a log line: {:?}",
            line.text
        );
        for s in secret_forms() {
            assert!(
                client_sent(h, s) || !line.text.contains(s.as_str()),
                "client secret in a log line: {:?}\nrequest {h:?}",
                line.text
            );
        }
        for m in &self.minted {
            assert!(
                client_sent(h, &m.value) || !line.text.contains(m.value.as_str()),
                "a session cookie in a log line: {}",
                line.text
            );
        }
    }

    fn nonce_of_state(&self, state: &str) -> Option<&str> {
        self.w
            .attempts
            .iter()
            .map(|a| (a.state.as_str(), a.nonce.as_str()))
            .chain(self.natural.iter().map(|(s, n)| (s.as_str(), n.as_str())))
            .find(|(s, _)| *s == state)
            .map(|(_, n)| n)
    }

    fn allowed_location(&self, loc: &str) -> bool {
        static BASE: OnceLock<url::Url> = OnceLock::new();
        let base = BASE.get_or_init(|| url::Url::parse("https://app.test/").unwrap());
        let Ok(u) = base.join(loc) else {
            return false;
        };
        if u.host_str() == Some(APP_HOST)
            && u.port().is_none()
            && matches!(u.scheme(), "https" | "http")
        {
            return true;
        }
        if allowlist_admits(&u) && matches!(u.scheme(), "https" | "http") {
            return true;
        }
        // The IdP's own endpoints (whatever the installed discovery document says).
        let idp_hosts: Vec<String> = self
            .vm
            .provider(0)
            .map(|p| {
                [
                    Some(&p.metadata.authorization_endpoint),
                    p.metadata.end_session_endpoint.as_ref(),
                ]
                .into_iter()
                .flatten()
                .filter_map(|e| url::Url::parse(e).ok())
                .map(|e| format!("{}://{}", e.scheme(), e.host_str().unwrap_or("")))
                .collect()
            })
            .unwrap_or_default();
        idp_hosts.contains(&format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")))
    }

    fn carried(&self, h: &[(Vec<u8>, Vec<u8>)]) -> Vec<&KnownSession> {
        let now = self.now;
        self.sessions()
            .filter(|s| s.valid_at(now))
            .filter(|s| {
                h.iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                    .any(|(_, v)| contains(v, s.value.as_bytes()))
            })
            .collect()
    }

    fn check(
        &self,
        req: &Request<'_>,
        h: &[(Vec<u8>, Vec<u8>)],
        d: &Decision,
        token: Option<&TokenSeen>,
    ) {
        let raw: Vec<RawHeader<'_>> = h.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        match d {
            Decision::Callout { .. }
            | Decision::ReadBody { .. }
            | Decision::Wait { .. }
            | Decision::Claim { .. } => {
                unreachable!("answered (no refresh tokens are issued here, so nothing waits)")
            }
            Decision::Forward {
                request,
                response,
                reason,
                ..
            } => {
                assert!(
                    *response == HeaderEdits::default(),
                    "response edits on a forward: {response:?}"
                );
                let out = request.apply_raw(&raw);
                let sets: Vec<(&str, &[u8])> = request.sets().collect();
                // Headers we compose (identity from IdP claims); the rebuilt `Cookie` keeps the client's
                // own bytes by design.
                for (n, v) in sets
                    .iter()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("cookie"))
                    .map(|(n, v)| (n.as_bytes(), *v))
                    .chain(
                        request
                            .add
                            .iter()
                            .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                    )
                {
                    assert!(
                        !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
                        "CR/LF/NUL in upstream header {n:?}: {v:?}"
                    );
                }
                for (n, v) in &out {
                    if is_identity_name(n) {
                        assert!(
                            sets.iter().any(|(sn, sv)| sn.as_bytes() == &n[..] && sv == v),
                            "client-sent identity header reaches upstream: {:?}: {:?}\nrequest {h:?}\nedits {request:?}",
                            String::from_utf8_lossy(n),
                            String::from_utf8_lossy(v)
                        );
                    }
                    if n.eq_ignore_ascii_case(b"cookie") {
                        // As the engine reads cookies, and as pairs (any value bytes).
                        for (cn, _) in parse_cookie_header(v) {
                            assert!(!is_pc_cookie(cn), "our cookie {cn:?} reaches upstream in {v:?}\nrequest {h:?}\nedits {request:?}");
                        }
                        for c in cookie_pairs(v) {
                            let ours = c.value.is_some()
                                && std::str::from_utf8(c.name).is_ok_and(is_pc_cookie);
                            assert!(!ours, "our cookie {c:?} reaches upstream\nrequest {h:?}\nedits {request:?}");
                        }
                    }
                }
                let user: Vec<&[u8]> = out
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-user"))
                    .map(|(_, v)| &v[..])
                    .collect();
                match reason {
                    Reason::PublicPath => {
                        let norm = normalize_path(req.path_only());
                        assert!(
                            norm.as_deref().is_some_and(|n| n.starts_with("/public/")),
                            "forwarded as public: {:?} (normalized {norm:?})",
                            req.path
                        );
                        assert!(
                            request.identity.is_none() && user.is_empty(),
                            "identity on a public forward"
                        );
                    }
                    Reason::Authenticated => {
                        let carried = self.carried(h);
                        assert!(
                            !carried.is_empty(),
                            "forwarded {:?} {:?} at T0+{} without a valid session cookie\nrequest {h:?}",
                            req.method,
                            req.path,
                            self.now - T0
                        );
                        assert!(
                            carried.iter().any(|s| match user.as_slice() {
                                [] => s.user.is_empty(),
                                [u] => s.user.as_bytes() == *u,
                                _ => false,
                            }),
                            "x-forwarded-user {user:?} is not the user of a carried session"
                        );
                    }
                    other => panic!("forward with reason {other:?}"),
                }
            }
            Decision::Respond {
                status,
                headers,
                body,
                reason,
                ..
            } => {
                assert!((200..600).contains(status), "status {status}");
                // The client may send the secret itself (the fuzzer learns it from this very check);
                // only a secret it did not send is a leak.
                let asked_for_secret = secret_forms().iter().any(|s| client_sent(h, s));
                if !asked_for_secret {
                    for s in secret_forms() {
                        assert!(
                            !contains(body, s.as_bytes()),
                            "client secret in a response body"
                        );
                        for (n, v) in headers {
                            assert!(
                                !v.contains(s.as_str()),
                                "client secret in response header {n}"
                            );
                        }
                    }
                }
                for (n, v) in headers {
                    assert!(
                        !n.chars().any(char::is_control) && !v.chars().any(char::is_control),
                        "control character in response header {n:?}: {v:?} ({reason:?})\nrequest {h:?}"
                    );
                    if n.eq_ignore_ascii_case("set-cookie") {
                        let name = v
                            .split(';')
                            .next()
                            .and_then(|p| p.split_once('='))
                            .map_or("", |(n, _)| n);
                        assert!(is_pc_cookie(name), "sets a cookie that is not ours: {v:?}");
                        assert!(
                            name.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)),
                            "a cookie name that is not a token: {v:?}"
                        );
                        assert!(
                            v.contains("; HttpOnly")
                                && v.contains("; Secure")
                                && v.contains("; SameSite=Lax"),
                            "cookie attributes: {v:?}"
                        );
                    }
                }
                let locations: Vec<&str> = headers
                    .iter()
                    .filter(|(n, _)| n == "location")
                    .map(|(_, v)| v.as_str())
                    .collect();
                if *status == 302 {
                    assert_eq!(locations.len(), 1, "302 with {locations:?}");
                    assert!(
                        self.allowed_location(locations[0]),
                        "302 to {:?} ({reason:?})\nrequest {h:?}",
                        locations[0]
                    );
                }
                match reason {
                    Reason::LoginCompleted => {
                        let state = query_param(req.query(), "state")
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        let nonce = self.nonce_of_state(&state);
                        let t = token.expect("a completed login had a token reply");
                        let c = t.claims.as_ref();
                        let num = |k: &str| c.and_then(|c| c.get(k)).and_then(Value::as_u64);
                        let ok = t.genuine
                            && nonce.is_some()
                            && c.and_then(|c| c.get("nonce")).and_then(Value::as_str) == nonce
                            && num("exp").is_some_and(|e| self.now < e.saturating_add(LEEWAY))
                            && num("iat").is_some_and(|i| i <= self.now + LEEWAY);
                        assert!(
                            ok,
                            "login completed with {t:?} for state {state:?} at T0+{}",
                            self.now - T0
                        );
                    }
                    Reason::UserInfo => {
                        let carried = self.carried(h);
                        assert!(!carried.is_empty(), "userinfo without a valid session");
                        let v: Value = serde_json::from_slice(body).expect("userinfo is JSON");
                        let u = v.get("user").and_then(Value::as_str).unwrap_or_default();
                        assert!(
                            carried.iter().any(|s| {
                                // The session's user as sealed (identity headers drop control characters).
                                s.user == u.chars().filter(|c| !c.is_control()).collect::<String>()
                            }),
                            "userinfo for {u:?}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn idp_login(&mut self, r: &mut R<'_>) {
        let user = r.pick(USERS);
        let Some(url) = self.last_authorize.clone() else {
            return;
        };
        let Ok(back) = self.idp().authorize(&url, user) else {
            return;
        };
        let q = url.split_once('?').map_or("", |(_, q)| q);
        if let (Ok(Some(state)), Some(nonce)) =
            (query_param(q, "state"), self.idp().last_nonce.clone())
        {
            // The IdP appends its parameters to the redirect URI, which holds the request's authority
            // (any bytes, `?` included): they follow the last `?`.
            let back_q = back.rsplit_once('?').map_or("", |(_, q)| q);
            if let Ok(Some(code)) = query_param(back_q, "code") {
                self.natural_codes
                    .push((code, user.to_string(), nonce.clone()));
            }
            self.natural.push((state, nonce));
        }
        // Back to the redirect URI's path (whatever host the request named).
        let path = back
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()));
        self.natural_callback = path;
    }

    fn tick(&mut self, r: &mut R<'_>) {
        let mut replies = read_replies(r).into_iter();
        let mut queue = self.engine.handle_timeout(UnixTime(self.now), &mut self.vm);
        let mut steps = 0;
        while let Some((callout, pending)) = queue.pop() {
            steps += 1;
            assert!(steps <= 4, "a refresh that never ends");
            assert_eq!(callout.cluster, "idp");
            let (status, body) = self.answer_doc(replies.next().unwrap_or(Reply::Auto), &callout);
            let response = match status {
                Some(status) => CalloutResponse::Received {
                    status,
                    body: &body,
                },
                None => CalloutResponse::Failed,
            };
            let step = self.engine.handle_root_response(
                pending,
                response,
                UnixTime(self.now),
                &mut self.vm,
            );
            if let Some(line) = &step.log {
                assert!(!line.text.contains(CLIENT_SECRET));
            }
            queue.extend(step.next);
        }
        if let Some(p) = self.vm.provider(0) {
            assert_eq!(p.metadata.issuer, self.engine.config().issuer);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut r = R(data);
    let seed = r.u8();
    let cache_cap = usize::from(r.u8() % 8);
    let mut run = Run {
        w,
        engine: w.engine.clone(),
        vm: {
            let mut vm = w.vm.clone();
            vm.set_session_cache_capacity(cache_cap);
            vm
        },
        rng: ChaCha20Rng::seed_from_u64(u64::from(seed)),
        now: T0,
        jar: Vec::new(),
        minted: Vec::new(),
        idp: None,
        last_authorize: None,
        natural_callback: None,
        natural: Vec::new(),
        natural_codes: Vec::new(),
    };
    let mut ops = 0;
    while !r.is_empty() && ops < 32 {
        ops += 1;
        match r.u8() % 6 {
            0 => run.request(&mut r),
            1 => run.now += u64::from(r.u16()),
            2 => run.now += u64::from(r.u8()) * 60,
            3 => run.idp_login(&mut r),
            4 => run.tick(&mut r),
            _ => run.navigate(&mut r),
        }
    }
});
