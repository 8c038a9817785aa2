//! `portcullis-host-shim explain`: the binary run as an operator would, and its output compared with
//! what the core (and so the playground) prints for the same input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use portcullis_core::explain::{explain_json, SEED};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn config() -> Value {
    json!({
        "issuer": "https://login.example.com",
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": "s",
        "cookie": {"keys": [{"id": "k1", "secret": KEY}]},
        "routes": {"rules": [
            {"name": "admin", "prefix": "/admin", "action": "authenticate",
             "require": {"groups": ["admins"]}}
        ]}
    })
}

fn write_config(name: &str, config: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "portcullis-explain-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Runs `explain` with these arguments: (exit code, parsed stdout, raw stdout).
fn run(config: &PathBuf, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis-host-shim"))
        .arg("explain")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stdout)
}

#[test]
fn a_bad_config_exits_non_zero_naming_the_field() {
    let mut cfg = config();
    cfg["cookie"]["keys"][0]["secret"] = json!("not-32-bytes");
    let path = write_config("bad", &cfg);
    let (code, v, _) = run(&path, &["--url", "http://app.example.com/"]);
    assert_eq!(code, 1);
    assert_eq!(v["config_error"]["field"], "cookie.keys[0].secret", "{v}");
    assert!(v.get("decision").is_none());
}

#[test]
fn a_group_only_route_without_the_group_is_403_naming_the_group() {
    let path = write_config("forbidden", &config());
    let (code, v, _) = run(
        &path,
        &[
            "--url",
            "http://app.example.com/admin/users",
            "-H",
            "accept: text/html",
            "--user",
            "bob",
            "--groups",
            "dev,qa",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["route"]["rule"], "admin");
    assert_eq!(v["decision"]["status"], 403);
    assert_eq!(v["decision"]["reason"], "forbidden_group");
    assert_eq!(v["decision"]["requirement"]["required"], json!(["admins"]));
    assert_eq!(v["decision"]["requirement"]["has"], json!(["dev", "qa"]));
}

#[test]
fn with_the_group_it_forwards_with_the_identity_headers() {
    let path = write_config("forward", &config());
    let (code, v, _) = run(
        &path,
        &[
            "--url",
            "http://app.example.com/admin",
            "-H",
            "X-Forwarded-User: mallory",
            "--user",
            "alice",
            "--email",
            "alice@example.com",
            "--groups",
            "admins",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["decision"]["outcome"], "forward");
    let headers = v["decision"]["upstream_headers"].as_array().unwrap();
    let user: Vec<&str> = headers
        .iter()
        .filter_map(|h| h.as_str()?.strip_prefix("x-forwarded-user: "))
        .collect();
    assert_eq!(user, ["alice"], "{headers:?}");
    assert!(headers.contains(&json!("x-forwarded-email: alice@example.com")));
}

#[test]
fn the_cli_prints_what_the_core_prints_for_the_playground() {
    let cfg = config();
    let path = write_config("same", &cfg);
    let (code, _, stdout) = run(
        &path,
        &[
            "--method",
            "GET",
            "--url",
            "http://app.example.com/reports",
            "-H",
            "accept: text/html",
            "-H",
            "sec-fetch-mode: navigate",
        ],
    );
    assert_eq!(code, 0);
    let input = json!({"method": "GET", "url": "http://app.example.com/reports",
                       "headers": ["accept: text/html", "sec-fetch-mode: navigate"]});
    let core = explain_json(
        cfg.to_string().as_bytes(),
        input.to_string().as_bytes(),
        &mut ChaCha20Rng::seed_from_u64(SEED),
    );
    assert_eq!(stdout.trim_end(), core);
    let v: Value = serde_json::from_str(&core).unwrap();
    assert_eq!(v["decision"]["outcome"], "login_redirect");
}

#[test]
fn a_request_it_cannot_build_exits_2() {
    let path = write_config("input", &config());
    let (code, v, _) = run(&path, &["--url", "app.example.com/no-scheme"]);
    assert_eq!(code, 2);
    assert!(
        v["input_error"].as_str().unwrap().starts_with("url:"),
        "{v}"
    );
}
