//! Claim mapping: claim paths (`email`, `user.mail`, `realm_access.roles`) to the identity's fields, the
//! same for ID tokens, userinfo replies and bearer tokens.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::decision::Reason;
use crate::identity::{Identity, Source};

/// The value at a claim path. A claim whose full name is the path wins (`https://example.com/groups`
/// is one claim, as Auth0 names them); otherwise the path is split on `.` and followed through objects.
#[must_use]
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A claim as one string: strings as they are, numbers in decimal; anything else is no value.
#[must_use]
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The groups claim as group names: an array of strings, or one string. A name holding a comma or a
/// control character is dropped: upstreams split `X-Forwarded-Groups` on commas, so `"staff,admins"`
/// must never become two groups.
#[must_use]
pub fn groups_of(claim: Option<&Value>) -> Vec<String> {
    let ok = |g: &&str| !g.is_empty() && !g.chars().any(|c| c == ',' || c.is_control());
    match claim {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(ok)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) if ok(&s.as_str()) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Scopes of a token: `scope` (RFC 8693 §4.2, RFC 9068: one space-separated string) or `scp` (an array,
/// as Okta and Entra ID send; a string there is split too).
#[must_use]
pub fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let split = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => split(s),
        (_, Some(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty() && !s.contains(' '))
            .map(String::from)
            .collect(),
        (_, Some(Value::String(s))) => split(s),
        _ => Vec::new(),
    }
}

/// OIDC Core §5.1: `email_verified` is a boolean. Only `true` counts (some IdPs send the string
/// "true"; "false", absent or anything else does not).
#[must_use]
pub fn email_verified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Builds the identity from claims (an ID token's, merged with userinfo's, or a bearer token's).
/// `fallback_user` names the caller when the user claim is absent (`sub`, or a service's client id).
pub fn identity_of(
    cfg: &Config,
    claims: &Map<String, Value>,
    sub: &str,
    fallback_user: &str,
    source: Source,
) -> Result<Identity, Reason> {
    let names = &cfg.claims;
    let text = |path: &str| -> Option<String> {
        if path == "sub" {
            return Some(String::from(sub));
        }
        lookup(claims, path).and_then(as_text)
    };
    let email_usable = email_verified(claims) || cfg.insecure_allow_unverified_email;
    let email = text(&names.email).filter(|_| email_usable);
    let user = if names.user == names.email && names.user != "sub" {
        // The user is named by their email: an unverified one is whatever they typed at the IdP.
        email.clone().ok_or(Reason::EmailUnverified)?
    } else {
        text(&names.user).unwrap_or_else(|| String::from(fallback_user))
    };
    let mut kept = BTreeMap::new();
    for path in &cfg.kept_claims {
        if let Some(v) = lookup(claims, path) {
            kept.insert(path.clone(), v.clone());
        }
    }
    Ok(Identity {
        source,
        user,
        sub: String::from(sub),
        email,
        name: text(&names.name),
        preferred_username: text(&names.preferred_username),
        groups: groups_of(lookup(claims, &names.groups)),
        scopes: scopes_of(claims),
        claims: kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    #[test]
    fn claim_paths_follow_objects_and_prefer_whole_names() {
        let c = m(
            json!({"user": {"mail": "a@x"}, "https://x.io/groups": ["g"], "a.b": 1, "a": {"b": 2}}),
        );
        assert_eq!(lookup(&c, "user.mail"), Some(&json!("a@x")));
        assert_eq!(lookup(&c, "https://x.io/groups"), Some(&json!(["g"])));
        assert_eq!(lookup(&c, "a.b"), Some(&json!(1)), "the whole name wins");
        assert_eq!(lookup(&c, "user.mail.x"), None);
        assert_eq!(lookup(&c, "user.nope"), None);
        assert_eq!(lookup(&c, ""), None);
    }

    #[test]
    fn scopes_from_scope_string_or_scp_array() {
        assert_eq!(
            scopes_of(&m(json!({"scope": "read  write"}))),
            ["read", "write"]
        );
        assert_eq!(scopes_of(&m(json!({"scp": ["read", "a b", ""]}))), ["read"]);
        assert_eq!(
            scopes_of(&m(json!({"scp": "read write"}))),
            ["read", "write"]
        );
        assert!(scopes_of(&m(json!({"scope": 7}))).is_empty());
    }
}
