//! `sessiond`: reads the command line and configuration, then runs the chosen command.

use std::process::ExitCode;

use clap::Parser;
use sessiond_app::cli::{Cli, Command, UserCommand};
use sessiond_app::{Application, Settings, commands, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole chain: "cannot read the configuration: …".
            eprintln!("sessiond: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
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
