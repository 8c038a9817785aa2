//! The proxy-wasm ABI calls this filter makes, declared here rather than taken from the SDK.
//!
//! Why: every `proxy_wasm::hostcalls` function in SDK 0.2.5 `panic!`s on any status it does not expect,
//! and the header readers `unwrap()` `String::from_utf8` on names and values. One request carrying a
//! Latin-1 byte in any header (`User-Agent: caf\xe9`, which Envoy passes through) would panic, and a
//! panic kills this worker's VM: every later request on it fails until Envoy restarts it. Here every
//! call returns its status as a `Result`, header maps come back as raw bytes (parsed by the core's
//! total `parse_header_map`), and nothing panics. The SDK is still used for its dispatcher (the
//! `proxy_on_*` exports), its allocator (`proxy_on_memory_allocate`, which the host uses to hand us the
//! buffers we take ownership of below), and `dispatch_http_call` (see `host::dispatch`).
//!
//! This is the only module of the workspace with `unsafe`: each block is an FFI call with pointers to
//! live Rust buffers, or the adoption of a buffer the host allocated through our allocator (exactly
//! `size` bytes, as the SDK itself does).
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};

use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status, StreamType};

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

/// Off wasm (`cargo test`, clippy on the host) there is no host: every call reports `InternalFailure`.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    #![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]
    const FAIL: u32 = 10;
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_get_current_time_nanoseconds(_: *mut u64) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_get_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_get_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_replace_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_add_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_continue_stream(_: u32) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_set_effective_context(_: u32) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_get_shared_data(
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
        _: *mut u32,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_set_shared_data(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: u32,
    ) -> u32 {
        FAIL
    }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        FAIL
    }
}
#[cfg(not(target_arch = "wasm32"))]
use native::*;

/// A host status as a `Result`; unknown codes become `InternalFailure` (never an invalid enum value).
fn check(code: u32) -> Result<(), Status> {
    match code {
        0 => Ok(()),
        1 => Err(Status::NotFound),
        2 => Err(Status::BadArgument),
        3 => Err(Status::SerializationFailure),
        4 => Err(Status::ParseFailure),
        7 => Err(Status::Empty),
        8 => Err(Status::CasMismatch),
        _ => Err(Status::InternalFailure),
    }
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate` (the SDK's
/// allocator hands out exactly `size` bytes, so capacity equals length).
fn adopt(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: `data` was returned by the host, which obtained it from our `proxy_on_memory_allocate`
    // with exactly `size` bytes, and transferred it to us; nothing else refers to it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Writes a log line.
pub fn log(level: LogLevel, msg: &str) -> Result<(), Status> {
    // SAFETY: the pointer and length describe `msg`, alive for the call.
    check(unsafe { proxy_log(level as u32, msg.as_ptr(), msg.len()) })
}

/// Host time in nanoseconds since the epoch.
pub fn current_time_nanos() -> Result<u64, Status> {
    let mut t = 0u64;
    // SAFETY: `t` is a live u64 the host writes once.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// Sets the root context's tick period.
pub fn set_tick_period_ms(ms: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// Up to `max` bytes of a host buffer (plugin configuration, callout reply body).
pub fn buffer(buffer: BufferType, max: usize) -> Result<Vec<u8>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: the out-pointers point at live locals.
    let code = unsafe { proxy_get_buffer_bytes(buffer as u32, 0, max, &mut data, &mut size) };
    match check(code) {
        Ok(()) => Ok(adopt(data, size)),
        Err(Status::NotFound | Status::Empty) => Ok(Vec::new()),
        Err(s) => Err(s),
    }
}

/// A whole header map in proxy-wasm's serialized form (parse it with
/// `portcullis_core::request::parse_header_map`).
pub fn header_map_bytes(map: MapType) -> Result<Vec<u8>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: the out-pointers point at live locals.
    check(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    Ok(adopt(data, size))
}

/// One header's value as bytes; `None` when absent.
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `name` is alive for the call; the out-pointers point at live locals.
    let code = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match check(code) {
        Ok(()) => Ok(Some(adopt(data, size))),
        Err(Status::NotFound) => Ok(None),
        Err(s) => Err(s),
    }
}

/// Removes every value of a header.
pub fn remove_header(map: MapType, name: &str) -> Result<(), Status> {
    // SAFETY: `name` is alive for the call.
    check(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Replaces a header's values with one value.
pub fn replace_header(map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: `name` and `value` are alive for the call.
    check(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Appends a header value.
pub fn add_header(map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: `name` and `value` are alive for the call.
    check(unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Resumes a paused request.
pub fn resume_request() -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(StreamType::HttpRequest as u32) })
}

/// Sends a local response; `headers` is a serialized header map.
pub fn send_local_response(status: u32, headers: &[u8], body: &[u8]) -> Result<(), Status> {
    // SAFETY: `headers` and `body` are alive for the call; no details string.
    check(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Defines a metric; returns its id.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: `name` is alive for the call; `id` is a live local.
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Makes later host calls act on another context of this VM (a request parked earlier).
pub fn set_effective_context(id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(id) })
}

/// A process-wide shared value and its compare-and-swap version (`None` and 0 when never set).
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), Status> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: `key` is alive for the call; the out-pointers point at live locals.
    let code =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match check(code) {
        Ok(()) => Ok((Some(adopt(data, size)), cas)),
        Err(Status::NotFound) => Ok((None, 0)),
        Err(s) => Err(s),
    }
}

/// Sets a process-wide shared value if its version is still `cas` (`Err(CasMismatch)` otherwise).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: `key` and `value` are alive for the call.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Adds to a counter.
pub fn increment_metric(id: u32, by: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_increment_metric(id, by) })
}
