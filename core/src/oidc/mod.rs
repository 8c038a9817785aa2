//! OpenID Connect relying-party pieces: PKCE, the authorization request, discovery, the token request,
//! and (with the `oidc` feature, which needs std for jwt-simple) JWKS, ID-token verification and the
//! provider refresh timer.

pub mod authorize;
pub mod discovery;
pub mod pkce;
pub mod token;

#[cfg(feature = "oidc")]
pub mod jwks;
#[cfg(feature = "oidc")]
pub mod refresh;
pub mod rsa;
#[cfg(feature = "oidc")]
pub mod userinfo;
#[cfg(feature = "oidc")]
pub mod verify;

/// Why an ID token was refused (OIDC Core §3.1.3.7). Each maps to a stable code for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenError {
    /// Not a compact JWS, bad base64/JSON, too long, or a `crit` header we do not understand.
    Malformed,
    /// `alg` is not on the allowlist (`none` and HMAC never are).
    AlgorithmNotAllowed,
    /// `kid` is not in the issuer's JWKS (even after a refetch).
    UnknownKey,
    /// The key with that `kid` cannot verify this `alg` (e.g. an RSA key named by an ES256 token).
    KeyMismatch,
    /// No `kid`, and more than one key in the set fits the token's algorithm (OIDC Core §10.1).
    AmbiguousKey,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not exactly the configured issuer.
    WrongIssuer,
    /// `aud` is missing or does not contain our client id.
    WrongAudience,
    /// `azp` is present and not our client id, or missing with several audiences.
    WrongAuthorizedParty,
    /// `exp` is missing.
    ExpiryMissing,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `iat` is missing.
    IssuedAtMissing,
    /// `iat` (or `nbf`) is in the future beyond the leeway.
    IssuedInFuture,
    /// `nonce` is missing or differs from the one we sent.
    NonceMismatch,
    /// `sub` is missing or empty.
    SubjectMissing,
}

impl IdTokenError {
    /// Stable code, prefixed `id_token_`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            IdTokenError::Malformed => "id_token_malformed",
            IdTokenError::AlgorithmNotAllowed => "id_token_alg_not_allowed",
            IdTokenError::UnknownKey => "id_token_unknown_kid",
            IdTokenError::KeyMismatch => "id_token_key_mismatch",
            IdTokenError::AmbiguousKey => "id_token_ambiguous_key",
            IdTokenError::BadSignature => "id_token_bad_signature",
            IdTokenError::WrongIssuer => "id_token_wrong_issuer",
            IdTokenError::WrongAudience => "id_token_wrong_audience",
            IdTokenError::WrongAuthorizedParty => "id_token_wrong_azp",
            IdTokenError::ExpiryMissing => "id_token_exp_missing",
            IdTokenError::Expired => "id_token_expired",
            IdTokenError::IssuedAtMissing => "id_token_iat_missing",
            IdTokenError::IssuedInFuture => "id_token_issued_in_future",
            IdTokenError::NonceMismatch => "id_token_nonce_mismatch",
            IdTokenError::SubjectMissing => "id_token_sub_missing",
        }
    }
}

impl IdTokenError {
    /// The same cause for a bearer token, prefixed `bearer_`.
    #[must_use]
    pub fn bearer_code(self) -> &'static str {
        match self {
            IdTokenError::Malformed => "bearer_malformed",
            IdTokenError::AlgorithmNotAllowed => "bearer_alg_not_allowed",
            IdTokenError::UnknownKey => "bearer_unknown_kid",
            IdTokenError::KeyMismatch => "bearer_key_mismatch",
            IdTokenError::AmbiguousKey => "bearer_ambiguous_key",
            IdTokenError::BadSignature => "bearer_bad_signature",
            IdTokenError::WrongIssuer => "bearer_wrong_issuer",
            IdTokenError::WrongAudience => "bearer_wrong_audience",
            IdTokenError::WrongAuthorizedParty => "bearer_wrong_azp",
            IdTokenError::ExpiryMissing => "bearer_exp_missing",
            IdTokenError::Expired => "bearer_expired",
            IdTokenError::IssuedAtMissing => "bearer_iat_missing",
            IdTokenError::IssuedInFuture => "bearer_issued_in_future",
            IdTokenError::NonceMismatch => "bearer_nonce_mismatch",
            IdTokenError::SubjectMissing => "bearer_sub_missing",
        }
    }
}

/// Signature algorithms we can verify. HMAC and `none` are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// All supported algorithms (the default allowlist).
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name (exact, case-sensitive as RFC 7515 requires).
    #[must_use]
    pub fn from_name(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Why a logout token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// Signature, algorithm, key, `iss`, `aud` or dates (as for an ID token).
    Token(IdTokenError),
    /// No `events` member naming the back-channel logout event with an object.
    NotALogoutToken,
    /// A `nonce` is present (§2.4: prohibited, so an ID token cannot pass as a logout token).
    NoncePresent,
    /// No `jti`.
    JtiMissing,
    /// Neither `sid` nor `sub`.
    NoSessionNamed,
    /// `iat` older than we accept.
    TooOld,
}

impl LogoutTokenError {
    /// Stable code, prefixed `logout_token_`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            LogoutTokenError::Token(IdTokenError::WrongIssuer) => "logout_token_wrong_issuer",
            LogoutTokenError::Token(IdTokenError::WrongAudience) => "logout_token_wrong_audience",
            LogoutTokenError::Token(IdTokenError::UnknownKey) => "logout_token_unknown_key",
            LogoutTokenError::Token(IdTokenError::BadSignature) => "logout_token_bad_signature",
            LogoutTokenError::Token(IdTokenError::IssuedAtMissing) => "logout_token_iat_missing",
            LogoutTokenError::Token(IdTokenError::IssuedInFuture) => "logout_token_iat_future",
            LogoutTokenError::Token(IdTokenError::Expired) => "logout_token_expired",
            LogoutTokenError::Token(IdTokenError::AlgorithmNotAllowed) => {
                "logout_token_alg_not_allowed"
            }
            LogoutTokenError::Token(_) => "logout_token_invalid",
            LogoutTokenError::NotALogoutToken => "logout_token_events_missing",
            LogoutTokenError::NoncePresent => "logout_token_nonce_present",
            LogoutTokenError::JtiMissing => "logout_token_jti_missing",
            LogoutTokenError::NoSessionNamed => "logout_token_sid_sub_missing",
            LogoutTokenError::TooOld => "logout_token_too_old",
        }
    }
}
