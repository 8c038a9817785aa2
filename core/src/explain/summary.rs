//! From a decision to its explanation: the route that took the request, the outcome, the failed
//! requirement, and the headers as they would go upstream.

use std::borrow::ToOwned;
use std::format;
use std::string::String;
use std::vec::Vec;

use serde_json::{json, Map, Value};

use super::{CalloutSummary, DecisionSummary, RequirementSummary, RouteSummary, MAX_BODY_CHARS};
use crate::decision::{Decision, Header, HeaderEdits, Reason};
use crate::endpoints::Endpoint;
use crate::engine::Engine;
use crate::identity::Identity;
use crate::policy::requirements::{ClaimTest, Requirement};
use crate::policy::rules::{Accept, Action, Route};
use crate::request::{RawHeader, Request};

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Public => "public",
        Action::Authenticate => "authenticate",
        Action::Deny => "deny",
    }
}

fn accept_name(a: Accept) -> &'static str {
    match a {
        Accept::Session => "session",
        Accept::Bearer => "bearer",
        Accept::Either => "either",
    }
}

fn claim_condition(claim: &str, test: &ClaimTest) -> String {
    match test {
        ClaimTest::Equals(v) => format!("{claim} equals {v}"),
        ClaimTest::OneOf(vs) => format!("{claim} one of {}", Value::Array(vs.clone())),
        ClaimTest::Contains(v) => format!("{claim} contains {v}"),
    }
}

fn requirements_json(route: &Route) -> Map<String, Value> {
    let r = &route.requirements;
    let mut m = Map::new();
    let mut put = |k: &str, v: &[String]| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    put("email_domains", &r.email_domains);
    put("emails", &r.emails);
    put("groups", &r.groups);
    put("scopes", &r.scopes);
    if !r.scopes_by_method.is_empty() {
        let by: Map<String, Value> = r
            .scopes_by_method
            .iter()
            .map(|(meth, s)| (meth.clone(), json!(s)))
            .collect();
        m.insert("scopes_by_method".into(), Value::Object(by));
    }
    if !r.claims.is_empty() {
        let c: Vec<String> = r
            .claims
            .iter()
            .map(|c| claim_condition(&c.claim, &c.test))
            .collect();
        m.insert("claims".into(), json!(c));
    }
    m
}

pub(super) fn route_summary(engine: &Engine, req: &Request<'_>) -> RouteSummary {
    let cfg = engine.config();
    let mut s = RouteSummary {
        rule: None,
        endpoint: None,
        action: None,
        accept: None,
        requirements: Map::new(),
        unroutable: None,
    };
    let path = req.path_only();
    if Endpoint::parse(path, &cfg.prefix).is_some() {
        // Our own endpoints are dispatched before any rule (engine step 1).
        s.endpoint = path
            .strip_prefix(cfg.prefix.as_str())
            .map(|p| p.trim_start_matches('/').to_owned());
        return s;
    }
    match cfg.policy.route(req) {
        Ok(route) => {
            s.rule = Some(route.name.clone());
            s.action = Some(action_name(route.action));
            if route.action == Action::Authenticate {
                s.accept = Some(accept_name(route.accept));
            }
            s.requirements = requirements_json(route);
        }
        Err(_) => s.unroutable = Some("the path cannot be normalised, so no rule can match it"),
    }
    s
}

/// What a routine (non-failure) reason means.
fn routine_message(reason: Reason) -> Option<&'static str> {
    Some(match reason {
        Reason::Authenticated => "signed in, and the route's requirements hold",
        Reason::BearerAuthenticated => "a valid bearer token, and the route's requirements hold",
        Reason::PublicPath => {
            "a public route: forwarded without authentication (client-sent identity headers removed)"
        }
        Reason::LoginStarted => {
            "no session, and a top-level navigation: the browser is sent to the identity provider"
        }
        Reason::LoginRequired => {
            "no session, and not a top-level navigation (XHR, JSON, a non-GET method, Sec-Fetch-Mode \
             other than navigate): 401 with the login URL in the body, no redirect"
        }
        Reason::BearerMissing => "a bearer-only route and no token: 401 with a Bearer challenge",
        _ => return None,
    })
}

fn outcome_of(status: u16, reason: Reason) -> &'static str {
    match status {
        _ if reason == Reason::LoginStarted => "login_redirect",
        300..=399 => "redirect",
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        200..=299 => "respond",
        _ => "error",
    }
}

/// `name=<sealed value, N bytes>; attributes` for a `Set-Cookie` carrying a value.
fn elide_cookie(value: &str) -> String {
    let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
    match pair.split_once('=') {
        Some((name, v)) if !v.is_empty() => {
            let sep = if attrs.is_empty() { "" } else { ";" };
            format!("{name}=<sealed, {} bytes>{sep}{attrs}", v.len())
        }
        _ => value.to_owned(),
    }
}

/// `name: value` lines, sealed cookie values elided.
fn response_headers(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("set-cookie") {
                format!("{n}: {}", elide_cookie(v))
            } else {
                format!("{n}: {v}")
            }
        })
        .collect()
}

fn edits_headers(edits: &HeaderEdits) -> Vec<String> {
    let mut out: Vec<(String, String)> = edits
        .sets()
        .map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    out.extend(edits.add.iter().cloned());
    response_headers(&out)
}

fn body_text(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    Some(match text.char_indices().nth(MAX_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    })
}

/// Which requirement failed and what it asks for, from the route and the test identity.
fn requirement_summary(
    requirement: Requirement,
    route: Option<&Route>,
    identity: Option<&Identity>,
    method: &str,
) -> RequirementSummary {
    let detail = match (route, identity) {
        (Some(r), Some(id)) => r
            .requirements
            .check(id, method)
            .err()
            .and_then(|u| u.detail),
        _ => None,
    };
    let (required, has): (Vec<String>, Option<Vec<String>>) = match route.map(|r| &r.requirements) {
        None => (Vec::new(), None),
        Some(req) => match requirement {
            Requirement::Group => (req.groups.clone(), identity.map(|i| i.groups.clone())),
            Requirement::Email => (
                req.emails.clone(),
                identity.map(|i| i.email.iter().cloned().collect()),
            ),
            Requirement::EmailDomain => (
                req.email_domains.clone(),
                identity.map(|i| i.email.iter().cloned().collect()),
            ),
            Requirement::Scope => {
                let mut s = req.scopes.clone();
                if let Some((_, by)) = req
                    .scopes_by_method
                    .iter()
                    .find(|(m, _)| m == method)
                    .or_else(|| req.scopes_by_method.iter().find(|(m, _)| m == "*"))
                {
                    s.extend(by.iter().cloned());
                }
                (s, identity.map(|i| i.scopes.clone()))
            }
            Requirement::Claim => (
                req.claims
                    .iter()
                    .map(|c| claim_condition(&c.claim, &c.test))
                    .collect(),
                identity.map(|i| i.claims.iter().map(|(k, v)| format!("{k} = {v}")).collect()),
            ),
        },
    };
    RequirementSummary {
        code: requirement.code(),
        field: format!("require.{}", requirement.field()),
        required,
        has,
        detail,
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        String::from("none")
    } else {
        v.join(", ")
    }
}

pub(super) fn summarize(
    decision: &Decision,
    raw: &[RawHeader<'_>],
    req: &Request<'_>,
    route: Option<&Route>,
    identity: Option<&Identity>,
) -> DecisionSummary {
    let rule = route.map_or("-", |r| r.name.as_str());
    match decision {
        Decision::Forward {
            request,
            response,
            reason,
            ..
        } => {
            let upstream: Vec<(String, String)> = request
                .apply_raw(raw)
                .into_iter()
                .filter(|(n, _)| !n.starts_with(b":"))
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(&n).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect();
            let mut stripped: Vec<String> = Vec::new();
            for (n, v) in raw.iter().filter(|(n, _)| !n.starts_with(b":")) {
                let name = String::from_utf8_lossy(n).into_owned();
                let value = String::from_utf8_lossy(v);
                let kept = upstream
                    .iter()
                    .any(|(u, uv)| u.eq_ignore_ascii_case(&name) && *uv == value);
                if !kept && !stripped.contains(&name) {
                    stripped.push(name);
                }
            }
            let who = upstream
                .iter()
                .find(|(n, _)| n == "x-forwarded-user")
                .map(|(_, v)| format!(" as {v}"))
                .unwrap_or_default();
            DecisionSummary {
                outcome: "forward",
                reason: Some(reason.code()),
                message: routine_message(*reason).map(String::from),
                summary: format!("forwarded upstream{who} (rule {rule}, {})", reason.code()),
                upstream_headers: Some(upstream.iter().map(|(n, v)| format!("{n}: {v}")).collect()),
                stripped_headers: stripped,
                response_headers: edits_headers(response),
                ..DecisionSummary::default()
            }
        }
        Decision::Respond {
            status,
            headers,
            body,
            reason,
            ..
        } => {
            let message = reason
                .failure_message()
                .or_else(|| routine_message(*reason))
                .map(String::from);
            let requirement = match reason {
                Reason::Forbidden(r) => Some(requirement_summary(*r, route, identity, req.method)),
                _ => None,
            };
            let summary = match (&requirement, reason) {
                (Some(r), _) if r.code == Requirement::Group.code() => format!(
                    "{status}: rule {rule} requires one of the groups [{}]; the session has [{}]",
                    list(&r.required),
                    list(r.has.as_deref().unwrap_or_default())
                ),
                (Some(r), _) => format!(
                    "{status}: rule {rule}: {} not met (requires {})",
                    r.field,
                    list(&r.required)
                ),
                (None, Reason::LoginStarted) => {
                    let to = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("location"))
                        .map_or("", |(_, v)| v.as_str());
                    let to = to.split('?').next().unwrap_or(to);
                    format!("{status}: sign in first, redirected to {to}")
                }
                (None, r) => format!(
                    "{status} {}: {}",
                    r.code(),
                    message.as_deref().unwrap_or("answered locally")
                ),
            };
            DecisionSummary {
                outcome: outcome_of(*status, *reason),
                status: Some(*status),
                reason: Some(reason.code()),
                message,
                summary,
                requirement,
                response_headers: response_headers(headers),
                body: body_text(body),
                ..DecisionSummary::default()
            }
        }
        Decision::Callout { callout, .. } => {
            let scheme = if callout.authority.is_empty() {
                ""
            } else {
                "https://"
            };
            DecisionSummary {
                outcome: "callout",
                summary: format!(
                    "paused: the decision needs the identity provider ({} {}{}{} through cluster {})",
                    callout.method, scheme, callout.authority, callout.path, callout.cluster
                ),
                callout: Some(CalloutSummary {
                    cluster: callout.cluster.clone(),
                    method: callout.method,
                    url: format!("{scheme}{}{}", callout.authority, callout.path),
                }),
                ..DecisionSummary::default()
            }
        }
        Decision::ReadBody { limit, .. } => DecisionSummary {
            outcome: "read_body",
            summary: format!("paused: the decision needs the request body (at most {limit} bytes)"),
            ..DecisionSummary::default()
        },
        Decision::Claim { .. } => DecisionSummary {
            outcome: "claim",
            summary: String::from(
                "paused: a token renewal is claimed in the proxy's shared data first",
            ),
            ..DecisionSummary::default()
        },
        Decision::Wait { .. } => DecisionSummary {
            outcome: "wait",
            summary: String::from("paused: another request is renewing this session's token"),
            ..DecisionSummary::default()
        },
    }
}
