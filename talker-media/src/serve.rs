//! The worker's request loop: one request in, one reply line out, in order. Requests run
//! one at a time (GStreamer set-up and teardown block anyway); a request that cannot be read
//! is answered with an error and the loop goes on. At the end of the requests every session
//! and conference is stopped cleanly, then the worker exits.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;

use anyhow::Context;
use splitdial_media::lines::{Line, MAX_LINE_BYTES, encode_line};
use splitdial_media::protocol::{LegPorts, Operation, Outcome, Reply, Request};
use splitdial_media::{AllocatedPorts, PortNumbers};
use tracing::{info, warn};

use crate::conference::Conference;
use crate::error::MediaError;
use crate::requests::Requests;
use crate::session::MediaSession;

/// The ports a request names: the sockets passed with it, or (over a plain stream, where
/// none can travel) the numbers bound here.
fn ports(numbers: PortNumbers, sockets: Vec<OwnedFd>) -> Result<AllocatedPorts, MediaError> {
    if sockets.is_empty() {
        numbers.bind()
    } else {
        AllocatedPorts::from_passed(numbers, sockets)
    }
}

/// What the worker runs, by the agent's numbers.
#[derive(Default)]
struct Running {
    sessions: HashMap<u64, MediaSession>,
    conferences: HashMap<u64, Conference>,
}

impl Running {
    fn run(&mut self, op: Operation, sockets: Vec<OwnedFd>) -> Result<Outcome, MediaError> {
        match op {
            Operation::WarmUp => {
                crate::chains::init()?;
                Ok(Outcome::Done)
            }
            Operation::StartSession {
                session,
                plan,
                settings,
                ports,
            } => {
                let started = MediaSession::start(&plan, &settings, self::ports(ports, sockets)?)?;
                if let Some(old) = self.sessions.insert(session, started) {
                    old.stop();
                }
                Ok(Outcome::Done)
            }
            Operation::SessionStats { session } => {
                let mut stats = self
                    .sessions
                    .get(&session)
                    .ok_or_else(|| unknown("session", session))?
                    .stats();
                stats.make_finite();
                Ok(Outcome::Stats(stats))
            }
            Operation::UpdateSession { session, plan } => {
                self.sessions
                    .get_mut(&session)
                    .ok_or_else(|| unknown("session", session))?
                    .update(&plan)?;
                Ok(Outcome::Done)
            }
            Operation::StopSession { session } => {
                if let Some(s) = self.sessions.remove(&session) {
                    s.stop();
                }
                Ok(Outcome::Done)
            }
            Operation::StartConference {
                conference,
                settings,
            } => {
                let started = Conference::new(&settings)?;
                if let Some(old) = self.conferences.insert(conference, started) {
                    old.stop();
                }
                Ok(Outcome::Done)
            }
            Operation::AddLeg {
                conference,
                plan,
                ports,
            } => {
                // A moving session ends here whatever comes next: the agent counts it gone.
                let ports = match ports {
                    LegPorts::Reserved(numbers) => self::ports(numbers, sockets)?,
                    LegPorts::FromSession(session) => self
                        .sessions
                        .remove(&session)
                        .ok_or_else(|| unknown("session", session))?
                        .stop_keeping_audio_sockets()?,
                };
                let mix = self
                    .conferences
                    .get_mut(&conference)
                    .ok_or_else(|| unknown("conference", conference))?;
                Ok(Outcome::Leg(mix.add_leg(&plan, ports)?))
            }
            Operation::UpdateLeg {
                conference,
                leg,
                plan,
            } => {
                self.conferences
                    .get_mut(&conference)
                    .ok_or_else(|| unknown("conference", conference))?
                    .update_leg(leg, &plan)?;
                Ok(Outcome::Done)
            }
            Operation::RemoveLeg { conference, leg } => {
                self.conferences
                    .get_mut(&conference)
                    .ok_or_else(|| unknown("conference", conference))?
                    .remove_leg(leg)?;
                Ok(Outcome::Done)
            }
            Operation::ConferenceStats { conference } => {
                let mut stats = self
                    .conferences
                    .get(&conference)
                    .ok_or_else(|| unknown("conference", conference))?
                    .stats();
                stats.make_finite();
                Ok(Outcome::ConferenceStats(stats))
            }
            Operation::StopConference { conference } => {
                if let Some(c) = self.conferences.remove(&conference) {
                    c.stop();
                }
                Ok(Outcome::Done)
            }
        }
    }

    /// Stops everything cleanly (EOS: RTCP BYE, files finalised).
    fn stop_all(&mut self) {
        for (_, session) in self.sessions.drain() {
            session.stop();
        }
        for (_, conference) in self.conferences.drain() {
            conference.stop();
        }
    }
}

fn unknown(what: &str, number: u64) -> MediaError {
    MediaError::Worker(format!("no {what} {number}"))
}

/// The reply to one request.
fn answer(line: &Line, sockets: Vec<OwnedFd>, running: &mut Running) -> Reply {
    let bytes = match line {
        Line::Complete(bytes) => bytes,
        Line::TooLong => {
            warn!("dropped a request longer than {MAX_LINE_BYTES} bytes");
            return Reply {
                id: 0,
                outcome: Outcome::Failed(format!("request longer than {MAX_LINE_BYTES} bytes")),
            };
        }
    };
    match serde_json::from_slice::<Request>(bytes) {
        Ok(Request { id, op }) => {
            let outcome = running
                .run(op, sockets)
                .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
            Reply { id, outcome }
        }
        Err(e) => {
            // Answer under the request's id when there is one, so it does not wait in vain.
            let id = serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                .unwrap_or(0);
            warn!(error = %e, "unreadable request");
            Reply {
                id,
                outcome: Outcome::Failed(format!("unreadable request: {e}")),
            }
        }
    }
}

/// Serves `requests` until they end, writing replies to `output`.
pub fn serve(mut requests: impl Requests, mut output: impl Write) -> anyhow::Result<()> {
    info!("media worker ready");
    let mut running = Running::default();
    let result = loop {
        let incoming = match requests.next_request() {
            Ok(Some(incoming)) => incoming,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e).context("reading requests"),
        };
        let reply = answer(&incoming.line, incoming.sockets, &mut running);
        let written = encode_line(&reply)
            .context("encoding a reply")
            .and_then(|bytes| {
                output
                    .write_all(&bytes)
                    .and_then(|()| output.flush())
                    .context("writing a reply")
            });
        if let Err(e) = written {
            break Err(e);
        }
    };
    running.stop_all();
    info!("media worker stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::StreamRequests;

    fn replies(input: &[u8]) -> Vec<Reply> {
        let mut output = Vec::new();
        serve(StreamRequests::new(input), &mut output).expect("serves");
        output
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("a reply per line"))
            .collect()
    }

    #[test]
    fn bad_lines_get_errors_and_the_worker_goes_on() {
        let mut input = b"not json\n{\"id\":5,\"op\":{\"fly\":{}}}\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        input.extend(b"\n{\"id\":6,\"op\":{\"session_stats\":{\"session\":9}}}\n");
        let got = replies(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].id, 0);
        assert_eq!(got[1].id, 5);
        assert_eq!(got[2].id, 0);
        assert_eq!(got[3].id, 6);
        assert!(
            got.iter().all(|r| matches!(r.outcome, Outcome::Failed(_))),
            "{got:?}"
        );
    }

    #[test]
    fn stopping_what_is_not_there_is_fine() {
        let got = replies(b"{\"id\":1,\"op\":{\"stop_session\":{\"session\":3}}}\n");
        assert_eq!(
            got,
            vec![Reply {
                id: 1,
                outcome: Outcome::Done
            }]
        );
    }
}
