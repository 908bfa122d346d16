//! The session rules of sessiond and the ports they need.
//!
//! This crate is the hexagon's inside: what a user, a session and a token are, what the
//! per-role policy says, and the use cases (sign in, validate, refresh, sign out, ...) written
//! against small port traits. It does no I/O and knows no framework: storage, hashing, JWT,
//! User-Agent parsing and the clock are adapters in other crates, chosen by the app crate.

pub mod activity;
pub mod caching;
pub mod error;
pub mod feed;
pub mod model;
pub mod ports;
pub mod service;
pub mod trust;

pub use error::{DomainError, ErrorChain, StoreError};
