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

/// Largest callout body read: one byte past the core's limit, so it sees (and refuses) a longer body.
const MAX_BODY: u64 = portcullis_core::decision::MAX_CALLOUT_BODY as u64 + 1;

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

/// A transport failure as Envoy's async client reports it: a timeout is its own 504, anything before a
/// response (refused, reset, DNS) its own 503.
fn envoy_style_failure(t: &ureq::Transport) -> CalloutReply {
    let timed_out = std::error::Error::source(t)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        });
    if timed_out {
        CalloutReply {
            status: Some(504),
            body: b"upstream request timeout".to_vec(),
        }
    } else {
        CalloutReply {
            status: Some(503),
            body: b"upstream connect error or disconnect/reset before headers".to_vec(),
        }
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
        let resp = match send(req, &c.body) {
            Ok(resp) => resp,
            // Reported the way Envoy reports them, so the core sees one contract from every host.
            Err(t) => return envoy_style_failure(&t),
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
