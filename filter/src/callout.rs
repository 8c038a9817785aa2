//! Turning Envoy's callout reply callback into the core's `CalloutResponse`.

use portcullis_core::CalloutResponse;

use crate::host;

/// Largest callout body we read (discovery, JWKS and token responses are a few KB).
const MAX_BODY: usize = 1 << 20;

/// An owned reply; `status == None` means the callout failed (timeout or reset: Envoy reports no headers).
pub struct Reply {
    status: Option<u16>,
    body: Vec<u8>,
}

impl Reply {
    /// Reads the reply of the callout Envoy just completed.
    pub fn read(num_headers: usize, body_size: usize) -> Reply {
        if num_headers == 0 {
            return Reply {
                status: None,
                body: Vec::new(),
            };
        }
        match host::callout_reply(body_size, MAX_BODY) {
            Ok((0, _)) | Err(_) => Reply {
                status: None,
                body: Vec::new(),
            },
            Ok((status, body)) => Reply {
                status: Some(status),
                body,
            },
        }
    }

    /// The core's view of it.
    pub fn as_response(&self) -> CalloutResponse<'_> {
        match self.status {
            Some(status) => CalloutResponse::Received {
                status,
                body: &self.body,
            },
            None => CalloutResponse::Failed,
        }
    }
}
