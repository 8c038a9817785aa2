//! Portcullis as a proxy-wasm filter: a thin adapter that feeds Envoy's callbacks into
//! `portcullis_core::Engine` and carries out its decisions. All policy lives in the core.
// `unsafe` only in `abi` (the raw host calls; see its module doc).
#![deny(unsafe_code)]
// `proxy_wasm::main!` expands to an undocumented exported function.
#![allow(missing_docs)]

mod abi;
mod callout;
mod host;
mod http;
mod root;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::Root::new(id)) });
}}
