//! `splitdial config`: the effective configuration as TOML (file < environment
//! < flags), the token redacted, with the file it came from as a comment.

use crate::cli::{Exit, ExitCode};
use crate::config::Loaded;

/// Prints the effective configuration.
pub fn run(loaded: &Loaded) -> Result<(), Exit> {
    match &loaded.file {
        Some((path, true)) => println!("# file: {}", path.display()),
        Some((path, false)) => println!("# file: {} (not found; defaults used)", path.display()),
        None => println!("# file: none (neither XDG_CONFIG_HOME nor HOME is set)"),
    }
    let text = loaded.config.to_toml().map_err(|e| {
        Exit::new(
            ExitCode::Failure,
            format!("cannot print the configuration: {e}"),
        )
    })?;
    print!("{text}");
    Ok(())
}
