//! `talker-media`: the media worker that `talker-agent` starts next to itself. It reads
//! requests on stdin (a packet socket, or a stream of lines) and answers on stdout (see `splitdial_media::protocol`); its logs go
//! to stderr, which it shares with the agent. Not meant to be started by hand.

use std::os::fd::AsFd;
use std::process::ExitCode;

use talker_media::requests::{PacketRequests, StreamRequests};
use talker_media::serve::serve;

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
    let stdout = std::io::stdout().lock();
    // The agent makes stdin a packet socket (requests with passed sockets); by hand it is
    // a plain stream of lines.
    let packets = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(PacketRequests::from_socket);
    let served = match packets {
        Some(requests) => serve(requests, stdout),
        None => serve(StreamRequests::new(std::io::stdin().lock()), stdout),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("talker-media: {e:#}");
            ExitCode::FAILURE
        }
    }
}
