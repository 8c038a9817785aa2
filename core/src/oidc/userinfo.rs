//! The UserInfo endpoint (OIDC Core §5.3), fetched once at login when `claims.userinfo` is on, for IdPs
//! that put email or groups only there. Its `sub` must equal the ID token's (§5.3.2): otherwise the reply
//! may be for someone else and the login fails.

use alloc::string::String;

use serde_json::{Map, Value};

use crate::decision::{Callout, CalloutResponse, Header, Reason, MAX_CALLOUT_BODY};
use crate::metrics::IdpEndpoint;
use crate::oidc::discovery::get_callout;

/// A GET to the userinfo endpoint with the access token (RFC 6750 §2.1). `None` if the endpoint is not
/// a URL.
#[must_use]
pub fn userinfo_request(
    endpoint: &str,
    access_token: &str,
    cluster: &str,
    timeout_ms: u64,
) -> Option<Callout> {
    let mut c = get_callout(endpoint, cluster, timeout_ms, IdpEndpoint::Userinfo)?;
    let auth: Header = (
        String::from("authorization"),
        alloc::format!("Bearer {access_token}"),
    );
    c.headers.push(auth);
    Some(c)
}

/// The claims of a userinfo reply for `subject`, or the status and reason the login fails with.
pub fn parse_userinfo(
    response: CalloutResponse<'_>,
    subject: &str,
) -> Result<Map<String, Value>, (u16, Reason)> {
    let body = match response {
        CalloutResponse::Received { status: 504, .. } => {
            return Err((504, Reason::UserinfoTimeout))
        }
        CalloutResponse::Received { status: 200, body } if body.len() <= MAX_CALLOUT_BODY => body,
        CalloutResponse::Received { status: 200, .. } => {
            return Err((502, Reason::UserinfoInvalid))
        }
        CalloutResponse::Received { .. } | CalloutResponse::Failed => {
            return Err((502, Reason::UserinfoUnavailable))
        }
    };
    // A signed (application/jwt) reply is not supported: it does not parse as a JSON object.
    let claims: Map<String, Value> =
        crate::json::from_object(body).map_err(|_| (502, Reason::UserinfoInvalid))?;
    match claims.get("sub") {
        Some(Value::String(s)) if s == subject => Ok(claims),
        _ => Err((403, Reason::UserinfoSubjectMismatch)),
    }
}

/// ID-token claims with the userinfo claims added: a claim the ID token carries keeps its value (it is
/// signed), the others come from userinfo.
#[must_use]
pub fn merge(mut id_token: Map<String, Value>, userinfo: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in userinfo {
        id_token.entry(k).or_insert(v);
    }
    id_token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> CalloutResponse<'_> {
        CalloutResponse::Received {
            status: 200,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn replies_are_checked_and_merged_under_the_id_token() {
        let c = parse_userinfo(ok(r#"{"sub":"u1","email":"u@x","name":"U"}"#), "u1")
            .unwrap_or_default();
        assert_eq!(c.get("email"), Some(&Value::String("u@x".into())));
        for (resp, want) in [
            (
                ok(r#"{"sub":"u2","email":"u@x"}"#),
                (403, Reason::UserinfoSubjectMismatch),
            ),
            (
                ok(r#"{"email":"u@x"}"#),
                (403, Reason::UserinfoSubjectMismatch),
            ),
            (ok(r#"{"sub":1}"#), (403, Reason::UserinfoSubjectMismatch)),
            (
                ok("eyJhbGciOiJSUzI1NiJ9.e30.sig"),
                (502, Reason::UserinfoInvalid),
            ),
            (ok("[]"), (502, Reason::UserinfoInvalid)),
            (
                CalloutResponse::Received {
                    status: 401,
                    body: b"",
                },
                (502, Reason::UserinfoUnavailable),
            ),
            (
                CalloutResponse::Received {
                    status: 504,
                    body: b"",
                },
                (504, Reason::UserinfoTimeout),
            ),
            (CalloutResponse::Failed, (502, Reason::UserinfoUnavailable)),
        ] {
            assert_eq!(parse_userinfo(resp, "u1").err(), Some(want), "{resp:?}");
        }
        let id = parse_userinfo(ok(r#"{"sub":"u1","name":"ID"}"#), "u1").unwrap_or_default();
        let ui = parse_userinfo(ok(r#"{"sub":"u1","name":"UI","groups":["g"]}"#), "u1")
            .unwrap_or_default();
        let m = merge(id, ui);
        assert_eq!(
            m.get("name"),
            Some(&Value::String("ID".into())),
            "the signed value wins"
        );
        assert!(m.contains_key("groups"));
    }
}
