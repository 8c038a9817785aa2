#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into fuzz/corpus/<target>/seed-*.

Run from anywhere: `python3 fuzz/seeds.py`. Idempotent (same files, same names). The seeds are the
attack tables of the core's unit tests (core/src/policy/path.rs, redirect.rs), a valid plugin config
(core/tests/common/mod.rs), real proxy-wasm header maps, the fake IdP's discovery document and JWKS, ID
tokens signed with the test key core/src/testkit/rsa-1.pem (and broken ones), and engine_sequence
byte code for whole login flows (its format is documented in fuzz_targets/engine_sequence.rs and
mirrored by the `Ops` encoder below).
"""
import base64
import hashlib
import hmac
import json
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
ISSUER = "https://idp.test"
KEY_1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
CLIENT_SECRET = "pc-fuzz-secret-Zq8xW3vT"
NOW = 1_700_000_000


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def header_map(pairs):
    out = struct.pack("<I", len(pairs))
    for n, v in pairs:
        out += struct.pack("<II", len(n), len(v))
    for n, v in pairs:
        out += n + b"\0" + v + b"\0"
    return out


def rust_str_list(path, const):
    """The string literals of `const NAME: &[&str] = &[...]` in a Rust file, unescaped."""
    src = open(path, encoding="utf-8").read()
    m = re.search(r"const " + const + r": &\[&str\] = &\[(.*?)\];", src, re.S)
    lits = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))

    def unescape(s):
        s = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), s)
        return s.replace("\\t", "\t").replace("\\r", "\r").replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")

    return [unescape(x) for x in lits]


def test_table(path, fn_name):
    """The string literals in the `for x in [...]` table of one unit test."""
    src = open(path, encoding="utf-8").read()
    body = src[src.index("fn " + fn_name):]
    table = body[body.index("[") : body.index("] {")]
    return [
        re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), x)
        .replace("\\t", "\t").replace("\\r", "\r").replace("\\n", "\n").replace("\\\\", "\\")
        for x in re.findall(r'"((?:[^"\\]|\\.)*)"', table)
    ]


def base_config():
    return {
        "issuer": ISSUER,
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": CLIENT_SECRET,
        "cookie": {"name": "_pc", "session_ttl_seconds": 3600, "keys": [{"id": "k1", "secret": KEY_1}]},
        "public_paths": ["/public/*"],
        "allowed_redirect_domains": [".example.com"],
    }


# ----- RSA test key (core/src/testkit/rsa-1.pem) ------------------------------------------------------

def rsa_key():
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        return None
    pem = open(os.path.join(ROOT, "core/src/testkit/rsa-1.pem"), "rb").read()
    return serialization.load_pem_private_key(pem, password=None)


def rs256(key, header, claims):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = b64u(json.dumps(header, separators=(",", ":"))) + "." + b64u(json.dumps(claims, separators=(",", ":")))
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()) if key else b"\0" * 256
    return signing_input + "." + b64u(sig)


def jwks_doc(key):
    if key is None:
        n = b"\xc3" * 256
        e = b"\x01\x00\x01"
    else:
        nums = key.public_key().public_numbers()
        n = nums.n.to_bytes(256, "big")
        e = nums.e.to_bytes(3, "big")
    return {"keys": [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64u(n), "e": b64u(e)}]}


def good_claims(nonce="n-fuzz-nonce"):
    return {
        "iss": ISSUER, "sub": "alice", "aud": "app", "azp": "app", "exp": NOW + 300, "iat": NOW,
        "nonce": nonce, "email": "alice@example.com", "email_verified": True, "name": "User alice",
        "preferred_username": "alice", "groups": ["staff", "team-alice"],
    }


# ----- engine_sequence byte code ----------------------------------------------------------------------

ES = os.path.join(HERE, "fuzz_targets/engine_sequence.rs")
PATHS = rust_str_list(ES, "PATHS")
RDS = rust_str_list(ES, "RDS")
COOKIE_NAMES = rust_str_list(ES, "COOKIE_NAMES")
SEPARATORS = rust_str_list(ES, "SEPARATORS")
HEADER_NAMES = rust_str_list(os.path.join(HERE, "src/lib.rs"), "HEADER_NAMES")
TOKEN_KINDS = rust_str_list(os.path.join(HERE, "src/engine.rs"), "TOKEN_KINDS")


class Ops:
    """Encoder mirroring the reader `R` of engine_sequence.rs."""

    def __init__(self, seed=0, cache=4):
        self.b = bytearray([seed, cache])

    def u8(self, v):
        self.b.append(v & 0xFF)
        return self

    def u16(self, v):
        self.b += struct.pack("<H", v)
        return self

    def bytes(self, data):
        if isinstance(data, str):
            data = data.encode()
        assert len(data) < 256
        self.b.append(len(data))
        self.b += data
        return self

    # path selectors
    def p_known(self, p):
        return self.u8(0).u8(PATHS.index(p))

    def p_raw(self, p):
        return self.u8(1).bytes(p)

    def p_public(self, rest):
        return self.u8(2).bytes(rest)

    def p_callback(self, attempt=0, code=0, state=0, iss=1, extra=""):
        self.u8(3).u8(attempt).u8(code)
        if code == 2:
            self.bytes("x")
        self.u8(state)
        if state == 3:
            self.bytes("x" * 22)
        return self.u8(iss).bytes(extra)

    def p_natural_callback(self):
        return self.u8(4)

    def p_endpoint(self, sign_out=False, rd=None, rd_text=None):
        self.u8(5).u8(1 if sign_out else 0)
        if rd is not None:
            return self.u8(1).u8(RDS.index(rd))
        if rd_text is not None:
            return self.u8(2).bytes(rd_text)
        return self.u8(0)

    # cookie values (after a part selector that takes one)
    def v_session(self, i):
        return self.u8(0).u8(i)

    def v_bogus(self, i):
        return self.u8(1).u8(i)

    def v_tampered(self, i, at, x):
        return self.u8(4).u8(i).u16(at).u8(x)

    def v_truncated(self, i, cut):
        return self.u8(5).u8(i).u16(cut)

    def request(self, path, method=0, authority=0, flags=0x05, headers=(), cookies=(), replies=(), authority_bytes=b""):
        """path: a callable that writes the path selector; cookies: list of (sep index, [part writers])."""
        self.u8(0).u8(method)
        path(self)
        self.u8(authority)
        if authority == 2:
            self.bytes(authority_bytes)
        self.u8(flags)
        self.u8(len(headers))
        for name, value in headers:
            self.u8(HEADER_NAMES.index(name)).bytes(value)
        self.u8(len(cookies))
        for sep, parts in cookies:
            self.u8(sep).u8(len(parts))
            for part in parts:
                part(self)
        self.u8(len(replies))
        for r in replies:
            r(self)
        return self

    def navigate(self, path):
        self.u8(5)
        path(self)
        return self

    def advance(self, secs):
        return self.u8(1).u16(secs)

    def idp_login(self, user=0):
        return self.u8(3).u8(user)

    def tick(self, replies=()):
        self.u8(4).u8(len(replies))
        for r in replies:
            r(self)
        return self


# reply writers
def r_auto(o):
    o.u8(0)


def r_token(attempt, kind):
    return lambda o: o.u8(1).u8(attempt).u8(kind)


def r_raw(status, body):
    return lambda o: o.u8(2).u16(status).bytes(body)


def r_failed(o):
    o.u8(4)


def r_doc(d):
    return lambda o: o.u8(5).u8(d)


# cookie part writers
def c_pc(value_writer):
    return lambda o: value_writer(o.u8(0))


def c_login(i):
    return lambda o: o.u8(1).u8(i)


def c_hint(i):
    return lambda o: o.u8(2).u8(i)


def c_jar(o):
    o.u8(3)


def c_raw(data):
    return lambda o: o.u8(4).bytes(data)


def c_named(prefix, name, suffix, value_writer):
    return lambda o: value_writer(o.u8(5).bytes(prefix).u8(COOKIE_NAMES.index(name)).bytes(suffix))


def engine_seeds():
    out = {}
    # A whole natural login at the fake IdP, then an authenticated navigation.
    out["natural-login"] = (
        Ops().navigate(lambda o: o.p_known("/app?x=1")).idp_login(0).navigate(lambda o: o.p_natural_callback())
        .navigate(lambda o: o.p_known("/app")).b
    )
    # The same, then sign-out with the hint cookie, then the session expires.
    out["natural-login-sign-out"] = (
        Ops(seed=3).navigate(lambda o: o.p_known("/")).idp_login(1).navigate(lambda o: o.p_natural_callback())
        .navigate(lambda o: o.p_endpoint(sign_out=True, rd="https://app.example.com/x"))
        .advance(4000).navigate(lambda o: o.p_known("/app")).b
    )
    # Callbacks of the setup attempts with each pre-signed token kind; the rotated key needs a JWKS.
    for kind in range(len(TOKEN_KINDS)):
        replies = [r_token(0, kind)] + ([r_doc(0)] if kind == 1 else [])
        out[f"callback-kind-{kind}"] = (
            Ops().request(lambda o: o.p_callback(0), cookies=[(0, [c_login(0)])], replies=replies)
            .request(lambda o: o.p_known("/app"), cookies=[(0, [c_jar])]).b
        )
    out["callback-wrong-state"] = Ops().request(lambda o: o.p_callback(0, state=1), cookies=[(0, [c_login(0), c_login(1)])]).b
    out["callback-token-failures"] = (
        Ops().request(lambda o: o.p_callback(1), cookies=[(0, [c_login(1)])], replies=[r_failed])
        .request(lambda o: o.p_callback(2), cookies=[(0, [c_login(2)])], replies=[r_raw(503, "")])
        .request(lambda o: o.p_callback(0), cookies=[(0, [c_login(0)])], replies=[r_raw(200, "<html>")]).b
    )
    out["callback-rotated-jwks-fails"] = Ops().request(
        lambda o: o.p_callback(0), cookies=[(0, [c_login(0)])], replies=[r_token(0, 1), r_raw(500, "")]
    ).b
    # Sessions: valid, tampered, truncated, misplaced, foreign, with spoofed identity headers.
    spoof = [("x-forwarded-user", "admin"), ("X_FORWARDED_EMAIL", "root@example.com"), ("x-auth-request-user", "admin")]
    out["session-spoofed-headers"] = Ops().request(
        lambda o: o.p_known("/app"), headers=spoof, cookies=[(1, [c_raw("theme=dark"), c_pc(lambda o: o.v_session(0)), c_hint(0)])]
    ).b
    out["session-tampered"] = Ops().request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_tampered(0, 40, 1))])]).b
    out["session-truncated"] = Ops().request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_truncated(1, 30))])]).b
    for i in range(7):
        out[f"session-bogus-{i}"] = Ops().request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o, i=i: o.v_bogus(i))])]).b
    out["session-misnamed"] = Ops().request(
        lambda o: o.p_known("/app"),
        cookies=[(0, [c_named(" ", "_pc", "", lambda o: o.v_session(0)), c_named("", "_PC", "", lambda o: o.v_session(1))])],
    ).b
    out["session-expiry"] = (
        Ops().request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_session(0))])])
        .advance(3599).request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_session(0))])])
        .advance(2).request(lambda o: o.p_known("/oauth2/userinfo"), cookies=[(0, [c_pc(lambda o: o.v_session(0))])]).b
    )
    out["session-future"] = (
        Ops().request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_session(3))])])
        .advance(940).request(lambda o: o.p_known("/app"), cookies=[(0, [c_pc(lambda o: o.v_session(3))])]).b
    )
    # Public paths and traversal out of them, with and without a session.
    for i, p in enumerate(PATHS):
        out[f"path-{i:02d}"] = Ops().request(lambda o, p=p: o.p_known(p), headers=spoof[:1]).b
    out["public-raw"] = Ops().request(lambda o: o.p_public("x/../../admin"), cookies=[(0, [c_pc(lambda o: o.v_session(0))])]).b
    # Redirect targets through /start and /sign_out.
    for i, rd in enumerate(RDS):
        out[f"rd-{i:02d}"] = Ops().request(lambda o, rd=rd: o.p_endpoint(sign_out=i % 2 == 1, rd=rd), cookies=[(0, [c_hint(0)])]).b
    # API clients, methods, odd authorities.
    out["xhr"] = Ops().request(lambda o: o.p_known("/app"), flags=0x40 | 0x08).b
    out["post"] = Ops().request(lambda o: o.p_known("/oauth2/start?rd=//evil.com"), method=2).b
    out["authority-raw"] = Ops().request(lambda o: o.p_known("/app"), authority=2, authority_bytes=b"evil.test:8080").b
    # Many stale login cookies.
    out["stale-logins"] = Ops().request(
        lambda o: o.p_known("/"),
        cookies=[(0, [c_named("", "_pc_login_", f"{i:012d}", lambda o: o.v_bogus(0)) for i in range(5)]),
                 (1, [c_login(0), c_login(1), c_login(2)])],
    ).b
    # The root timer: a good refresh, a broken discovery, a JWKS with no keys.
    out["tick"] = Ops().advance(700).tick([r_auto, r_auto]).tick([r_raw(200, '{"issuer":"https://evil.test"}')]).advance(120).tick([r_doc(3), r_doc(2)]).b
    return out


def main():
    # path: the attack table and the good table of core/src/policy/path.rs.
    path_rs = os.path.join(ROOT, "core/src/policy/path.rs")
    seen = set()
    for fn in ["normalization_resolves_dots_merges_slashes_and_decodes_unreserved", "ambiguous_paths_are_refused",
               "traversal_out_of_a_public_prefix_is_not_public", "the_fast_path_agrees_with_normalization"]:
        for p in test_table(path_rs, fn):
            if p not in seen:
                seen.add(p)
                write("path", hashlib.sha1(p.encode()).hexdigest()[:10], p)
    # redirect: the attack tables of core/src/policy/redirect.rs.
    red_rs = os.path.join(ROOT, "core/src/policy/redirect.rs")
    for fn in ["same_host_paths_are_accepted", "open_redirect_attempts_are_refused", "allowlisted_absolute_urls_are_accepted",
               "allowlist_entries_admit_the_default_port_unless_they_name_one", "urls_read_differently_by_whatwg_are_refused"]:
        for t in test_table(red_rs, fn):
            write("redirect", hashlib.sha1(t.encode()).hexdigest()[:10], t)
    # header_map: real maps as Envoy hands them over.
    req = [(b":authority", b"app.test"), (b":path", b"/app?x=1"), (b":method", b"GET"), (b":scheme", b"https"),
           (b"user-agent", b"curl/8.5.0"), (b"accept", b"*/*"), (b"cookie", b"_pc=k1.AAAA; theme=dark"),
           (b"x-forwarded-proto", b"https"), (b"x-request-id", b"0f4a8c9e-2d1b-4c7a-9e55-b2f1c3d4e5f6")]
    write("header_map", "envoy-request", header_map(req))
    write("header_map", "latin1-and-nul", header_map([(b"x", b"caf\xe9\x00y"), (b"", b"")]))
    write("header_map", "empty-map", header_map([]))
    # cookie_header: flags byte, then a header map or `name:value` lines.
    write("cookie_header", "map", b"\x00" + header_map(req + [(b"Cookie", b"_pc_login_abc=q; _pc_hint=h"), (b"X_Forwarded_User", b"admin")]))
    write("cookie_header", "lines",
          b"\x01:method:GET\n:path:/x\nhost:app.test\ncookie:a=1; _pc=xyz; b=2\ncookie:_pc_login_abc=q\n"
          b"cookie:t=caf\xe9;  _pc=x ;\xff\nx-forwarded-user:a\nX_AUTH_REQUEST_USER:d\nauthorization:Bearer x\n"
          b"x-forwarded-proto:HTTPS\ncookie:c=\"3\"; =x; noequals; _pc_hint\n")
    write("cookie_header", "bad-utf8-pseudo", b"\x00:path:/caf\xe9\nHost:h\xe9\n:authority:\n")
    # query: flags, raw 0xFF query 0xFF name 0xFF pairs (k\0v).
    write("query", "callback", b"\x01a%2Fb+c%zz%4\xffcode=abc&state=a%2Fb+c&state=x&iss=https%3A%2F%2Fidp.test\xffstate"
          b"\xffrd\x00/app?x=1&y\xffrd\x00dup\xff\xc3\xbc\x00\xe2\x82\xac")
    write("query", "bad-escape", b"\x00%\xffstate=%zz\xffstate")
    # sealed_cookie: 16 header bytes, then name 0xFF bind 0xFF value 0xFF plaintext.
    hdr = bytes([0, 1, 0x41]) + struct.pack("<HH", 17, 30) + struct.pack("<Q", 1) + b"\x00"
    write("sealed_cookie", "session", hdr + b"_pc\xffhttps://idp.test\x00app\xffk1.bm90LWEtcmVhbC1jb29raWUtdmFsdWU\xff"
          + json.dumps({"u": "alice", "s": "alice", "i": NOW, "x": NOW + 3600}).encode())
    write("sealed_cookie", "login", bytes([1, 0, 0x80, 3, 0, 9, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]) + b"_pc_login_abc\xffb\xffk2.\xff\xff\xff")
    # token_response
    write("token_response", "good", json.dumps({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": "a.b.c"}))
    write("token_response", "mac", json.dumps({"access_token": "at-1", "token_type": "MAC", "id_token": "a.b.c"}))
    write("token_response", "error", json.dumps({"error": "invalid_grant", "error_description": "bad code"}))
    write("token_response", "no-id-token", json.dumps({"access_token": "at-1", "token_type": "bearer"}))
    # jwks + discovery (the fake IdP's documents).
    key = rsa_key()
    jwks = jwks_doc(key)
    write("jwks", "fake-idp-jwks", json.dumps(jwks))
    mixed = {"keys": jwks["keys"] + [
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)},
        {"kty": "EC", "crv": "P-384", "kid": "ec384", "x": b64u(b"\x01" * 48), "y": b64u(b"\x02" * 48)},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64u(b"\x03" * 32)},
        {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}, {"kty": 5}]}
    write("jwks", "mixed-keys", json.dumps(mixed))
    write("jwks", "discovery", json.dumps({
        "issuer": ISSUER, "authorization_endpoint": ISSUER + "/auth", "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks", "end_session_endpoint": ISSUER + "/session/end",
        "code_challenge_methods_supported": ["S256"]}))
    # config
    write("config", "base", json.dumps(base_config()))
    full = base_config()
    full.update({
        "client_auth": "client_secret_post", "redirect_url": "https://app.test/auth/callback", "prefix": "/auth",
        "scopes": ["openid", "email"], "headers": {"pass_access_token": True, "pass_authorization_header": True},
        "claims": {"user": "email", "groups": "roles"}, "insecure_allow_unverified_email": False,
        "post_logout_redirect_url": "https://www.example.com/bye", "id_token": {"allowed_algs": ["RS256", "EdDSA"], "leeway_seconds": 600},
        "provider": {"refresh_interval_seconds": 10, "jwks_min_refetch_interval_seconds": 0, "callout_timeout_ms": 60000},
        "session_cache_size": 0,
    })
    full["cookie"].update({"name": "__Host-pc", "secure": True, "login_ttl_seconds": 3600, "max_pending_logins": 20,
                           "accept_client_ids": ["other"], "keys": [{"id": "new", "secret": b64u(b"\x07" * 32)}, {"id": "k1", "secret": KEY_1}]})
    write("config", "full", json.dumps(full))
    public = {k: v for k, v in base_config().items() if k != "client_secret"}
    public["client_auth"] = "none"
    write("config", "public-client", json.dumps(public))
    # jwt: mode byte + input. 0: raw token text; 4: header 0xFF payload (signed by the target's Ed25519 key).
    claims = good_claims()
    # Genuinely signed by the fake IdP's key, but for another login's nonce: raw tokens must never verify.
    good = rs256(key, {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}, good_claims("n-another-login"))
    h, p, s = good.split(".")
    write("jwt", "raw-rs256-other-nonce", b"\x00" + good.encode())
    write("jwt", "raw-flipped-sig", b"\x00" + f"{h}.{p}.{s[:-2]}AA".encode())
    write("jwt", "raw-alg-none", b"\x00" + f"{b64u(json.dumps({'alg': 'none'}))}.{p}.".encode())
    pub = open(os.path.join(ROOT, "core/src/testkit/rsa-1.pub.pem"), "rb").read()
    hs_in = f"{b64u(json.dumps({'alg': 'HS256', 'kid': 'rsa-1'}))}.{p}"
    write("jwt", "raw-hs256-public-key", b"\x00" + f"{hs_in}.{b64u(hmac.new(pub, hs_in.encode(), hashlib.sha256).digest())}".encode())
    write("jwt", "raw-jku", b"\x00" + f"{b64u(json.dumps({'alg': 'RS256', 'jku': 'https://evil/jwks', 'kid': 'x'}))}.{p}.{s}".encode())
    write("jwt", "raw-crit", b"\x00" + f"{b64u(json.dumps({'alg': 'RS256', 'kid': 'rsa-1', 'crit': ['exp']}))}.{p}.{s}".encode())
    write("jwt", "signed-good", b"\x04" + json.dumps({"alg": "EdDSA", "kid": "ed-1"}).encode() + b"\xff" + json.dumps(claims).encode())
    for name, patch in [("aud-list-no-azp", {"aud": ["app", "other"], "azp": None}), ("neg-exp", {"exp": -1}),
                        ("float-exp", {"exp": 1.7e9 + 300.5}), ("dup-claims", None)]:
        c = dict(claims)
        if patch:
            for k, v in patch.items():
                if v is None:
                    c.pop(k)
                else:
                    c[k] = v
        body = json.dumps(c).encode()
        if patch is None:
            body = body[:-1] + b', "iss": "https://evil.test"}'
        write("jwt", "signed-" + name, b"\x04" + json.dumps({"alg": "EdDSA"}).encode() + b"\xff" + body)
    for mode in (1, 2, 3):
        write("jwt", f"mode-{mode}", bytes([mode]) + bytes(range(64)))
    # engine_sequence byte code.
    for name, data in engine_seeds().items():
        write("engine_sequence", name, bytes(data))


if __name__ == "__main__":
    main()
