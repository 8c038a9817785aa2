//! Explain one decision: a plugin configuration and a request in, what Portcullis would do with it and
//! why out. The configuration playground (the core compiled to `wasm32-unknown-unknown`) and
//! `portcullis-shim explain` both print what [`explain`] returns, so the two can never disagree with
//! each other or with the filter: the request goes through [`Engine::handle_request`] like any other.
//!
//! ```text
//! config JSON ──Engine::from_json──> a ConfigError naming its field, or an engine
//! method, URL, "name: value" lines ──> the pseudo-headers and headers of a Request
//! optional test identity ──session_from + seal_session_value──> a session cookie sealed with the
//!                                    configuration's own key ring (its value is never shown)
//! handle_request(req, now, rng, vm) ──> rule, outcome, status, reason, failed requirement, and the
//!                                    headers as they would go upstream (HeaderEdits::apply_raw)
//! ```
//!
//! The identity provider is never contacted. So that a login redirect can be shown, a stand-in for its
//! discovery document (endpoints under the issuer URL) and a key set that verifies nothing are loaded
//! through the ordinary root-timer path; the explanation says so in its `notes`. A decision that needs
//! the real IdP (a bearer token to verify against its keys, an opaque token to introspect) comes back as
//! a `callout` outcome naming what would be fetched.
//!
//! Time and randomness are the caller's, as everywhere in the core: hosts pass a fixed seed so that the
//! same input always gives the same output.

mod input;
mod summary;
#[cfg(test)]
mod tests;

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::engine::Engine;
use crate::identity::Identity;
use crate::request::{RawHeader, Request};
use crate::time::UnixTime;

use input::{add_cookies, build_headers, load_stand_in_provider, mint_session};
use summary::{route_summary, summarize};

/// The time a request is decided at when the input names none (2023-11-14T22:13:20Z): fixed, so that
/// the same input always explains the same way.
pub const DEFAULT_NOW: UnixTime = UnixTime(1_700_000_000);

/// The seed hosts give their ChaCha RNG for an explanation, so that the playground and the CLI print
/// the same bytes for the same input (the values it draws — login state, nonces — never leave sealed
/// cookies except in the login redirect's URL).
pub const SEED: u64 = 0;

/// Longest response body an explanation repeats (the rest is cut, marked with `…`).
const MAX_BODY_CHARS: usize = 4096;

/// One request to explain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainInput {
    /// `:method` (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// `http(s)://host[:port]/path?query`, or a bare `/path` (the host then comes from a `Host`
    /// header, else `localhost`).
    pub url: String,
    /// Request headers, `name: value`, one per entry or one per line (blank lines are skipped).
    #[serde(default)]
    pub headers: Lines,
    /// A test identity to sign in as: a session cookie is minted for it.
    #[serde(default)]
    pub session: Option<TestIdentity>,
    /// When the request is decided (Unix seconds); default [`DEFAULT_NOW`].
    #[serde(default)]
    pub now: Option<u64>,
    /// Whether the IdP's metadata and keys count as loaded (default `true`: the stand-in); `false`
    /// shows what a VM answers before its first load.
    #[serde(default)]
    pub provider_loaded: Option<bool>,
}

/// Text given either as a list or as one string: each entry is split on newlines.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Lines {
    /// `["accept: text/html", "x-requested-with: XMLHttpRequest"]`.
    Many(Vec<String>),
    /// `"accept: text/html\nx-requested-with: XMLHttpRequest"`.
    One(String),
}

impl Default for Lines {
    fn default() -> Self {
        Lines::Many(Vec::new())
    }
}

impl Lines {
    /// The non-blank lines.
    fn lines(&self, separator: char) -> Vec<&str> {
        let all: Vec<&str> = match self {
            Lines::Many(v) => v.iter().flat_map(|s| s.split(separator)).collect(),
            Lines::One(s) => s.split(separator).collect(),
        };
        all.into_iter()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Who the test session is for: what the IdP's ID token would say. It goes through the same claim
/// mapping as a real login (`claims.*` of the configuration), so what reaches the upstream is what a
/// real sign-in with these claims would send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestIdentity {
    /// The user: the token's `sub` (and the configured user claim when that is another claim).
    pub user: String,
    /// The email, verified unless `email_verified` says otherwise.
    #[serde(default)]
    pub email: Option<String>,
    /// `email_verified` (default `true`).
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Groups, as a list or comma-separated, put at the configured groups claim.
    #[serde(default)]
    pub groups: Option<Lines>,
    /// Any further claims (for claim rules and mapped headers); they win over the fields above.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
}

/// What Portcullis would do, and why. Serialized as the JSON both hosts print.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// `true` when the configuration and the request were usable and a decision was made.
    pub ok: bool,
    /// Why the configuration was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<ConfigProblem>,
    /// Why the request (or test identity) could not be built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_error: Option<String>,
    /// The request as decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestSummary>,
    /// Which rule (or endpoint of ours) took the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSummary>,
    /// The decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionSummary>,
    /// What was simulated, and anything else worth knowing to read the result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A refused configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// The whole message, exactly as the filter logs it (it names the field).
    pub message: String,
    /// The dotted path of the field, when the value (not the JSON shape) is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The request that was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestSummary {
    /// `:method`.
    pub method: String,
    /// `http` or `https` as the core reads it (`x-forwarded-proto` wins over the URL's scheme).
    pub scheme: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` with the query.
    pub path: String,
    /// Whether the core reads it as a top-level browser navigation (a login redirect rather than 401).
    pub navigation: bool,
    /// The minted test session, described (its sealed value is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSummary>,
}

/// The test session as sealed into the request's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    /// The user, after claim mapping.
    pub user: String,
    /// The email, after claim mapping (absent when unverified and not allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The groups, after claim mapping (names with commas or control characters dropped).
    pub groups: Vec<String>,
    /// The cookies it takes (`_portcullis`, or `_portcullis`, `_portcullis_1` … for a large one).
    pub cookies: Vec<String>,
    /// The key id of the ring's first key, which sealed it.
    pub sealed_with_key: String,
    /// Valid until (Unix seconds).
    pub expires_at: u64,
}

/// The route that took the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSummary {
    /// The rule's `name` (`default` for `routes.default`); absent for our own endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// One of our endpoints under the prefix (`callback`, `start`, `ping` ...): no rule is consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `public`, `authenticate` or `deny`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// `session`, `bearer` or `either` (for `authenticate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<&'static str>,
    /// The rule's requirements (only those set).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub requirements: Map<String, Value>,
    /// Why no rule could be matched (a path that cannot be normalised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unroutable: Option<&'static str>,
}

/// The decision, spelled out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecisionSummary {
    /// `forward`, `login_redirect`, `redirect`, `unauthorized`, `forbidden`, `bad_request`, `respond`,
    /// `error`, `callout`, `read_body`, `claim` or `wait`.
    pub outcome: &'static str,
    /// The local answer's status (absent when forwarded or paused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The reason code, as in logs and metrics (`forbidden_group`, `login_started` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The fixed user-facing sentence for a failure, or what a routine outcome means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// One line for a human.
    pub summary: String,
    /// For a 403 on a requirement: which one, what the rule asks, what the identity has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<RequirementSummary>,
    /// Forwarded: the request headers as they go upstream, `name: value` (pseudo-headers left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_headers: Option<Vec<String>>,
    /// Forwarded: names of client-sent headers that do not reach the upstream as sent: removed, or
    /// replaced by ours (spoofed identity headers), or rebuilt (`cookie`, without our cookies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stripped_headers: Vec<String>,
    /// Local answer (or response edits when forwarded): its headers, `name: value`; sealed cookie
    /// values are elided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// Local answer: its body (cut after a few KB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Paused on the IdP: what would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callout: Option<CalloutSummary>,
}

impl DecisionSummary {
    /// Replaces every occurrence of the given sealed values with `<sealed, N bytes>`.
    fn scrub(&mut self, sealed: &[String]) {
        let scrub = |s: &mut String| {
            for v in sealed.iter().filter(|v| !v.is_empty()) {
                if s.contains(v.as_str()) {
                    *s = s.replace(v.as_str(), &format!("<sealed, {} bytes>", v.len()));
                }
            }
        };
        for list in [&mut self.stripped_headers, &mut self.response_headers] {
            list.iter_mut().for_each(scrub);
        }
        self.upstream_headers.iter_mut().flatten().for_each(scrub);
        self.body.iter_mut().for_each(scrub);
        scrub(&mut self.summary);
    }
}

/// A requirement that was not met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequirementSummary {
    /// `forbidden_group`, `forbidden_email_domain` ...
    pub code: &'static str,
    /// The configuration field: `require.groups` ...
    pub field: String,
    /// What the rule asks for (any one of the groups, emails or domains; all of the scopes; each claim
    /// condition).
    pub required: Vec<String>,
    /// What the test identity has for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has: Option<Vec<String>>,
    /// The scope or claim path that failed, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A callout the decision waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalloutSummary {
    /// The cluster it goes through.
    pub cluster: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// `https://authority/path`.
    pub url: String,
}

impl Explanation {
    /// The JSON both hosts print (pretty, two-space indented).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{\"ok\":false}"))
    }

    fn input_error(msg: impl Into<String>) -> Self {
        Explanation {
            input_error: Some(msg.into()),
            ..Explanation::default()
        }
    }
}

/// [`explain`] over JSON: the plugin configuration and an [`ExplainInput`] document in, the
/// explanation's JSON out. What the playground calls.
#[must_use]
pub fn explain_json(
    config_json: &[u8],
    input_json: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> String {
    let explanation = match crate::json::from_object::<ExplainInput>(input_json) {
        Ok(input) => explain(config_json, &input, rng),
        Err(e) => {
            // The configuration is still checked: its errors are the first thing a reader wants.
            let mut ex = Explanation::input_error(format!("request: {e}"));
            ex.config_error = Engine::from_json(config_json).err().map(problem);
            ex
        }
    };
    explanation.to_json()
}

/// Explains what the filter configured by `config_json` would do with `input`.
pub fn explain(
    config_json: &[u8],
    input: &ExplainInput,
    rng: &mut (impl RngCore + CryptoRng),
) -> Explanation {
    let engine = match Engine::from_json(config_json) {
        Ok(e) => e,
        Err(e) => {
            return Explanation {
                config_error: Some(problem(e)),
                ..Explanation::default()
            }
        }
    };
    let now = input.now.map_or(DEFAULT_NOW, UnixTime);
    let mut notes = Vec::new();
    let mut vm = engine.new_vm();
    if input.provider_loaded.unwrap_or(true) {
        load_stand_in_provider(&engine, now, &mut vm);
        notes.push(format!(
            "The identity provider was not contacted: a stand-in for its discovery document \
             (endpoints under {}) and a key set that verifies nothing were loaded, so a login \
             redirect's IdP URL is a placeholder and real tokens cannot be verified here.",
            engine.config().issuer.trim_end_matches('/')
        ));
    } else {
        notes.push(String::from(
            "The identity provider's metadata and keys are not loaded (provider_loaded: false), as \
             in a VM before its first refresh.",
        ));
    }

    let mut headers = match build_headers(input) {
        Ok(h) => h,
        Err(e) => return Explanation::input_error(e),
    };
    let mut session_summary = None;
    let mut identity = None;
    let mut sealed_values: Vec<String> = Vec::new();
    if let Some(test) = &input.session {
        match mint_session(&engine, test, now, rng) {
            Ok(minted) => {
                add_cookies(&mut headers, &minted.cookies);
                sealed_values.extend(minted.cookies.iter().map(|(_, v)| v.clone()));
                identity = Some(Identity::of_session(&minted.session));
                session_summary = Some(minted.summary);
            }
            Err(e) => return Explanation::input_error(e),
        }
    }

    let raw: Vec<RawHeader<'_>> = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    let req = Request::from_headers(&raw);
    let route = route_summary(&engine, &req);
    let request = RequestSummary {
        method: req.method.to_owned(),
        scheme: req.scheme.to_owned(),
        authority: req.authority.to_owned(),
        path: req.path.to_owned(),
        navigation: crate::policy::navigation::is_navigation(&req),
        session: session_summary,
    };
    let decision = engine.handle_request(&req, now, rng, &mut vm);
    let matched = engine.config().policy.route(&req).ok();
    let mut summary = summarize(&decision, &raw, &req, matched, identity.as_ref());
    // The test session is a real session under the configuration's keys: its value is never shown,
    // also where a route forwards the cookie or the token page shows it.
    summary.scrub(&sealed_values);
    Explanation {
        ok: true,
        config_error: None,
        input_error: None,
        request: Some(request),
        route: Some(route),
        decision: Some(summary),
        notes,
    }
}

fn problem(e: ConfigError) -> ConfigProblem {
    let message = e.to_string();
    match e {
        ConfigError::Invalid { field, problem } => ConfigProblem {
            message,
            field: Some(field),
            problem: Some(problem),
        },
        ConfigError::Json(_) => ConfigProblem {
            message,
            field: None,
            problem: None,
        },
    }
}
