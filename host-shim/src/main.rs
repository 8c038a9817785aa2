//! `portcullis-host-shim --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9100 \
//!     --cluster idp=http://127.0.0.1:9000 --config plugin.json [--workers 4]`
//!
//! `portcullis-host-shim explain --config plugin.json --url http://app/admin [--method GET] \
//!     [-H 'name: value']... [--user alice [--email a@x] [--groups admins,dev]] [--now UNIX]`
//! prints what the configuration does with that request (the playground's JSON); exits 1 for a
//! refused configuration, 2 for a request it cannot build.
//!
//! `portcullis-host-shim check-config plugin.json` checks a plugin configuration the way the filter's
//! `on_configure` does (exit 1 naming the field); `portcullis-host-shim gen-key [ID]` prints a fresh
//! `cookie.keys` entry (32 random bytes from the OS).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::ExitCode;

use portcullis_host_shim::{start, ShimConfig};

fn usage() -> ExitCode {
    eprintln!("usage: portcullis-host-shim --listen ADDR --upstream URL --cluster NAME=URL... --config FILE [--workers N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("explain") => return explain(&args[1..]),
        Some("check-config") => return check_config(&args[1..]),
        Some("gen-key") => return gen_key(&args[1..]),
        _ => {}
    }
    let (mut listen, mut upstream, mut config, mut workers) = (None, None, None, 4usize);
    let mut clusters = BTreeMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return usage();
        };
        match flag.as_str() {
            "--listen" => listen = value.parse().ok(),
            "--upstream" => upstream = Some(value.clone()),
            "--config" => config = Some(value.clone()),
            "--workers" => workers = value.parse().unwrap_or(4),
            "--cluster" => match value.split_once('=') {
                Some((k, v)) => {
                    clusters.insert(k.to_string(), v.to_string());
                }
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let (Some(listen), Some(upstream), Some(config)) = (listen, upstream, config) else {
        return usage();
    };
    let plugin_json = match std::fs::read(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {config}: {e}");
            return ExitCode::from(2);
        }
    };
    match start(ShimConfig {
        listen,
        upstream,
        clusters,
        plugin_json,
        workers,
    }) {
        Ok(running) => {
            eprintln!("portcullis-host-shim listening on http://{}", running.addr);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("portcullis-host-shim: {e}");
            ExitCode::from(1)
        }
    }
}

/// `check-config FILE`: the configuration as `on_configure` sees it.
fn check_config(args: &[String]) -> ExitCode {
    let [file] = args else {
        eprintln!("usage: portcullis-host-shim check-config FILE");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    match portcullis_core::Engine::from_json(&bytes) {
        Ok(engine) => {
            let c = engine.config();
            println!(
                "{file}: ok (issuer {}, client {}, {} rule(s) and a default, sealing with key {})",
                c.issuer,
                c.client_id,
                c.policy.rules.len(),
                c.keys.primary_id()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `gen-key [ID]`: a `cookie.keys` entry with 32 bytes from the OS's randomness.
fn gen_key(args: &[String]) -> ExitCode {
    use base64::Engine as _;
    use rand_core::RngCore as _;

    let id = match args {
        [] => "key-1",
        [id] => id.as_str(),
        _ => {
            eprintln!("usage: portcullis-host-shim gen-key [ID]");
            return ExitCode::from(2);
        }
    };
    let mut key = [0u8; 32];
    if rand_core::OsRng.try_fill_bytes(&mut key).is_err() {
        eprintln!("the OS's randomness is unavailable");
        return ExitCode::from(1);
    }
    let secret = base64::engine::general_purpose::STANDARD.encode(key);
    println!("{{\"id\": {id:?}, \"secret\": \"{secret}\"}}");
    ExitCode::SUCCESS
}

fn explain_usage() -> ExitCode {
    eprintln!("usage: portcullis-host-shim explain --config FILE --url URL [--method M] [-H 'name: value']... [--user U [--email E] [--groups G1,G2]] [--now UNIX]");
    ExitCode::from(2)
}

/// `explain`: the core's explanation of one request, printed as JSON. Conversion only: the flags
/// become an `ExplainInput`; the core decides and describes.
fn explain(args: &[String]) -> ExitCode {
    use portcullis_core::explain::{explain, ExplainInput, Lines, TestIdentity};
    use rand_chacha::rand_core::SeedableRng;

    let mut input = ExplainInput::default();
    let (mut config, mut headers, mut user) = (None, Vec::new(), TestIdentity::default());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return explain_usage();
        };
        match flag.as_str() {
            "--config" => config = Some(value.clone()),
            "--method" | "-X" => input.method = Some(value.clone()),
            "--url" => input.url = value.clone(),
            "-H" | "--header" => headers.push(value.clone()),
            "--user" => user.user = value.clone(),
            "--email" => user.email = Some(value.clone()),
            "--groups" => user.groups = Some(Lines::One(value.clone())),
            "--now" => match value.parse() {
                Ok(n) => input.now = Some(n),
                Err(_) => return explain_usage(),
            },
            _ => return explain_usage(),
        }
    }
    let Some(config) = config else {
        return explain_usage();
    };
    if input.url.is_empty() {
        return explain_usage();
    }
    let plugin_json = match std::fs::read(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {config}: {e}");
            return ExitCode::from(2);
        }
    };
    input.headers = Lines::Many(headers);
    if !user.user.is_empty() {
        input.session = Some(user);
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(portcullis_core::explain::SEED);
    let explanation = explain(&plugin_json, &input, &mut rng);
    println!("{}", explanation.to_json());
    if explanation.config_error.is_some() {
        ExitCode::from(1)
    } else if explanation.input_error.is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
