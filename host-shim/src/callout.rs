//! IdP callouts over real HTTP (ureq), and the host clock.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_core::{Callout, CalloutReply, UnixTime};

/// The host clock in whole seconds.
pub fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Largest callout body read.
const MAX_BODY: u64 = 1 << 20;

/// Sends `req` (with `body` unless empty). Any HTTP status is a response; only a transport failure
/// (connect, timeout, reset) is an error.
pub fn send(req: ureq::Request, body: &[u8]) -> Result<ureq::Response, Box<ureq::Transport>> {
    let result = if body.is_empty() {
        req.call()
    } else {
        req.send_bytes(body)
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(ureq::Error::Transport(t)) => Err(Box::new(t)),
    }
}

/// Cluster name → base URL: the shim's stand-in for Envoy clusters.
#[derive(Debug, Clone)]
pub struct Clusters(BTreeMap<String, String>);

impl Clusters {
    /// From a name → base URL map.
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Clusters(
            map.into_iter()
                .map(|(k, v)| (k, v.trim_end_matches('/').to_string()))
                .collect(),
        )
    }

    /// Sends a callout like Envoy would: to the cluster's address, with the callout's `:authority`.
    pub fn send(&self, c: &Callout) -> CalloutReply {
        let Some(base) = self.0.get(&c.cluster) else {
            eprintln!("portcullis: unknown cluster {:?}", c.cluster);
            return CalloutReply::failed();
        };
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_millis(c.timeout_ms))
            .build();
        let mut req = agent.request(c.method, &format!("{base}{}", c.path));
        for (n, v) in &c.headers {
            req = req.set(n, v);
        }
        let Ok(resp) = send(req, &c.body) else {
            return CalloutReply::failed();
        };
        let status = resp.status();
        let mut body = Vec::new();
        if resp
            .into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .is_err()
        {
            return CalloutReply::failed();
        }
        CalloutReply {
            status: Some(status),
            body,
        }
    }
}
