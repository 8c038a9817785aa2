//! The decision log: one line per request whose decision was not a routine pass (a login, a denial, a
//! failure, a sign-out, a refresh...), written when the request ends so it carries the latency. Fields:
//! status, reason, method and path (never the query: codes and states live there), rule, user and
//! latency. Never a token, code, state or cookie: none of those is among the fields, and the
//! client-controlled ones (path, user) lose control characters and are capped.

use alloc::string::{String, ToString};

use crate::config::LogFormat;
use crate::decision::Outcome;
use crate::engine::LogLine;

/// Longest path or user written.
const MAX_FIELD: usize = 256;

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

/// The line for a finished request, or `None` for routine passes, health checks and requests that
/// ended before a decision.
#[must_use]
pub fn line(format: LogFormat, o: &Outcome, status: u16, latency_us: u64) -> Option<LogLine> {
    let reason = o.reason?;
    if reason.is_plain_pass() || reason.is_health() {
        return None;
    }
    let label = clean(o.label.as_deref().unwrap_or(""));
    let (method, path) = label.split_once(' ').unwrap_or((label.as_str(), ""));
    let rule = o.trace.rule.as_deref().map(clean);
    let user = o.trace.user.as_deref().map(clean);
    // Milliseconds with one decimal, from integer microseconds (no float formatting in no_std).
    let ms = alloc::format!("{}.{}", latency_us / 1000, (latency_us % 1000) / 100);
    let text = match format {
        LogFormat::Text => {
            let mut t = alloc::format!("{status} {} {method} {path}", reason.code());
            if let Some(r) = &rule {
                t.push_str(&alloc::format!(" rule={r}"));
            }
            if let Some(u) = &user {
                // Quoted when it could be read as two fields.
                if u.contains([' ', '"', '=']) {
                    t.push_str(&alloc::format!(
                        " user={}",
                        serde_json::Value::from(u.as_str())
                    ));
                } else {
                    t.push_str(&alloc::format!(" user={u}"));
                }
            }
            t.push_str(&alloc::format!(" latency_ms={ms}"));
            t
        }
        LogFormat::Json => {
            let mut m = serde_json::Map::new();
            m.insert("status".into(), status.into());
            m.insert("reason".into(), reason.code().into());
            m.insert("method".into(), method.into());
            m.insert("path".into(), path.into());
            m.insert(
                "rule".into(),
                rule.map_or(serde_json::Value::Null, Into::into),
            );
            m.insert(
                "user".into(),
                user.map_or(serde_json::Value::Null, Into::into),
            );
            // Tenths of a millisecond, as a JSON number.
            #[allow(clippy::cast_precision_loss)]
            let tenths = (latency_us / 100) as f64 / 10.0;
            m.insert(
                "latency_ms".into(),
                serde_json::Number::from_f64(tenths).map_or(serde_json::Value::Null, Into::into),
            );
            serde_json::Value::Object(m).to_string()
        }
    };
    Some(LogLine {
        warn: reason.is_failure(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Reason, Trace};

    fn outcome(reason: Reason, label: &str, rule: Option<&str>, user: Option<&str>) -> Outcome {
        Outcome {
            method: "get",
            label: Some(label.into()),
            reason: Some(reason),
            trace: Trace {
                rule: rule.map(Into::into),
                user: user.map(Into::into),
            },
            forwarded: false,
        }
    }

    #[test]
    fn text_lines_carry_reason_rule_user_and_latency() {
        let o = outcome(
            Reason::Forbidden(crate::policy::requirements::Requirement::Group),
            "GET /admin",
            Some("admin"),
            Some("alice"),
        );
        let l = line(LogFormat::Text, &o, 403, 1_234).unwrap();
        assert_eq!(
            l.text,
            "403 forbidden_group GET /admin rule=admin user=alice latency_ms=1.2"
        );
        assert!(l.warn);
        let o = outcome(Reason::LoginStarted, "GET /app", None, None);
        let l = line(LogFormat::Text, &o, 302, 50).unwrap();
        assert_eq!(l.text, "302 login_started GET /app latency_ms=0.0");
        assert!(!l.warn, "a login start is information, not a warning");
    }

    #[test]
    fn json_lines_are_one_object_with_the_same_fields() {
        let o = outcome(
            Reason::StateMismatch,
            "GET /oauth2/callback",
            Some("default"),
            None,
        );
        let l = line(LogFormat::Json, &o, 403, 25_960).unwrap();
        let v: serde_json::Value = serde_json::from_str(&l.text).unwrap();
        assert_eq!(v["status"], 403);
        assert_eq!(v["reason"], "state_mismatch");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/oauth2/callback");
        assert_eq!(v["rule"], "default");
        assert_eq!(v["user"], serde_json::Value::Null);
        assert_eq!(v["latency_ms"], 25.9);
        assert!(!l.text.contains('\n'));
    }

    #[test]
    fn routine_passes_health_and_undecided_requests_write_nothing() {
        for r in [
            Reason::Authenticated,
            Reason::BearerAuthenticated,
            Reason::PublicPath,
            Reason::Ping,
            Reason::Ready,
            Reason::NotReady,
        ] {
            assert_eq!(
                line(LogFormat::Text, &outcome(r, "GET /", None, None), 200, 1),
                None
            );
        }
        let undecided = Outcome::default();
        assert_eq!(line(LogFormat::Json, &undecided, 0, 1), None);
    }

    #[test]
    fn client_controlled_fields_lose_control_characters_and_stay_short() {
        let long = alloc::format!("GET /{}", "a".repeat(10_000));
        let o = outcome(Reason::StateMismatch, &long, None, Some("eve\n403 forged"));
        let t = line(LogFormat::Text, &o, 403, 0).unwrap().text;
        assert!(t.len() < 400, "{}", t.len());
        assert!(!t.contains('\n'));
        // A user with spaces is quoted, so it cannot pose as more fields.
        assert!(t.contains(r#"user="eve403 forged""#), "{t}");
        let o = outcome(Reason::StateMismatch, "GET /x\x1b[31m\u{85}y", None, None);
        let t = line(LogFormat::Text, &o, 403, 0).unwrap().text;
        assert!(t.starts_with("403 state_mismatch GET /x[31my "), "{t}");
    }
}
