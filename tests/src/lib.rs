//! Shared helpers for sessiond's integration tests: the storage contract suite and a
//! running app to talk to over HTTP.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed expectation here is a failed test"
)]

pub mod admin_contract;
pub mod app;
pub mod browser;
pub mod contract;
pub mod header_echo;
pub mod instances;
pub mod lifecycle_contract;
pub mod logs;
pub mod nginx;
pub mod postgres_standby;
pub mod redis_cluster;
pub mod redis_server;
pub mod tcp_proxy;
