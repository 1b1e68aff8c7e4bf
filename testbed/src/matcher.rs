//! The matcher binary started for a test, and the addresses its ready line
//! names (`matcher ready http ADDR sip ADDR url URL`, printed by
//! `matcher/src/main.rs` once both listeners are bound).

use crate::{Error, Process, Result, Spawn};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a matcher may take to print its ready line (a debug build on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a matcher's ready line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatcherReady {
    /// The HTTP API's address, whatever its scheme.
    pub http: SocketAddr,
    /// The SIP call controller's address.
    pub sip: SocketAddr,
    /// How to reach the API: `https://ADDR`, or `http://ADDR` with `--insecure-http`.
    pub url: String,
}

impl MatcherReady {
    /// Reads `matcher ready http ADDR sip ADDR url URL`; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.strip_prefix("matcher ready ")?.split_whitespace();
        let mut field = |key: &str| {
            if words.next() == Some(key) {
                words.next()
            } else {
                None
            }
        };
        let http = field("http")?.parse().ok()?;
        let sip = field("sip")?.parse().ok()?;
        let url = field("url")?.to_owned();
        Some(Self { http, sip, url })
    }
}

/// A [`Spawn`] of this build's matcher binary, labelled `matcher`: add its
/// arguments (and environment), then [`start_matcher`].
pub fn matcher_spawn() -> Spawn {
    Spawn::new(crate::workspace_binary("matcher")).label("matcher")
}

/// Starts the matcher and waits for its ready line; returns the process (ended
/// when dropped) and what the line says.
///
/// # Errors
/// When it cannot start, prints no ready line in time (its log is in the
/// error's process log), or prints one without the addresses.
pub fn start_matcher(spawn: Spawn) -> Result<(Process, MatcherReady)> {
    let mut process = spawn.start()?;
    process.wait_for_output("matcher ready", READY_TIMEOUT)?;
    let log = process.log();
    let line = log
        .lines()
        .find(|l| l.starts_with("matcher ready"))
        .unwrap_or_default();
    let ready = MatcherReady::parse(line).ok_or_else(|| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the matcher's ready line names no addresses: {line:?}"),
        ))
    })?;
    Ok((process, ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_line() {
        let ready = MatcherReady::parse(
            "matcher ready http 127.0.0.1:4433 sip 127.0.0.1:5070 url https://127.0.0.1:4433",
        )
        .unwrap();
        assert_eq!(ready.http, "127.0.0.1:4433".parse().unwrap());
        assert_eq!(ready.sip, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(ready.url, "https://127.0.0.1:4433");
        assert_eq!(MatcherReady::parse("matcher ready http 127.0.0.1:1"), None);
        assert_eq!(
            MatcherReady::parse("matcher ready sip 127.0.0.1:1 http 127.0.0.1:2 url x"),
            None
        );
        assert_eq!(MatcherReady::parse("something else"), None);
    }
}
