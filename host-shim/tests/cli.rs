//! The command line beside `explain`: `check-config` refuses what `on_configure` refuses, naming the
//! field; `gen-key` prints a key entry the configuration accepts, different every time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn shim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis-host-shim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_with_key(key: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "issuer": "https://idp.example", "idp_cluster": "idp", "client_id": "app",
        "client_secret": "s", "cookie": {"keys": [key]},
        "routes": {"rules": [{"name": "admin", "prefix": "/admin", "action": "authenticate",
                              "require": {"groups": ["admins"]}}]}
    })
}

fn write(name: &str, v: &serde_json::Value) -> String {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn gen_key_prints_a_key_the_configuration_accepts_and_never_the_same_one() {
    let (code, out, _) = shim(&["gen-key", "2026-12"]);
    assert_eq!(code, 0);
    let key: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(key["id"], "2026-12");
    let (code2, out2, _) = shim(&["gen-key", "2026-12"]);
    assert_eq!(code2, 0);
    assert_ne!(out, out2, "two keys drawn alike");
    let file = write("good.json", &config_with_key(&key));
    let (code, out, err) = shim(&["check-config", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ok") && out.contains("1 rule(s)") && out.contains("2026-12"),
        "{out}"
    );
}

#[test]
fn check_config_names_the_field_it_refuses() {
    let bad = config_with_key(&serde_json::json!({"id": "k", "secret": "not base64!"}));
    let file = write("bad.json", &bad);
    let (code, _, err) = shim(&["check-config", &file]);
    assert_eq!(code, 1);
    assert!(err.contains("cookie.keys[0].secret"), "{err}");
    let (code, _, err) = shim(&["check-config", "/nonexistent/plugin.json"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = shim(&["gen-key", "a", "b"]);
    assert_eq!(code, 2);
}
