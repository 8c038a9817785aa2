//! Sessions bigger than one cookie: split over numbered chunk cookies sealed as one value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::session::chunks::{CHUNK_BYTES, MAX_CHUNKS};
use portcullis_core::Decision;
use serde_json::json;

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

fn big_harness() -> Harness {
    let mut h = Harness::with(json!({"headers": {"pass_access_token": true}}));
    h.idp.access_token_pad = 3000;
    h
}

fn chunk_names(b: &Browser) -> Vec<String> {
    b.jar
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| {
            n == "_pc" || (n.starts_with("_pc_") && n[4..].bytes().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

fn api(h: &mut Harness, b: &Browser) -> Decision {
    h.vm.clear_session_cache();
    h.send("GET", "/app", &[("accept", "application/json")], Some(b))
}

#[test]
fn two_hundred_groups_and_a_3kb_access_token_span_several_cookies_and_all_reach_upstream() {
    let mut h = big_harness();
    let (b, d) = login_with_groups(&mut h, 200);
    assert_eq!(reason_code(&d), "login_completed");
    for sc in set_cookies(&d) {
        assert!(
            sc.len() < 4096,
            "a Set-Cookie over 4096 bytes: {}",
            sc.len()
        );
    }
    let names = chunk_names(&b);
    assert!(names.len() >= 3 && names.len() <= MAX_CHUNKS, "{names:?}");
    assert!(b
        .get("_pc")
        .unwrap()
        .starts_with(&format!("{}~", names.len())));
    // Through the cookie path (cache cleared) and the cache path.
    for _ in 0..2 {
        let mut with_theirs = b.clone();
        with_theirs.set("theirs", "1");
        let d = h.send(
            "GET",
            "/app",
            &[("accept", "text/html")],
            Some(&with_theirs),
        );
        assert_eq!(reason_code(&d), "authenticated");
        let up = identity_headers(&d);
        let groups = up.iter().find(|(n, _)| n == "x-forwarded-groups").unwrap();
        assert_eq!(groups.1.split(',').count(), 200);
        let at = up
            .iter()
            .find(|(n, _)| n == "x-forwarded-access-token")
            .unwrap();
        assert!(at.1.len() > 3000);
        // None of the chunk cookies goes upstream.
        let sent = vec![("cookie".to_string(), with_theirs.cookie_header().unwrap())];
        let fwd = upstream_headers(&d, &sent);
        let cookie = fwd.iter().find(|(n, _)| n == "cookie").unwrap();
        assert_eq!(cookie.1, "theirs=1");
    }
    h.vm.clear_session_cache();
}

#[test]
fn a_missing_extra_reordered_tampered_or_mixed_up_chunk_is_no_session_never_a_500() {
    let mut h = big_harness();
    let (b, _) = login_with_groups(&mut h, 200);
    let (other, _) = login_with_groups(&mut h, 200);
    assert_eq!(reason_code(&api(&mut h, &b)), "authenticated");
    let names = chunk_names(&b);
    let n = names.len();
    let mut cases: Vec<(String, Browser)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // missing
        let mut m = b.clone();
        m.jar.retain(|(x, _)| x != name);
        cases.push((format!("missing {name}"), m));
        // one byte changed
        let mut t = b.clone();
        let v = t.get(name).unwrap().to_string();
        let pos = v.len() / 2;
        let flipped = if &v[pos..=pos] == "A" { "B" } else { "A" };
        t.set(name, &format!("{}{}{}", &v[..pos], flipped, &v[pos + 1..]));
        cases.push((format!("tampered {name}"), t));
        // truncated
        let mut t = b.clone();
        t.set(name, &v[..v.len() - 1]);
        cases.push((format!("truncated {name}"), t));
        // from another session (same user, same key ring, other login)
        let mut x = b.clone();
        x.set(name, other.get(name).unwrap());
        cases.push((format!("mixed-up {name}"), x));
        // swapped with the next chunk's value
        if i + 1 < n && i > 0 {
            let mut s = b.clone();
            let next = s.get(&names[i + 1]).unwrap().to_string();
            s.set(&names[i + 1], &v);
            s.set(name, &next);
            cases.push((format!("swapped {name}"), s));
        }
    }
    let mut extra = b.clone();
    extra.set(&format!("_pc_{n}"), "k1.AAAA");
    cases.push(("extra chunk".into(), extra));
    let mut dup = b.clone();
    dup.jar
        .push(("_pc_1".into(), b.get("_pc_1").unwrap().to_string()));
    cases.push(("duplicate chunk".into(), dup));
    let mut recount = b.clone();
    let first = b.get("_pc").unwrap();
    recount.set("_pc", &format!("{}{}", n - 1, &first[1..]));
    cases.push(("count lowered".into(), recount));
    for (what, c) in &cases {
        let d = api(&mut h, c);
        assert_eq!(
            (status(&d), reason_code(&d)),
            (401, "login_required"),
            "{what}"
        );
        let d = h.send("GET", "/app", &[("accept", "text/html")], Some(c));
        assert_eq!(reason_code(&d), "login_started", "{what}");
    }
    // Cookies in another order are the same session (a browser may send them in any order).
    let mut rev = b.clone();
    rev.jar.reverse();
    assert_eq!(reason_code(&api(&mut h, &rev)), "authenticated");
}

#[test]
fn a_smaller_session_and_sign_out_clear_every_chunk() {
    let mut h = big_harness();
    let (mut b, _) = login_with_groups(&mut h, 200);
    assert!(chunk_names(&b).len() >= 3);
    // A new login (say another account) with a small session leaves no stale chunk behind.
    h.idp.access_token_pad = 0;
    let auth = h.start(&mut b, "/oauth2/start");
    let cb = h.idp_login(&auth, "bob");
    let d = h.navigate(&mut b, &cb);
    assert_eq!(reason_code(&d), "login_completed");
    assert_eq!(chunk_names(&b), vec!["_pc".to_string()]);
    assert!(!b.get("_pc").unwrap().contains('~'));
    assert_eq!(reason_code(&api(&mut h, &b)), "authenticated");
    // Sign-out clears every chunk a larger session could have used.
    let (mut big, _) = login_with_groups(&mut h, 400);
    assert!(chunk_names(&big).len() >= 3);
    let d = h.navigate(&mut big, "/oauth2/sign_out");
    assert_eq!(status(&d), 302);
    assert!(chunk_names(&big).is_empty(), "{:?}", big.jar);
    let cleared = set_cookies(&d)
        .iter()
        .filter(|c| c.starts_with("_pc_") && c.contains("Max-Age=0"))
        .count();
    assert!(cleared >= MAX_CHUNKS - 1);
}

#[test]
fn the_chunk_count_is_bounded_and_beyond_it_a_clear_500() {
    let mut h = big_harness();
    h.idp.access_token_pad = MAX_CHUNKS * CHUNK_BYTES;
    let (b, d) = login_with_groups(&mut h, 10);
    assert_eq!((status(&d), reason_code(&d)), (500, "session_too_large"));
    assert!(b.get("_pc").is_none());
    assert!(chunk_names(&b).is_empty());
}
