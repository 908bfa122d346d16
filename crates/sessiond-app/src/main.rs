//! `sessiond`: reads the command line and configuration, then runs the chosen command
//! (`sessiond_app::cli::main`).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    sessiond_app::cli::main().await
}
