//! `sessiond`: reads the command line and configuration, then runs the chosen command.

use clap::Parser;
use sessiond_app::cli::{Cli, Command};
use sessiond_app::{Application, Settings, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config_dir)?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
    }
    Ok(())
}
