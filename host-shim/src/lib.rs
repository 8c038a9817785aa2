//! portcullis-host-shim: the same `portcullis-core` engine driven natively. A small HTTP/1.1 proxy
//! (tiny_http) in front of one upstream, with the IdP callouts made by a real HTTP client (ureq), so the
//! whole login runs in `cargo test` and locally without Envoy.
//!
//! Like one Envoy VM it keeps one engine snapshot and one core `VmState` (session cache, issuers' keys,
//! refresh schedule), shared by its worker threads under a lock, and nothing else: sessions live in the
//! browser's sealed cookies.
#![forbid(unsafe_code)]

mod callout;
mod proxy;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use portcullis_core::{ConfigError, Engine, VmState};

pub use callout::Clusters;

/// How to run the shim.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// Where to listen (port 0 picks one).
    pub listen: SocketAddr,
    /// Base URL of the upstream, e.g. `http://127.0.0.1:9100`.
    pub upstream: String,
    /// Cluster name → base URL (the plugin config's `idp_cluster` must be here).
    pub clusters: BTreeMap<String, String>,
    /// The plugin JSON, exactly as Envoy would get it.
    pub plugin_json: Vec<u8>,
    /// Worker threads.
    pub workers: usize,
}

/// Why the shim could not start.
#[derive(Debug)]
pub enum ShimError {
    /// The plugin configuration was refused.
    Config(ConfigError),
    /// The listener could not be bound.
    Bind(String),
}

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimError::Config(e) => write!(f, "{e}"),
            ShimError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

/// State shared by the worker threads.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub vm: Mutex<VmState>,
    pub clusters: Clusters,
    pub upstream: String,
    /// The process-wide shared data the core uses to claim refreshes (as proxy-wasm's): value and
    /// compare-and-swap version by key.
    pub store: Mutex<std::collections::BTreeMap<String, (Vec<u8>, u32)>>,
}

impl Shared {
    /// Carries out a claim: read, let the core decide, compare-and-swap (one lock: no conflict).
    pub fn claim(
        &self,
        key: &str,
        pending: &mut portcullis_core::Pending,
        now: portcullis_core::UnixTime,
    ) -> bool {
        let mut store = match self.store.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = store.get(key).map(|(v, _)| v.clone());
        match self.engine.claim_step(pending, current.as_deref(), now) {
            Some(bytes) => {
                let version = store.get(key).map_or(0, |(_, c)| *c) + 1;
                store.insert(key.to_string(), (bytes, version));
                true
            }
            None => false,
        }
    }

    /// Writes what the core asked to publish.
    pub fn flush_writes(&self, vm: &mut VmState) {
        let writes = vm.take_shared_writes();
        if writes.is_empty() {
            return;
        }
        let mut store = match self.store.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (k, v) in writes {
            let version = store.get(&k).map_or(0, |(_, c)| *c) + 1;
            store.insert(k, (v, version));
        }
    }

    /// The core's VM state (a poisoned lock is still usable: the core never leaves it half-changed).
    pub fn vm(&self) -> std::sync::MutexGuard<'_, VmState> {
        match self.vm.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running shim. Dropping it does not stop it; call [`Running::stop`].
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting and joins the threads.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        for _ in 1..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the shim: binds, spawns workers and the provider refresh thread.
pub fn start(config: ShimConfig) -> Result<Running, ShimError> {
    let engine = Engine::from_json(&config.plugin_json).map_err(ShimError::Config)?;
    let vm = engine.new_vm();
    let server = Arc::new(
        tiny_http::Server::http(config.listen).map_err(|e| ShimError::Bind(e.to_string()))?,
    );
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ShimError::Bind("not an IP listener".into()))?;
    let shared = Arc::new(Shared {
        engine: Arc::new(engine),
        vm: Mutex::new(vm),
        clusters: Clusters::new(config.clusters),
        upstream: config.upstream.trim_end_matches('/').to_string(),
        store: Mutex::new(std::collections::BTreeMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..config.workers.max(1) {
        let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match server.recv() {
                    Ok(req) => proxy::handle(&shared, req),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }));
    }
    let (shared_r, stop_r) = (shared.clone(), stop.clone());
    threads.push(thread::spawn(move || refresh_loop(&shared_r, &stop_r)));
    Ok(Running {
        addr,
        server,
        stop,
        threads,
    })
}

/// The root-timer loop: the core's refresh schedule, with blocking callouts (made without the lock).
fn refresh_loop(shared: &Shared, stop: &AtomicBool) {
    let engine = &shared.engine;
    while !stop.load(Ordering::SeqCst) {
        let mut queue = engine.handle_timeout(callout::now(), &mut shared.vm());
        while let Some((call, pending)) = queue.pop() {
            let reply = shared.clusters.send(&call);
            let step = engine.handle_root_response(
                pending,
                reply.as_response(),
                callout::now(),
                &mut shared.vm(),
            );
            if let Some(line) = step.log {
                eprintln!("portcullis: {}", line.text);
            }
            queue.extend(step.next);
        }
        thread::sleep(Duration::from_millis(100));
    }
}
