//! `talker-media`: the media worker that `talker-agent` starts next to itself. It reads
//! requests on stdin and answers on stdout (see `talker_agent::media::protocol`); its logs go
//! to stderr, which it shares with the agent. Not meant to be started by hand.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("talker-media {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match talker_media::serve::serve(stdin, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("talker-media: {e:#}");
            ExitCode::FAILURE
        }
    }
}
