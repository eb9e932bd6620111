use std::process::ExitCode;

use clap::Parser;
use herald::cli::{self, Cli};
use herald::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    cli::run(cli, config).await
}
