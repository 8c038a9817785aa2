//! `verify_id_token` against the fake IdP's published JWKS (RSA `rsa-1`) plus one Ed25519 key (`ed-1`)
//! that this target signs with, so that correctly signed tokens are cheap to make.
//!
//! Properties:
//! - `Raw`: an arbitrary string never verifies;
//! - `Mutate`: byte edits of a valid RS256 (fake IdP) or EdDSA token never verify unless the token is
//!   unchanged;
//! - `Splice`: a valid token with its header, payload and/or signature replaced never verifies unless
//!   the token is unchanged;
//! - `Claims`: a correctly signed token with structured claims verifies exactly when a model of OIDC
//!   Core §3.1.3.7 says it should (iss, aud, azp, exp, iat, nbf, nonce, sub, kid, crit);
//! - `SignedRaw`: a correctly signed token with arbitrary header and payload bytes verifies only if the
//!   same model, read from the payload as JSON, accepts it.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portcullis_core::oidc::jwks::{parse_jwks, Jwks};
use portcullis_core::oidc::verify::{verify_id_token, Expectations};
use portcullis_core::oidc::Alg;
use portcullis_core::testkit::FakeIdp;
use portcullis_core::UnixTime;
use portcullis_fuzz::ISSUER;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

const NOW: u64 = 1_700_000_000;
const LEEWAY: u64 = 60;
const NONCE: &str = "n-fuzz-nonce";

struct Setup {
    jwks: Jwks,
    ed: ed25519_compact::KeyPair,
    rs_token: String,
    ed_token: String,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let mut idp = FakeIdp::new(ISSUER);
        idp.now = NOW;
        let ed = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([42; 32]));
        let mut set: Value = serde_json::from_str(&idp.jwks()).unwrap();
        set["keys"].as_array_mut().unwrap().push(json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(*ed.pk),
        }));
        let jwks = parse_jwks(set.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.keys.len(), 2);
        let claims = idp.claims("alice", NONCE);
        let rs_token = idp.sign(&claims);
        let header = json!({"alg": "EdDSA", "kid": "ed-1", "typ": "JWT"});
        let ed_token = sign_ed(
            &ed,
            header.to_string().as_bytes(),
            Value::Object(claims).to_string().as_bytes(),
        );
        let s = Setup {
            jwks,
            ed,
            rs_token,
            ed_token,
        };
        assert!(
            verify(&s, &s.rs_token).is_ok(),
            "the fake IdP's token must verify"
        );
        assert!(
            verify(&s, &s.ed_token).is_ok(),
            "the EdDSA token must verify"
        );
        s
    })
}

fn sign_ed(kp: &ed25519_compact::KeyPair, header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = kp.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(*sig))
}

fn verify(s: &Setup, token: &str) -> Result<(), portcullis_core::IdTokenError> {
    let exp = Expectations {
        issuer: ISSUER,
        client_id: "app",
        nonce: Some(NONCE),
        allowed_algs: &Alg::ALL,
        now: UnixTime(NOW),
        leeway: LEEWAY,
    };
    verify_id_token(token, &s.jwks, &exp).map(|_| ())
}

#[derive(Debug, Arbitrary)]
enum Str {
    Good,
    Empty,
    Other(String),
    Number(i64),
    Null,
}

#[derive(Debug, Arbitrary)]
enum Time {
    /// Seconds relative to NOW.
    Offset(i16),
    Abs(u64),
    Neg(i64),
    Float(f64),
    Text,
}

#[derive(Debug, Arbitrary)]
enum Aud {
    Str(Str),
    List(Vec<Str>),
}

#[derive(Debug, Arbitrary)]
enum Kid {
    Ed,
    None,
    Rsa,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Claims {
    iss: Option<Str>,
    aud: Option<Aud>,
    azp: Option<Str>,
    exp: Option<Time>,
    iat: Option<Time>,
    nbf: Option<Time>,
    nonce: Option<Str>,
    sub: Option<Str>,
    kid: Kid,
    crit: bool,
    extra: Vec<(String, String)>,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Set(u16, u8),
    Insert(u16, u8),
    Remove(u16),
}

/// The first input byte picks the mode (`% 5`); the rest is the mode's input (raw text for `Raw`,
/// `header 0xFF payload` for `SignedRaw`, `arbitrary` bytes for the others), so seeds are easy to write.
#[derive(Debug)]
enum Input<'a> {
    Raw(String),
    Mutate {
        rsa: bool,
        edits: Vec<Edit>,
    },
    Splice {
        rsa: bool,
        header: Option<&'a [u8]>,
        payload: Option<&'a [u8]>,
        sig: Option<&'a [u8]>,
    },
    Claims(Claims),
    SignedRaw {
        header: &'a [u8],
        payload: &'a [u8],
    },
}

fn decode(data: &[u8]) -> Option<Input<'_>> {
    let (&mode, rest) = data.split_first()?;
    let mut u = Unstructured::new(rest);
    Some(match mode % 5 {
        0 => Input::Raw(String::from_utf8_lossy(rest).into_owned()),
        1 => Input::Mutate {
            rsa: u.arbitrary().ok()?,
            edits: u.arbitrary().ok()?,
        },
        2 => Input::Splice {
            rsa: u.arbitrary().ok()?,
            header: u.arbitrary().ok()?,
            payload: u.arbitrary().ok()?,
            sig: u.arbitrary().ok()?,
        },
        3 => Input::Claims(u.arbitrary().ok()?),
        _ => {
            let cut = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            Input::SignedRaw {
                header: &rest[..cut],
                payload: rest.get(cut + 1..).unwrap_or(&[]),
            }
        }
    })
}

fn str_value(s: &Str, good: &str) -> Value {
    match s {
        Str::Good => Value::from(good),
        Str::Empty => Value::from(""),
        Str::Other(o) => Value::from(o.as_str()),
        Str::Number(n) => Value::from(*n),
        Str::Null => Value::Null,
    }
}

fn time_value(t: &Time) -> Value {
    match t {
        Time::Offset(o) => Value::from(NOW.wrapping_add_signed(i64::from(*o))),
        Time::Abs(a) => Value::from(*a),
        Time::Neg(n) => Value::from(if *n < 0 { *n } else { -1 - (*n % 1_000_000) }),
        Time::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Time::Text => Value::from("1700000000"),
    }
}

/// `None`: the model does not say (odd encodings whose reading is an implementation choice).
#[derive(PartialEq, Eq, Debug, Clone, Copy)]
enum Want {
    Accept,
    Reject,
    Either,
}

/// A NumericDate (RFC 7519 §2) as seconds: `Ok(Some(secs))` for a non-negative integer below 2^53 (or
/// a non-negative number below 9e15, fraction dropped), `Ok(None)` where the reading is an
/// implementation choice (fractional values in [9e15, 2^53)), `Err` for anything else: another type, a
/// negative date (finding F6: jwt-simple read `-1` as the year 2106), an integer past 2^53.
fn numeric_date(v: &Value) -> Result<Option<u64>, ()> {
    const MAX: u64 = 1 << 53;
    let Value::Number(n) = v else {
        return Err(());
    };
    if let Some(u) = n.as_u64() {
        return if u < MAX { Ok(Some(u)) } else { Err(()) };
    }
    if n.as_i64().is_some() {
        return Err(());
    }
    let f = n.as_f64().ok_or(())?;
    if (0.0..9.0e15).contains(&f) {
        Ok(Some(f as u64))
    } else if (9.0e15..MAX as f64).contains(&f) {
        Ok(None)
    } else {
        Err(())
    }
}

/// OIDC Core §3.1.3.7 on a payload, independent of the core and of jwt-simple.
fn model(payload: &Value, kid_ok: Want) -> Want {
    let Some(c) = payload.as_object() else {
        return Want::Reject;
    };
    let mut want = kid_ok;
    let mut either = false;
    let mut reject = |cond: bool| {
        if cond {
            want = Want::Reject;
        }
    };
    reject(c.get("iss").and_then(Value::as_str) != Some(ISSUER));
    let auds: Option<Vec<&str>> = match c.get("aud") {
        Some(Value::String(a)) => Some(vec![a.as_str()]),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        _ => None,
    };
    match auds {
        None => reject(true),
        Some(mut a) => {
            a.sort_unstable();
            a.dedup();
            reject(!a.contains(&"app"));
            match c.get("azp") {
                Some(azp) => reject(azp.as_str() != Some("app")),
                None => reject(a.len() > 1),
            }
        }
    }
    reject(c.get("nonce").and_then(Value::as_str) != Some(NONCE));
    reject(
        c.get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty),
    );
    // `sub`, `iss`, `nonce`, `jti` of another JSON type are malformed claims.
    for k in ["sub", "iss", "nonce", "jti"] {
        reject(c.get(k).is_some_and(|v| !v.is_string() && !v.is_null()));
    }
    match c.get("exp").map(numeric_date) {
        None | Some(Err(())) => reject(true),
        Some(Ok(None)) => either = true,
        Some(Ok(Some(exp))) => reject(NOW >= exp.saturating_add(LEEWAY)),
    }
    match c.get("iat").map(numeric_date) {
        None | Some(Err(())) => reject(true),
        Some(Ok(None)) => either = true,
        Some(Ok(Some(iat))) => reject(iat > NOW + LEEWAY),
    }
    match c.get("nbf").map(numeric_date) {
        None => {}
        Some(Err(())) => reject(true),
        Some(Ok(None)) => either = true,
        Some(Ok(Some(nbf))) => reject(nbf > NOW + LEEWAY),
    }
    if want == Want::Accept && either {
        Want::Either
    } else {
        want
    }
}

fn claims_token(s: &Setup, c: &Claims) -> (String, Want) {
    let mut m = Map::new();
    for (k, v) in c.extra.iter().take(8) {
        m.insert(k.clone(), Value::from(v.as_str()));
    }
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("iss", c.iss.as_ref().map(|s| str_value(s, ISSUER)));
    put(
        "aud",
        c.aud.as_ref().map(|a| match a {
            Aud::Str(s) => str_value(s, "app"),
            Aud::List(l) => Value::Array(l.iter().take(4).map(|s| str_value(s, "app")).collect()),
        }),
    );
    put("azp", c.azp.as_ref().map(|s| str_value(s, "app")));
    put("exp", c.exp.as_ref().map(time_value));
    put("iat", c.iat.as_ref().map(time_value));
    put("nbf", c.nbf.as_ref().map(time_value));
    put("nonce", c.nonce.as_ref().map(|s| str_value(s, NONCE)));
    put("sub", c.sub.as_ref().map(|s| str_value(s, "alice")));
    let mut header = json!({"alg": "EdDSA", "typ": "JWT"});
    let kid_ok = match &c.kid {
        Kid::Ed => {
            header["kid"] = Value::from("ed-1");
            Want::Accept
        }
        // Without a kid the one EdDSA key in the set is unambiguous.
        Kid::None => Want::Accept,
        Kid::Rsa => {
            header["kid"] = Value::from("rsa-1");
            Want::Reject
        }
        Kid::Other(k) => {
            header["kid"] = Value::from(k.as_str());
            if k == "ed-1" {
                Want::Accept
            } else {
                Want::Reject
            }
        }
    };
    let kid_ok = if c.crit {
        header["crit"] = json!(["exp"]);
        Want::Reject
    } else {
        kid_ok
    };
    let payload = Value::Object(m);
    let want = model(&payload, kid_ok);
    let token = sign_ed(
        &s.ed,
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
    );
    (token, want)
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let Some(input) = decode(data) else {
        return;
    };
    match input {
        Input::Raw(t) => {
            assert!(verify(s, &t).is_err(), "arbitrary token verified: {t:?}");
        }
        Input::Mutate { rsa, edits } => {
            let base = if rsa { &s.rs_token } else { &s.ed_token };
            let mut t = base.clone().into_bytes();
            for e in edits.iter().take(8) {
                match *e {
                    Edit::Set(at, b) if !t.is_empty() => {
                        let at = usize::from(at) % t.len();
                        t[at] = b;
                    }
                    Edit::Insert(at, b) => {
                        let at = usize::from(at) % (t.len() + 1);
                        t.insert(at, b);
                    }
                    Edit::Remove(at) if !t.is_empty() => {
                        let at = usize::from(at) % t.len();
                        t.remove(at);
                    }
                    _ => {}
                }
            }
            if let Ok(t) = String::from_utf8(t) {
                if t != *base {
                    assert!(
                        verify(s, &t).is_err(),
                        "mutated token verified:\n{base}\n{t}"
                    );
                }
            }
        }
        Input::Splice {
            rsa,
            header,
            payload,
            sig,
        } => {
            let base = if rsa { &s.rs_token } else { &s.ed_token };
            let parts: Vec<&str> = base.split('.').collect();
            let enc = |b: Option<&[u8]>, orig: &str| {
                b.map_or(orig.to_string(), |b| URL_SAFE_NO_PAD.encode(b))
            };
            let t = format!(
                "{}.{}.{}",
                enc(header, parts[0]),
                enc(payload, parts[1]),
                enc(sig, parts[2])
            );
            if t != *base {
                assert!(
                    verify(s, &t).is_err(),
                    "spliced token verified:\n{base}\n{t}"
                );
            }
        }
        Input::Claims(c) => {
            let (token, want) = claims_token(s, &c);
            let got = verify(s, &token);
            match want {
                Want::Accept => assert!(
                    got.is_ok(),
                    "{c:?}: model accepts, core says {got:?}\n{token}"
                ),
                Want::Reject => {
                    assert!(got.is_err(), "{c:?}: model rejects, core accepts\n{token}")
                }
                Want::Either => {}
            }
        }
        Input::SignedRaw { header, payload } => {
            let token = sign_ed(&s.ed, header, payload);
            if verify(s, &token).is_ok() {
                // A `Value` refuses what typed parsing skips in unknown fields (a lone surrogate
                // escape, a number out of range): cross-check only documents a `Value` can read.
                if let Ok(h) = serde_json::from_slice::<Value>(header) {
                    assert_eq!(h.get("alg").and_then(Value::as_str), Some("EdDSA"), "{h}");
                    assert!(h.get("crit").is_none(), "{h}");
                }
                if let Ok(p) = serde_json::from_slice::<Value>(payload) {
                    assert_ne!(
                        model(&p, Want::Accept),
                        Want::Reject,
                        "verified, but the claims model rejects:\n{p}"
                    );
                }
            }
        }
    }
});
