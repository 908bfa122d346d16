//! The `sessiond` binary, built again inside the tests crate so that a test can start it as
//! a process of its own (`env!("CARGO_BIN_EXE_sessiond-process")`, always up to date with
//! the code under test): the same `main` and the same allocator as
//! `crates/sessiond-app/src/main.rs`.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    sessiond_app::cli::main().await
}
