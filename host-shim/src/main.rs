//! `portcullis-host-shim --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9100 \
//!     --cluster idp=http://127.0.0.1:9000 --config plugin.json [--workers 4]`
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
