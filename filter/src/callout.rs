//! Reading the reply of the callout Envoy just completed, as the core's `CalloutReply`.

use portcullis_core::CalloutReply;

use crate::host;

/// Largest callout body we read (discovery, JWKS and token responses are a few KB).
const MAX_BODY: usize = 1 << 20;

/// No headers means the callout failed (timeout or reset); so does a reply we cannot read.
pub fn read_reply(num_headers: usize, body_size: usize) -> CalloutReply {
    if num_headers == 0 {
        return CalloutReply::failed();
    }
    match host::callout_reply(body_size, MAX_BODY) {
        Ok((0, _)) | Err(_) => CalloutReply::failed(),
        Ok((status, body)) => CalloutReply {
            status: Some(status),
            body,
        },
    }
}
