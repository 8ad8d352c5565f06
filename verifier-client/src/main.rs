//! The `kanbanctl` binary: parses the command line, runs it, and turns the outcome into an
//! exit code (see `kanbanctl::exit`). Usage errors found by clap exit 2 from `parse`.

use std::process::ExitCode;

use clap::Parser as _;
use kanbanctl::{cli::Cli, exit::exit_code};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match kanbanctl::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kanbanctl: {err}");
            ExitCode::from(exit_code(&err))
        }
    }
}
