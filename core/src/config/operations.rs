//! The `health` and `log` sections: where liveness and readiness are answered, and how decision log
//! lines are written.

use alloc::string::String;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::policy::path::normalize_path;

/// Health-check paths outside the prefix, answered before authentication like oauth2-proxy's
/// `--ping-path` / `--ready-path` (`{prefix}/ping` and `{prefix}/ready` are always answered too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Liveness (200 while the filter runs); `None`: only `{prefix}/ping`.
    pub ping_path: Option<String>,
    /// Readiness (200 once every issuer's metadata and keys have loaded, else 503); `None`: only
    /// `{prefix}/ready`.
    pub ready_path: Option<String>,
}

/// How decision log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `403 forbidden_group GET /admin rule=admin user=alice latency_ms=1.2`.
    #[default]
    Text,
    /// One JSON object per line, the same fields.
    Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    /// `null` or `""` turns the path off.
    #[serde(default = "default_ping")]
    ping_path: Option<String>,
    #[serde(default = "default_ready")]
    ready_path: Option<String>,
}

impl Default for RawHealth {
    fn default() -> Self {
        RawHealth {
            ping_path: default_ping(),
            ready_path: default_ready(),
        }
    }
}

fn default_ping() -> Option<String> {
    Some(String::from("/ping"))
}
fn default_ready() -> Option<String> {
    Some(String::from("/ready"))
}

/// The `metrics` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// Read each forwarded response's status for `requests_total{code}` (a host call per request).
    #[serde(default = "default_true")]
    pub(super) upstream_status: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            upstream_status: true,
        }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default)]
    format: Option<String>,
}

pub(super) fn health_path(
    field: &str,
    value: Option<String>,
    prefix: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(p) = value.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if !p.starts_with('/') || p.contains(['?', '#']) || normalize_path(&p).as_deref() != Some(&p) {
        return Err(invalid(
            field,
            "must be a normalized absolute path such as /ping, without a query (or null to turn it off)",
        ));
    }
    if p == prefix || p.starts_with(&alloc::format!("{prefix}/")) {
        return Err(invalid(
            field,
            alloc::format!("must be outside the prefix {prefix} (our own endpoints live there)"),
        ));
    }
    Ok(Some(p))
}

pub(super) fn health(raw: RawHealth, prefix: &str) -> Result<Health, ConfigError> {
    let ping_path = health_path("health.ping_path", raw.ping_path, prefix)?;
    let ready_path = health_path("health.ready_path", raw.ready_path, prefix)?;
    if ping_path.is_some() && ping_path == ready_path {
        return Err(invalid(
            "health.ready_path",
            "must differ from health.ping_path",
        ));
    }
    Ok(Health {
        ping_path,
        ready_path,
    })
}

pub(super) fn log(raw: RawLog) -> Result<LogFormat, ConfigError> {
    match raw.format.as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(_) => Err(invalid("log.format", "must be \"text\" or \"json\"")),
    }
}
