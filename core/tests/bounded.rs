//! Bounded work and bounded answers whatever a client sends: hundreds of cookies, long URLs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::Decision;

fn set_cookies(d: &Decision) -> Vec<String> {
    match d {
        Decision::Respond { headers, .. } => headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect(),
        _ => Vec::new(),
    }
}

fn stale_attempts(n: usize) -> Browser {
    let mut b = Browser::default();
    for i in 0..n {
        b.set(&format!("_pc_login_{i:012}"), "junk");
    }
    b
}

#[test]
fn hundreds_of_stale_login_cookies_get_a_bounded_answer() {
    let mut h = Harness::new();
    let b = stale_attempts(300);
    let d = h.send("GET", "/app", &[("accept", "text/html")], Some(&b));
    assert_eq!((status(&d), reason_code(&d)), (302, "login_started"));
    let sc = set_cookies(&d);
    assert!(sc.len() <= 9, "{} set-cookie headers", sc.len());
    let bytes: usize = sc.iter().map(String::len).sum();
    assert!(bytes < 2048, "{bytes} bytes of set-cookie");
    // Oldest first, and the new attempt is set.
    assert!(sc[0].starts_with("_pc_login_000000000000=;"), "{}", sc[0]);
    assert!(sc.last().unwrap().contains("Max-Age=600"));
    let d = h.send("GET", "/oauth2/sign_out", &[], Some(&b));
    let sc = set_cookies(&d);
    assert!(
        sc.len() <= 2 + (portcullis_core::session::chunks::MAX_CHUNKS - 1) + 8,
        "sign-out clears a bounded number: {}",
        sc.len()
    );
}

#[test]
fn repeated_login_cookie_names_are_counted_once() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    b.set("_pc_login_aaaaaaaaaaaa", "x");
    let cookie = std::iter::repeat_n("_pc_login_aaaaaaaaaaaa=x", 500)
        .collect::<Vec<_>>()
        .join("; ");
    let d = h.send(
        "GET",
        "/app",
        &[("accept", "text/html"), ("cookie", &cookie)],
        None,
    );
    assert_eq!(status(&d), 302);
    assert_eq!(
        set_cookies(&d).len(),
        1,
        "one distinct attempt is below the cap"
    );
}

#[test]
fn a_deep_link_too_long_for_the_login_cookie_still_logs_in() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let long = format!("/reports/q?{}", "x".repeat(5000));
    let d = h.login(&mut b, &long, "alice");
    assert_eq!(
        (status(&d), reason_code(&d), location(&d).as_str()),
        (302, "login_completed", "/reports/q"),
        "falls back to the path"
    );
    let long_path = format!("/{}", "p".repeat(5000));
    let mut b = Browser::default();
    let d = h.login(&mut b, &long_path, "alice");
    assert_eq!(
        (reason_code(&d), location(&d).as_str()),
        ("login_completed", "/")
    );
    // A short deep link keeps its query.
    let mut b = Browser::default();
    let d = h.login(&mut b, "/reports/q?a=1", "alice");
    assert_eq!(location(&d), "/reports/q?a=1");
}
