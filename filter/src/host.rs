//! Host calls in the shapes the adapter needs, over [`crate::abi`]: every failure is returned or
//! logged, never a panic.

use std::time::Duration;

use portcullis_core::request::serialize_header_map;
use portcullis_core::{Header, HeaderEdits, UnixTime};
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::abi;

/// Logs at `level`; a failing log call is ignored (there is nowhere else to report it).
pub fn log(level: LogLevel, msg: &str) {
    let _ = abi::log(level, msg);
}

/// The host clock in whole seconds.
pub fn now() -> Result<UnixTime, Status> {
    abi::current_time_nanos().map(|ns| UnixTime(ns / 1_000_000_000))
}

/// The host clock in nanoseconds (for latencies).
pub fn now_nanos() -> Result<u64, Status> {
    abi::current_time_nanos()
}

/// The `:status` of the response on its way downstream, if readable.
pub fn response_status() -> Option<u16> {
    abi::header_value(MapType::HttpResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok())
}

/// Applies header edits to a header map, with the core's semantics ([`HeaderEdits::apply_raw`]):
/// remove, then set (replace), then the identity headers, then add (append).
pub fn apply_edits(map: MapType, edits: &HeaderEdits) -> Result<(), Status> {
    for name in &edits.remove {
        abi::remove_header(map, name)?;
    }
    for (name, value) in &edits.set {
        abi::replace_header(map, name, value)?;
    }
    // The core guarantees these names are absent after `remove`, so appending is a replace that skips
    // Envoy's lookup.
    for (name, value) in edits.identity.iter().flat_map(|i| i.iter()) {
        abi::add_header(map, name, value.as_bytes())?;
    }
    for (name, value) in &edits.add {
        abi::add_header(map, name, value.as_bytes())?;
    }
    Ok(())
}

/// Sends a local response.
pub fn send_response(status: u16, headers: &[Header], body: &[u8]) -> Result<(), Status> {
    let pairs: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    abi::send_local_response(u32::from(status), &serialize_header_map(&pairs), body)
}

/// The request headers, pseudo-headers included, in proxy-wasm's serialized form.
pub fn request_headers() -> Result<Vec<u8>, Status> {
    abi::header_map_bytes(MapType::HttpRequestHeaders)
}

/// The `:status` of the callout reply (0 if absent or unreadable) and at most `max` bytes of its body.
pub fn callout_reply(body_size: usize, max: usize) -> Result<(u16, Vec<u8>), Status> {
    let status = abi::header_value(MapType::HttpCallResponseHeaders, ":status")?
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok())
        .unwrap_or(0);
    let body = if body_size == 0 {
        Vec::new()
    } else {
        abi::buffer(BufferType::HttpCallResponseBody, body_size.min(max))?
    };
    Ok((status, body))
}

/// At most `max` bytes of the buffered request body.
pub fn request_body(max: usize) -> Result<Vec<u8>, Status> {
    abi::buffer(BufferType::HttpRequestBody, max)
}

/// Reads a process-wide shared value and its version.
pub fn shared_get(key: &str) -> Result<(Option<Vec<u8>>, u32), Status> {
    abi::get_shared_data(key)
}

/// Writes a process-wide shared value if still at version `cas`.
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    abi::set_shared_data(key, value, cas)
}

/// The plugin configuration (at most `max` bytes).
pub fn plugin_configuration(max: usize) -> Result<Vec<u8>, Status> {
    abi::buffer(BufferType::PluginConfiguration, max)
}

/// Sends a callout to `cluster`, returning the token id.
///
/// The one SDK host call left: the SDK's dispatcher must record the token to route the reply to this
/// context, and only its `dispatch_http_call` does that. Its panic arm is unreachable with Envoy, whose
/// `proxy_http_call` returns only `Ok`, `BadArgument` (unknown cluster, bad headers) and
/// `InternalFailure`, all three handled; the header values are strings we built.
pub fn dispatch(c: &portcullis_core::Callout) -> Result<u32, Status> {
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", c.method),
        (":path", c.path.as_str()),
        (":authority", c.authority.as_str()),
    ];
    headers.extend(c.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = (!c.body.is_empty()).then_some(c.body.as_slice());
    proxy_wasm::hostcalls::dispatch_http_call(
        &c.cluster,
        headers,
        body,
        vec![],
        Duration::from_millis(c.timeout_ms),
    )
}

/// A counter or gauge, defined on first use (ids are per VM; the same name in every VM is one stat).
pub fn define_metric(kind: portcullis_core::metrics::MetricKind, name: &str) -> Option<u32> {
    let kind = match kind {
        portcullis_core::metrics::MetricKind::Counter => MetricType::Counter,
        portcullis_core::metrics::MetricKind::Gauge => MetricType::Gauge,
    };
    abi::define_metric(kind, name).ok()
}

/// Moves a counter or gauge by `delta`.
pub fn add(id: u32, delta: i64) {
    let _ = abi::increment_metric(id, delta);
}

/// Makes later host calls act on context `id` (`Err` if it is gone, e.g. the client went away).
pub fn set_effective_context(id: u32) -> Result<(), Status> {
    abi::set_effective_context(id)
}

/// Resumes a paused request.
pub fn resume() -> Result<(), Status> {
    abi::resume_request()
}

/// Sets the root context's tick period.
pub fn set_tick_period(period: Duration) {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    let _ = abi::set_tick_period_ms(ms);
}
