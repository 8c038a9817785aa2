//! Lab crate for a verify-only RSA used by Portcullis to check JWT signatures.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod rsa_verify;
