//! Routing policy: which paths are public, where redirects may go, which headers are ours, and how to
//! tell a browser navigation from an API call.

pub mod headers;
pub mod navigation;
pub mod path;
pub mod redirect;
pub mod requirements;
pub mod rules;
