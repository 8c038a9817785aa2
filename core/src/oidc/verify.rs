//! ID token validation (OIDC Core §3.1.3.7), signature by jwt-simple.
//!
//! Known relying-party attacks this refuses: `alg: none`; HS256 "signed" with the RSA public key as HMAC
//! secret (algorithm confusion: HMAC is never on the allowlist and keys are typed by `kty`); keys smuggled
//! in through `jku`, `x5u`, `jwk` or `x5c` headers (ignored: only the issuer's JWKS is consulted); tokens
//! for another client (`aud`/`azp`); replays into another login (`nonce`); and stale tokens (`exp`,
//! `iat`).

use std::collections::BTreeMap;
use std::string::String;
use std::vec;
use std::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::oidc::jwks::{Jwk, Jwks, KeyMaterial};
use crate::oidc::rsa::{Hash, RsaPublicKey};
pub use crate::oidc::LogoutTokenError;
use crate::oidc::{Alg, IdTokenError};
use crate::time::UnixTime;

/// Longest ID token we look at.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Most keys one token's signature is tried against when a JWKS repeats a `kid`.
pub const MAX_CANDIDATES: usize = 3;

/// What the token must satisfy.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// Exact `iss`.
    pub issuer: &'a str,
    /// Our `client_id`: in `aud`, and `azp` when present.
    pub client_id: &'a str,
    /// The `nonce` we sent. `None` only for a code another client obtained and we redeem ourselves at
    /// the token endpoint (the token exchange): no nonce of ours exists, and an ID token that comes
    /// straight from the token endpoint cannot have been injected (OIDC Core §3.1.3.7 (11) makes the
    /// nonce a defence for front-channel tokens).
    pub nonce: Option<&'a str>,
    /// Allowed algorithms.
    pub allowed_algs: &'a [Alg],
    /// The current time.
    pub now: UnixTime,
    /// Leeway in seconds for `exp`, `iat`, `nbf`.
    pub leeway: u64,
}

/// The claims of a verified ID token (all of them, for the configured claim names).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IdClaims {
    /// Every claim not modelled by jwt-simple's standard set, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A verified token: standard claims checked, the rest in `claims`.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    /// `sub`.
    pub subject: String,
    /// Other claims (`email`, `groups`, `azp`, ...).
    pub claims: IdClaims,
}

/// Verifies `token` against `jwks`. `Err(UnknownKey)` tells the caller a JWKS refetch may help.
pub fn verify_id_token(
    token: &str,
    jwks: &Jwks,
    exp: &Expectations<'_>,
) -> Result<VerifiedIdToken, IdTokenError> {
    let (claims, dates) = verify_signed(token, jwks, exp.allowed_algs, exp.now, exp.leeway)?;
    check_claims(claims, &dates, exp)
}

/// What a bearer (access) token must satisfy (RFC 9068 §4, without insisting on its `typ`).
#[derive(Debug, Clone)]
pub struct AccessExpectations<'a> {
    /// Exact `iss`.
    pub issuer: &'a str,
    /// `aud` must hold one of these.
    pub audiences: &'a [String],
    /// Allowed algorithms.
    pub allowed_algs: &'a [Alg],
    /// The current time.
    pub now: UnixTime,
    /// Leeway in seconds for `exp`, `iat`, `nbf`.
    pub leeway: u64,
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct VerifiedAccessToken {
    /// `sub`, or for a service token without one, its `client_id` / `azp`.
    pub subject: String,
    /// The client the token was issued to (`client_id`, else `azp`), if named.
    pub client_id: Option<String>,
    /// `exp`.
    pub expires_at: u64,
    /// `iat`, if present.
    pub issued_at: Option<u64>,
    /// Every claim.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// The `iss` of a compact JWS, read without verifying anything (to pick the issuer whose keys verify
/// it). `None` if the token is not one.
#[must_use]
pub fn peek_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Map<String, serde_json::Value> =
        crate::json::from_object(&json).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

/// Verifies a bearer access token: signature through the issuer's keys, `iss` exactly, `aud`, `exp`
/// required, `nbf` and `iat` not in the future (with leeway).
pub fn verify_access_token(
    token: &str,
    jwks: &Jwks,
    exp: &AccessExpectations<'_>,
) -> Result<VerifiedAccessToken, IdTokenError> {
    let (c, dates) = verify_signed(token, jwks, exp.allowed_algs, exp.now, exp.leeway)?;
    if c.issuer.as_deref() != Some(exp.issuer) {
        return Err(IdTokenError::WrongIssuer);
    }
    if !audiences_of(&c)
        .iter()
        .any(|a| exp.audiences.iter().any(|want| want == a))
    {
        return Err(IdTokenError::WrongAudience);
    }
    let expires = check_dates(&dates, exp.now, exp.leeway, false)?;
    let mut claims: serde_json::Map<String, serde_json::Value> =
        c.custom.other.into_iter().collect();
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let client_id = text(claims.get("client_id")).or_else(|| text(claims.get("azp")));
    let subject = c
        .subject
        .filter(|s| !s.is_empty())
        .or_else(|| client_id.clone())
        .ok_or(IdTokenError::SubjectMissing)?;
    claims.insert("sub".into(), serde_json::Value::String(subject.clone()));
    Ok(VerifiedAccessToken {
        subject,
        client_id,
        expires_at: expires,
        issued_at: dates.iat,
        claims,
    })
}

/// The signature part shared by ID and access tokens: compact form, `crit` refused, `alg` on the
/// allowlist, the key chosen by `kid` from the issuer's set only (never from `jku`, `x5u`, `jwk`,
/// `x5c`), at most [`MAX_CANDIDATES`] checks. Returns the claims and our own reading of the dates.
fn verify_signed(
    token: &str,
    jwks: &Jwks,
    allowed_algs: &[Alg],
    now: UnixTime,
    leeway: u64,
) -> Result<(JWTClaims<IdClaims>, Dates), IdTokenError> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(IdTokenError::Malformed);
    }
    let header_b64 = token.split('.').next().unwrap_or("");
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| IdTokenError::Malformed)?;
    let header: Header =
        crate::json::from_object(&header_json).map_err(|_| IdTokenError::Malformed)?;
    let dates = Dates::of(token)?;
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: we understand no extensions, so a token that requires one is refused.
        return Err(IdTokenError::Malformed);
    }
    let alg = Alg::from_name(&header.alg)
        .filter(|a| allowed_algs.contains(a))
        .ok_or(IdTokenError::AlgorithmNotAllowed)?;
    let fitting: Vec<&Jwk> = match &header.kid {
        Some(kid) => {
            let named: Vec<&Jwk> = jwks
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                return Err(IdTokenError::UnknownKey);
            }
            let fitting: Vec<&Jwk> = named.into_iter().filter(|k| k.fits(alg)).collect();
            if fitting.is_empty() {
                return Err(IdTokenError::KeyMismatch);
            }
            fitting
        }
        None => {
            // OIDC Core §10.1: without `kid`, the key must be unambiguous — exactly one key of the
            // token's type and algorithm in the set.
            let fitting: Vec<&Jwk> = jwks.keys.iter().filter(|k| k.fits(alg)).collect();
            match fitting.len() {
                0 => return Err(IdTokenError::UnknownKey),
                1 => fitting,
                _ => return Err(IdTokenError::AmbiguousKey),
            }
        }
    };
    // Duplicate kids (a misbehaving IdP) cost at most MAX_CANDIDATES signature checks.
    let mut last = IdTokenError::BadSignature;
    for key in fitting.into_iter().take(MAX_CANDIDATES) {
        match verify_with(key, alg, token, now, leeway) {
            Ok(c) => return Ok((c, dates)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `exp`, `iat` and `nbf` as we read them from the payload: NumericDates (RFC 7519 §2) must be
/// non-negative numbers. jwt-simple reads `"exp": -1` as an unsigned number that saturates far in the
/// future (a token that never expires), so the dates are checked here, on our own reading.
struct Dates {
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
}

impl Dates {
    fn of(token: &str) -> Result<Dates, IdTokenError> {
        let payload = token.split('.').nth(1).unwrap_or("");
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| IdTokenError::Malformed)?;
        let claims: serde_json::Map<String, serde_json::Value> =
            crate::json::from_object(&json).map_err(|_| IdTokenError::Malformed)?;
        let date = |name: &str| -> Result<Option<u64>, IdTokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => numeric_date(v).map(Some).ok_or(IdTokenError::Malformed),
            }
        };
        Ok(Dates {
            exp: date("exp")?,
            iat: date("iat")?,
            nbf: date("nbf")?,
        })
    }
}

/// A NumericDate: a non-negative integer, or a non-negative finite number (fractions dropped), below
/// 2^53 (JSON's exact integers).
fn numeric_date(v: &serde_json::Value) -> Option<u64> {
    const MAX: u64 = 1 << 53;
    if let Some(n) = v.as_u64() {
        return (n < MAX).then_some(n);
    }
    let f = v.as_f64()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..9.0e15).contains(&f).then_some(f as u64)
}

fn options(now: UnixTime, leeway: u64) -> VerificationOptions {
    VerificationOptions {
        // iat/nbf are checked by us with the same leeway; jwt-simple still checks `exp`.
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(leeway)),
        artificial_time: Some(Duration::from_secs(now.0)),
        max_token_length: Some(MAX_TOKEN_LEN),
        ..VerificationOptions::default()
    }
}

fn verify_with(
    key: &Jwk,
    alg: Alg,
    token: &str,
    now: UnixTime,
    leeway: u64,
) -> Result<JWTClaims<IdClaims>, IdTokenError> {
    let opts = Some(options(now, leeway));
    let result = match (&key.material, alg) {
        (KeyMaterial::Rsa(k), _) => return verify_rsa(k, alg, token),
        (KeyMaterial::P256(p), Alg::ES256) => {
            ES256PublicKey::from_bytes(p).and_then(|k| k.verify_token(token, opts))
        }
        (KeyMaterial::P384(p), Alg::ES384) => {
            ES384PublicKey::from_bytes(p).and_then(|k| k.verify_token(token, opts))
        }
        (KeyMaterial::Ed25519(p), Alg::EdDSA) => {
            Ed25519PublicKey::from_bytes(p).and_then(|k| k.verify_token(token, opts))
        }
        _ => return Err(IdTokenError::KeyMismatch),
    };
    result.map_err(|e| match e.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => IdTokenError::Expired,
        Some(JWTError::InvalidSignature) => IdTokenError::BadSignature,
        Some(JWTError::AlgorithmMismatch) => IdTokenError::AlgorithmNotAllowed,
        Some(JWTError::InvalidPublicKey | JWTError::UnsupportedRSAModulus | JWTError::WeakKey) => {
            IdTokenError::KeyMismatch
        }
        _ => IdTokenError::Malformed,
    })
}

/// RS* and PS* through our own verify-only RSA (keys prepared at JWKS load, Wycheproof-tested): the
/// signature over `header.payload`, then the claims read as jwt-simple would. The dates are checked by
/// the callers ([`check_dates`]), as for every algorithm.
fn verify_rsa(
    key: &RsaPublicKey,
    alg: Alg,
    token: &str,
) -> Result<JWTClaims<IdClaims>, IdTokenError> {
    let (input, sig) = token.rsplit_once('.').ok_or(IdTokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| IdTokenError::Malformed)?;
    let msg = input.as_bytes();
    let ok = match alg {
        Alg::RS256 => key.verify_pkcs1v15(Hash::Sha256, msg, &sig),
        Alg::RS384 => key.verify_pkcs1v15(Hash::Sha384, msg, &sig),
        Alg::RS512 => key.verify_pkcs1v15(Hash::Sha512, msg, &sig),
        Alg::PS256 => key.verify_pss(Hash::Sha256, msg, &sig),
        Alg::PS384 => key.verify_pss(Hash::Sha384, msg, &sig),
        Alg::PS512 => key.verify_pss(Hash::Sha512, msg, &sig),
        Alg::ES256 | Alg::ES384 | Alg::EdDSA => return Err(IdTokenError::KeyMismatch),
    };
    if !ok {
        return Err(IdTokenError::BadSignature);
    }
    let payload = input.split('.').nth(1).ok_or(IdTokenError::Malformed)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| IdTokenError::Malformed)?;
    crate::json::from_object(&json).map_err(|_| IdTokenError::Malformed)
}

/// `aud` as a list (a string is one audience).
/// The `events` member a logout token must carry (OIDC Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A verified logout token: which IdP session (`sid`) or user (`sub`) ended, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// `sid`, the IdP session.
    pub sid: Option<String>,
    /// `sub`, the user.
    pub sub: Option<String>,
    /// `iat`.
    pub issued_at: u64,
}

/// Verifies a logout token (OIDC Back-Channel Logout 1.0 §2.6): signature through the issuer's keys,
/// `iss` exactly, our client id in `aud`, `iat` present, not in the future and at most `max_age`
/// seconds old, `exp` (when present) not past, a `jti`, the logout event in `events`, no `nonce`, and
/// a `sid` or a `sub`.
pub fn verify_logout_token(
    token: &str,
    jwks: &Jwks,
    exp: &Expectations<'_>,
    max_age: u64,
) -> Result<LogoutToken, LogoutTokenError> {
    let t = LogoutTokenError::Token;
    let (c, dates) =
        verify_signed(token, jwks, exp.allowed_algs, exp.now, exp.leeway).map_err(t)?;
    if c.issuer.as_deref() != Some(exp.issuer) {
        return Err(t(IdTokenError::WrongIssuer));
    }
    if !audiences_of(&c).contains(&exp.client_id) {
        return Err(t(IdTokenError::WrongAudience));
    }
    let iat = dates.iat.ok_or(t(IdTokenError::IssuedAtMissing))?;
    let now = exp.now.0;
    if iat > now.saturating_add(exp.leeway).saturating_add(1) {
        return Err(t(IdTokenError::IssuedInFuture));
    }
    if now.saturating_sub(iat) > max_age.saturating_add(exp.leeway) {
        return Err(LogoutTokenError::TooOld);
    }
    if dates
        .exp
        .is_some_and(|e| now >= e.saturating_add(exp.leeway))
    {
        return Err(t(IdTokenError::Expired));
    }
    let event_ok = c
        .custom
        .other
        .get("events")
        .and_then(serde_json::Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(serde_json::Value::is_object);
    if !event_ok {
        return Err(LogoutTokenError::NotALogoutToken);
    }
    if c.nonce.is_some() || c.custom.other.contains_key("nonce") {
        return Err(LogoutTokenError::NoncePresent);
    }
    if c.jwt_id.as_deref().is_none_or(str::is_empty) {
        return Err(LogoutTokenError::JtiMissing);
    }
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let sid = text(c.custom.other.get("sid"));
    let sub = c.subject.filter(|s| !s.is_empty());
    if sid.is_none() && sub.is_none() {
        return Err(LogoutTokenError::NoSessionNamed);
    }
    Ok(LogoutToken {
        sid,
        sub,
        issued_at: iat,
    })
}

fn audiences_of(c: &JWTClaims<IdClaims>) -> Vec<&str> {
    match &c.audiences {
        Some(Audiences::AsString(a)) => vec![a.as_str()],
        Some(Audiences::AsSet(set)) => set.iter().map(String::as_str).collect(),
        None => vec![],
    }
}

/// `exp` required and not past, `iat` (required when `require_iat`) and `nbf` not in the future, all
/// with `leeway`. Returns `exp`.
fn check_dates(
    dates: &Dates,
    now: UnixTime,
    leeway: u64,
    require_iat: bool,
) -> Result<u64, IdTokenError> {
    let now = now.0;
    let expires = dates.exp.ok_or(IdTokenError::ExpiryMissing)?;
    if now >= expires.saturating_add(leeway) {
        return Err(IdTokenError::Expired);
    }
    if require_iat && dates.iat.is_none() {
        return Err(IdTokenError::IssuedAtMissing);
    }
    // One second more than the leeway: clocks here are whole seconds and a host may read its clock
    // once per tick, so a token issued this very second can look a second ahead even with leeway 0.
    let future =
        |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(leeway).saturating_add(1));
    if future(dates.iat) || future(dates.nbf) {
        return Err(IdTokenError::IssuedInFuture);
    }
    Ok(expires)
}

fn check_claims(
    c: JWTClaims<IdClaims>,
    dates: &Dates,
    exp: &Expectations<'_>,
) -> Result<VerifiedIdToken, IdTokenError> {
    if c.issuer.as_deref() != Some(exp.issuer) {
        return Err(IdTokenError::WrongIssuer);
    }
    let audiences = audiences_of(&c);
    if !audiences.contains(&exp.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match c.custom.other.get("azp") {
        Some(serde_json::Value::String(azp)) if azp == exp.client_id => {}
        Some(_) => return Err(IdTokenError::WrongAuthorizedParty),
        // OIDC Core §3.1.3.7 (4)/(5): with several audiences the authorized party must be named.
        None if audiences.len() > 1 => return Err(IdTokenError::WrongAuthorizedParty),
        None => {}
    }
    check_dates(dates, exp.now, exp.leeway, true)?;
    if let Some(want) = exp.nonce {
        let nonce_ok = c
            .nonce
            .as_deref()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(want.as_bytes())));
        if !nonce_ok {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    let subject = c
        .subject
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::SubjectMissing)?;
    Ok(VerifiedIdToken {
        subject,
        claims: c.custom,
    })
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn a_token_issued_this_second_passes_with_zero_leeway_one_second_more_does_not() {
        let now = UnixTime(1_000);
        let at = |iat: u64| Dates {
            exp: Some(2_000),
            iat: Some(iat),
            nbf: None,
        };
        assert!(check_dates(&at(1_000), now, 0, true).is_ok());
        // The host's clock may lag by one tick (1 s): a token minted this second by the IdP.
        assert!(check_dates(&at(1_001), now, 0, true).is_ok());
        assert_eq!(
            check_dates(&at(1_002), now, 0, true),
            Err(IdTokenError::IssuedInFuture)
        );
        assert!(check_dates(&at(1_061), now, 60, true).is_ok());
        assert_eq!(
            check_dates(&at(1_062), now, 60, true),
            Err(IdTokenError::IssuedInFuture)
        );
    }
}
