//! The command line (SPEC §7).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// sessiond: multi-device session management.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Folder holding default.toml and <SESSIOND_ENV>.toml.
    #[arg(
        long,
        env = "SESSIOND_CONFIG_DIR",
        default_value = "config",
        global = true
    )]
    pub config_dir: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
}
