//! The command line (SPEC §7).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sessiond_domain::model::Role;

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
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Run one cleanup pass (expire, purge), print what it did, then exit.
    Cleanup,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of any role, e.g. the first administrator.
    Create {
        #[arg(long)]
        email: String,
        /// guest, hotel_employee, vendor_admin or system_admin.
        #[arg(long)]
        role: Role,
        #[arg(long)]
        hotel_id: Option<i64>,
        /// The password; otherwise from SESSIOND_PASSWORD, otherwise a line of standard input.
        #[arg(long, env = "SESSIOND_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}
