//! Authentication: who is asking. Today by session cookie ([`session`]).

pub(crate) mod session;
