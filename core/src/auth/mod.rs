//! Authentication: who is asking. By session cookie ([`session`]) or bearer token ([`bearer`]); both
//! yield the same [`crate::identity::Identity`].

pub(crate) mod bearer;
pub(crate) mod introspect;
pub mod refresh;
pub(crate) mod session;
