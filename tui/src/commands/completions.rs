//! `splitdial completions SHELL`: a completion script generated from the
//! command-line definition.

use crate::cli::Cli;
use clap::CommandFactory;

/// Writes the completion script for `shell` to stdout.
pub fn run(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "splitdial", &mut std::io::stdout());
}
