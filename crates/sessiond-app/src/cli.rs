//! The command line (SPEC §7), and what the `sessiond` binary runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sessiond_domain::model::Role;

use crate::{Application, Settings, commands, telemetry};

/// The `sessiond` binary: reads the command line and the configuration, then runs the
/// chosen command. Its own `main` is this and the allocator (so that tests can build the
/// very same binary as a process of their own).
pub async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole chain: "cannot read the configuration: …".
            eprintln!("sessiond: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command `cli` names.
///
/// # Errors
/// Whatever stops the command: unusable settings, unreachable storage, a failed server.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.config_dir)?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => commands::migrate(&settings).await?,
        Command::Cleanup => commands::cleanup(&settings).await?,
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    role,
                    hotel_id,
                    password,
                },
        } => commands::create_user(&settings, &email, role, hotel_id, password).await?,
    }
    Ok(())
}

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
