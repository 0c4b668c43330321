//! `gallery-ops`: operator tasks without an admin host. See `gallery-ops --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = gallery_ops::Cli::parse();
    match gallery_ops::run(cli).await {
        Ok(output) => {
            println!("{}", serde_json::to_string_pretty(&output).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gallery-ops: {e:#}");
            ExitCode::FAILURE
        }
    }
}
