//! sessiond's integration tests, in one binary.

// All of this binary is test code, also the plain functions that the per-backend test
// macros call: a failed unwrap is a failed test.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed expectation in a test is a failed test"
)]

mod admin;
mod admin_stats;
mod admin_users;
mod bound;
mod browser;
mod cluster_demo;
mod durability;
mod edge;
mod failover;
mod faults;
mod forward_auth;
mod hardening;
mod hashing;
mod http;
mod invariants;
mod keys;
mod memory;
mod openapi;
mod postgres;
mod properties;
mod redis;
mod redis_cluster;
mod revocation;
