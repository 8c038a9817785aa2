//! Authentication by session cookie: the sealed session opened (or found in this VM's cache), and the
//! session built from a verified ID token at login.

use std::borrow::Cow;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};

use crate::decision::{Header, Reason};
use crate::engine::Engine;
use crate::identity::mapping::identity_of;
use crate::identity::{Identity, Source};
use crate::oidc::token::TokenResponse;
use crate::request::Request;
use crate::session::cache::CachedSession;
use crate::session::chunks;
use crate::session::keyring::Purpose;
use crate::session::revocations::{self, Kind};
use crate::session::Session;
use crate::time::UnixTime;
use crate::vm::VmState;

impl Engine {
    /// The request's session, from the cache or by opening the cookie. Tampered, truncated, expired or
    /// foreign-key cookies are simply no session.
    pub(crate) fn session(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<Arc<CachedSession>> {
        self.session_and_cookie(req, now, vm).map(|(hit, _)| hit)
    }

    /// The session and the (joined) sealed cookie value it came from.
    pub(crate) fn session_and_cookie<'r>(
        &self,
        req: &Request<'r>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<(Arc<CachedSession>, Cow<'r, str>)> {
        let cfg = &*self.config;
        let joined = chunks::join(req.cookies_with_prefix(&cfg.cookie_name), &cfg.cookie_name)?;
        let hit = self.open_session(&joined, now, vm)?;
        Some((hit, joined))
    }

    /// The session a request carries either way: its cookie, or else a session token (the token page's)
    /// in `Authorization: Bearer`. For our own endpoints (`auth`, `userinfo`, `token`).
    pub(crate) fn any_session<'r>(
        &self,
        req: &Request<'r>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<(Arc<CachedSession>, Cow<'r, str>)> {
        if chunks::join(
            req.cookies_with_prefix(&self.config.cookie_name),
            &self.config.cookie_name,
        )
        .is_some()
        {
            return self.session_and_cookie(req, now, vm);
        }
        let token = self.session_token_in(req)?;
        let hit = self.open_session(token, now, vm)?;
        Some((hit, Cow::Borrowed(token)))
    }

    /// A session token in `Authorization: Bearer`, if the header holds one (see [`Engine::is_session_token`]).
    pub(crate) fn session_token_in<'r>(&self, req: &Request<'r>) -> Option<&'r str> {
        let token = crate::auth::bearer::bearer_value(req.header("authorization")?)?;
        self.is_session_token(token).then_some(token)
    }

    /// Whether a bearer credential is shaped like one of our sealed sessions, `<key id>.<base64url>`
    /// with a key id of our ring (JWTs have three parts; an IdP's opaque token never starts with our
    /// key id and a dot). Shape only: whether it opens is for [`Engine::open_sealed`].
    pub(crate) fn is_session_token(&self, token: &str) -> bool {
        token
            .split_once('.')
            .is_some_and(|(kid, rest)| !rest.contains('.') && self.config.keys.has_id(kid))
    }

    /// Whether a header value is `Bearer <something shaped like our session token>` (scheme any case,
    /// surrounding whitespace ignored, no length limit): what upstreams must never see.
    pub(crate) fn carries_session_token(&self, value: &[u8]) -> bool {
        let Some(rest) = value
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| value.get(7..))
        else {
            return false;
        };
        core::str::from_utf8(rest).is_ok_and(|t| self.is_session_token(t.trim_matches([' ', '\t'])))
    }

    fn open_session(
        &self,
        value: &str,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<Arc<CachedSession>> {
        let cfg = &*self.config;
        if let Some(hit) = vm.sessions.get(value) {
            if hit.is_valid_at(now, cfg.leeway)
                && !vm.revocations.revoked(&hit.revocation_keys, hit.issued_at)
            {
                return Some(hit);
            }
            vm.sessions.remove(value);
            return None;
        }
        // Our own binding first; other client ids only when configured (`cookie.accept_client_ids`).
        let json = cfg.accepted_bindings.iter().find_map(|bind| {
            cfg.keys
                .open(Purpose::Session, &cfg.cookie_name, bind, value)
        })?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        if !session.is_valid_at(now, cfg.leeway) {
            return None;
        }
        let entry = self.cache_entry(session);
        if vm
            .revocations
            .revoked(&entry.revocation_keys, entry.issued_at)
        {
            return None;
        }
        vm.sessions.insert(value, entry.clone());
        Some(entry)
    }

    /// What the cache keeps of an opened (or refreshed) session.
    pub(crate) fn cache_entry(&self, session: Session) -> Arc<CachedSession> {
        let mut revocation_keys = std::vec![revocations::key(Kind::Sub, &session.sub)];
        if let Some(sid) = &session.sid {
            revocation_keys.push(revocations::key(Kind::Sid, sid));
        }
        let identity = Identity::of_session(&session);
        Arc::new(CachedSession {
            upstream: Arc::from(self.identity_headers(&identity, session.access_token.as_ref())),
            identity,
            issued_at: session.issued_at,
            expires_at: session.expires_at,
            revocation_keys,
            refreshable: session.refresh_token.is_some().then(|| Arc::new(session)),
        })
    }

    /// The session for `subject` from its claims (the ID token's, with userinfo's added when fetched).
    pub(crate) fn session_from(
        &self,
        subject: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        tokens: &TokenResponse,
        now: UnixTime,
    ) -> Result<Session, Reason> {
        let cfg = &*self.config;
        let forwards_token = cfg.pass_access_token || cfg.pass_authorization_header;
        let verified = crate::identity::mapping::email_verified(claims);
        let id = identity_of(cfg, claims, subject, subject, Source::Session)?;
        // RFC 6749 §5.1: without `scope` in the response, the granted scopes are the requested ones.
        let scopes: Vec<String> = match &tokens.scope {
            Some(serde_json::Value::String(s)) => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            _ => cfg.scope.split(' ').map(String::from).collect(),
        };
        Ok(Session {
            user: id.user,
            sub: id.sub,
            email: id.email,
            email_verified: Some(verified),
            name: id.name,
            preferred_username: id.preferred_username,
            groups: id.groups,
            issued_at: now.0,
            expires_at: now.plus(cfg.session_ttl).0,
            access_token: if forwards_token {
                tokens.access_token.clone()
            } else {
                None
            },
            // Renewing is only needed for a token that is forwarded and expires.
            refresh_token: if forwards_token
                && tokens.access_token.is_some()
                && tokens.lifetime().is_some()
            {
                tokens.refresh_token.clone()
            } else {
                None
            },
            access_expires_at: tokens.lifetime().map(|l| now.plus(l).0),
            access_lifetime: tokens.lifetime(),
            scopes,
            sid: claims
                .get("sid")
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .map(String::from),
            claims: id.claims,
        })
    }

    /// Seals the session and returns the `Set-Cookie` headers that carry it: one cookie, or up to
    /// `MAX_CHUNKS` numbered ones, and the clearing of every chunk cookie it no longer uses.
    pub(crate) fn seal_session(
        &self,
        session: &Session,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<Header>, Reason> {
        Ok(self.seal_session_value(session, now, rng)?.1)
    }

    /// The sealed value (joined) and its `Set-Cookie` headers.
    pub(crate) fn seal_session_value(
        &self,
        session: &Session,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(String, Vec<Header>), Reason> {
        let cfg = &*self.config;
        let json = serde_json::to_vec(session).map_err(|_| Reason::SessionTooLarge)?;
        let sealed = cfg
            .keys
            .seal(Purpose::Session, &cfg.cookie_name, &cfg.binding, &json, rng)
            .map_err(|_| Reason::RandomnessUnavailable)?;
        let headers = self
            .session_cookies(&sealed, session.expires_at, now)
            .ok_or(Reason::SessionTooLarge)?;
        Ok((sealed, headers))
    }

    /// The `Set-Cookie` headers carrying a sealed session value until `expires_at` (the session's
    /// absolute end, however often it is re-sealed), and the clearing of unused chunk cookies.
    pub(crate) fn session_cookies(
        &self,
        sealed: &str,
        expires_at: u64,
        now: UnixTime,
    ) -> Option<Vec<Header>> {
        let cfg = &*self.config;
        let parts = chunks::split(sealed, &cfg.cookie_name)?;
        let max_age = expires_at.saturating_sub(now.0);
        let mut headers: Vec<Header> = parts
            .iter()
            .map(|(name, value)| {
                (
                    "set-cookie".into(),
                    cfg.cookie_attributes.set(name, value, max_age),
                )
            })
            .collect();
        headers.extend(
            chunks::chunk_names_from(&cfg.cookie_name, parts.len())
                .map(|name| ("set-cookie".into(), cfg.cookie_attributes.clear(&name))),
        );
        Some(headers)
    }

    /// Opens a sealed session value (e.g. one another worker minted) into a cache entry.
    pub(crate) fn open_sealed(
        &self,
        value: &str,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<Arc<CachedSession>> {
        self.open_session(value, now, vm)
    }
}
