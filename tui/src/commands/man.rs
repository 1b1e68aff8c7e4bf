//! `splitdial man`: the man page (roff), generated from the command-line
//! definition.

use crate::cli::{Cli, Exit, ExitCode};
use clap::CommandFactory;

/// Writes the man page to stdout.
pub fn run() -> Result<(), Exit> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Exit::new(ExitCode::Failure, format!("cannot write the man page: {e}")))
}
