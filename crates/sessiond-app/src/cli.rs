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
            eprintln!("sessiond: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// Runs the command `cli` names.
///
/// # Errors
/// Whatever stops the command: unusable settings, unreachable storage, a failed server.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    let config_dir = config_dir(cli.config_dir)?;
    // Only `serve` signs tokens: the other commands need no JWT secret.
    let settings = match command {
        Command::Serve => Settings::load(&config_dir)?,
        _ => Settings::load_for_command(&config_dir)?,
    };
    telemetry::init(settings.log_format);
    match command {
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

/// The configuration folder: `config` unless one is named. A folder someone named must
/// exist, with the file of the environment they set: a typo must not run on defaults.
fn config_dir(named: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let Some(dir) = named else {
        return Ok(PathBuf::from("config"));
    };
    if !dir.is_dir() {
        anyhow::bail!("the configuration folder {} does not exist", dir.display());
    }
    if let Ok(env) = std::env::var("SESSIOND_ENV") {
        let file = dir.join(format!("{env}.toml"));
        if !file.is_file() {
            anyhow::bail!(
                "SESSIOND_ENV is {env:?} but {} does not exist (an empty file will do)",
                file.display()
            );
        }
    }
    Ok(dir)
}

/// An error and its causes on one line, each said once: libraries often repeat their
/// cause in their own message ("error connecting to server: error connecting to server").
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Sessions across devices for a multi-role platform: sign-in, validation, refresh, and
/// ending sessions on one device or all of them.
#[derive(Debug, Parser)]
#[command(name = "sessiond", version)]
pub struct Cli {
    /// Folder holding default.toml and <SESSIOND_ENV>.toml [default: config]. One named
    /// here must exist, and hold the environment's file when SESSIOND_ENV is set.
    #[arg(long, env = "SESSIOND_CONFIG_DIR", global = true)]
    pub config_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_is_one_line_with_each_cause_once() {
        let error = anyhow::anyhow!("error connecting to server")
            .context("Error occurred while creating a new object: error connecting to server")
            .context("no PostgreSQL connection available");
        assert_eq!(
            one_line(&error),
            "no PostgreSQL connection available: Error occurred while creating a new object: \
             error connecting to server"
        );
    }
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
        /// The user's e-mail address (it signs in with it).
        #[arg(long)]
        email: String,
        /// guest, hotel_employee, vendor_admin or system_admin.
        #[arg(long)]
        role: Role,
        /// The hotel the user belongs to, if any (guests and hotel employees).
        #[arg(long)]
        hotel_id: Option<i64>,
        /// The password; otherwise from SESSIOND_PASSWORD, otherwise a line of standard input.
        #[arg(long, env = "SESSIOND_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}
