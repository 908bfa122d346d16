//! sessiond's integration tests, in one binary.

mod http;
mod memory;
