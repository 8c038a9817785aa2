//! Host calls that never panic: the SDK's trait helpers `unwrap()` every host status, and a panic kills
//! this worker's VM. Here every failure is returned or logged.

use std::time::{Duration, UNIX_EPOCH};

use portcullis_core::{Header, HeaderEdits, UnixTime};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

/// Logs at `level`; a failing log call is ignored (there is nowhere else to report it).
pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// The host clock in whole seconds.
pub fn now() -> Result<UnixTime, Status> {
    let t = hostcalls::get_current_time()?;
    Ok(UnixTime(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    ))
}

/// Applies header edits to a header map (remove, then set, then add).
pub fn apply_edits(map: MapType, edits: &HeaderEdits) -> Result<(), Status> {
    for name in &edits.remove {
        hostcalls::set_map_value(map, name, None)?;
    }
    for (name, value) in &edits.set {
        hostcalls::set_map_value(map, name, Some(value))?;
    }
    // The core guarantees these names are absent after `remove`, so appending is a replace that skips
    // Envoy's lookup.
    for (name, value) in edits.identity.iter().flat_map(|i| i.iter()) {
        hostcalls::add_map_value(map, name, value)?;
    }
    for (name, value) in &edits.add {
        hostcalls::add_map_value(map, name, value)?;
    }
    Ok(())
}

/// Sends a local response.
pub fn send_response(status: u16, headers: &[Header], body: &[u8]) -> Result<(), Status> {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::send_http_response(u32::from(status), h, Some(body))
}

/// The request headers, pseudo-headers included.
pub fn request_headers() -> Result<Vec<(String, String)>, Status> {
    hostcalls::get_map(MapType::HttpRequestHeaders)
}

/// The `:status` and body of a callout reply (body capped at `max`).
pub fn callout_reply(body_size: usize, max: usize) -> Result<(u16, Vec<u8>), Status> {
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")?
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(max))?
            .unwrap_or_default()
    };
    Ok((status, body))
}

/// Sends a callout to `cluster`, returning the token id.
pub fn dispatch(c: &portcullis_core::Callout) -> Result<u32, Status> {
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", c.method),
        (":path", c.path.as_str()),
        (":authority", c.authority.as_str()),
    ];
    headers.extend(c.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = if c.body.is_empty() {
        None
    } else {
        Some(c.body.as_slice())
    };
    hostcalls::dispatch_http_call(
        &c.cluster,
        headers,
        body,
        vec![],
        Duration::from_millis(c.timeout_ms),
    )
}

/// A counter, defined on first use (ids are per VM).
pub fn define_counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

/// Adds `n` to a counter.
pub fn add(id: u32, n: u64) {
    let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
}

/// Resumes a paused request.
pub fn resume() -> Result<(), Status> {
    hostcalls::resume_http_request()
}
