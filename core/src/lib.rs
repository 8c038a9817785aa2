//! # portcullis-core
//!
//! The policy core of Portcullis: OpenID Connect browser login (authorization code + PKCE + state +
//! nonce), sealed cookie sessions (AES-256-GCM-SIV), ID-token verification, and per-request routing
//! policy — all as pure decisions.
//!
//! ## What the core never does
//! It never reads a clock, draws randomness on its own, opens a socket, logs, or panics on input. Time
//! ([`UnixTime`]) and randomness (`rand_core`) are handed in; every request ends in a [`Decision`].
//!
//! ## The driving loop (every host: the Envoy filter, host-shim, the tests)
//! ```text
//! setup:        engine = Engine::from_json(config)?; vm = engine.new_vm()   (one VmState per VM)
//! root timer:   for (callout, p) in engine.handle_timeout(now, &mut vm): send it;
//!               on its reply: step = engine.handle_root_response(p, reply, now, &mut vm)
//!                 log step.log; send step.next if any        (keys land in vm: install nothing)
//!               engine.poll_timeout(&vm) says when the next one is due
//! per request:  headers = request::parse_header_map(&bytes)   (raw bytes: values need not be UTF-8)
//!               engine.handle_request(&Request::from_headers(&headers), now, rng, &mut vm)
//!                 Forward  -> apply request edits, continue upstream
//!                 Respond  -> send the local response, do not forward
//!                 Callout  -> pause, send, then engine.handle_callout_response(pending, reply, now,
//!                             rng, &mut vm) -> the next Decision
//! ```
//!
//! Sessions, PKCE, configuration and policy are `no_std` + `alloc` (build with
//! `--no-default-features`); the `oidc` feature (default) adds JWKS, ID-token verification (jwt-simple,
//! which needs std), the refresh timer and the [`Engine`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod config;
pub mod decision;
pub mod identity;
pub mod json;
pub mod metrics;
pub mod oidc;
pub mod policy;
pub mod request;
pub mod response;
pub mod session;
pub mod time;

#[cfg(feature = "oidc")]
pub mod audit;
#[cfg(feature = "oidc")]
mod auth;
#[cfg(feature = "oidc")]
pub mod endpoints;
#[cfg(feature = "oidc")]
pub mod engine;
#[cfg(feature = "oidc")]
pub mod explain;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "oidc")]
pub mod vm;

pub use config::{Config, ConfigError};
pub use decision::{
    Callout, CalloutReply, CalloutResponse, Decision, Header, HeaderEdits, Outcome, Reason, Trace,
};
#[cfg(feature = "oidc")]
pub use engine::{Engine, LogLine, Pending, RootPending, RootStep, SHARED_INIT};
#[cfg(feature = "oidc")]
pub use oidc::refresh::Provider;
pub use oidc::IdTokenError;
pub use request::Request;
pub use session::cache::SessionCache;
pub use time::UnixTime;
#[cfg(feature = "oidc")]
pub use vm::VmState;

/// Without the `oidc` feature no flow waits on a callout, so there is no pending state.
#[cfg(not(feature = "oidc"))]
#[derive(Debug)]
pub enum Pending {}
