//! Reading the reply of the callout Envoy just completed, as the core's `CalloutReply`.

use portcullis_core::decision::MAX_CALLOUT_BODY;
use portcullis_core::CalloutReply;

use crate::host;

/// Read one byte past the core's limit, so the core sees that a body is too long (and refuses it)
/// while memory stays bounded whatever the IdP sends.
const MAX_BODY: usize = MAX_CALLOUT_BODY + 1;

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
