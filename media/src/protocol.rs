//! The exchange between the agent and its media worker (`talker-media`): JSON requests on the
//! worker's stdin, JSON replies on its stdout, one object per line, each line at most
//! [`MAX_LINE_BYTES`]. Every request carries an id that its reply repeats, so several calls'
//! requests can be in flight at once. The worker exits when its stdin closes.
//!
//! The agent makes the worker's stdin a Unix `SOCK_SEQPACKET` socket: each request is one
//! packet, and a request that starts media carries the UDP sockets the agent reserved for the
//! SDP as `SCM_RIGHTS` ancillary data (audio RTP, audio RTCP, then video RTP and RTCP), so the
//! ports stay bound from the SDP to the pipeline. Over a plain pipe (a worker started by
//! hand) requests are newline-delimited and the worker binds the numbered ports itself.
//!
//! Sessions and conferences are named by numbers the agent picks ([`Operation`]), so a
//! request never waits for another's reply to know what it talks about.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde::{Deserialize, Serialize};

use super::ports::PortNumbers;
use super::sdp::Negotiated;
use super::settings::MediaSettings;
use super::stats::{ConferenceStats, LegId, MediaStats};

/// Most sockets one request carries (audio and video, RTP and RTCP each).
pub const MAX_PASSED_SOCKETS: usize = 4;

/// Sends one request `packet` on a packet socket with `sockets` beside it as `SCM_RIGHTS`,
/// without blocking and without SIGPIPE (a worker that died fails the request, it does not stop
/// the agent). A packet socket takes all of a packet or nothing: anything less is an error.
pub fn send_with_sockets(
    socket: impl AsFd,
    packet: &[u8],
    sockets: &[impl AsFd],
) -> io::Result<()> {
    if sockets.len() > MAX_PASSED_SOCKETS {
        return Err(io::Error::other("too many sockets for one request"));
    }
    let borrowed: Vec<_> = sockets.iter().map(AsFd::as_fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED_SOCKETS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::other("no room for the passed sockets"));
    }
    let sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(packet)],
        &mut control,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )?;
    if sent == packet.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "sent {sent} of {} bytes",
            packet.len()
        )))
    }
}

/// Longest line either side accepts; a longer one is dropped whole (and answered with an
/// error when it was a request). Real lines are a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One request from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the agent, unique per worker; the reply carries it back.
    pub id: u64,
    /// What to do.
    pub op: Operation,
}

/// What the agent asks the worker to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Initialise GStreamer now, while a call is still being set up, so its media starts
    /// without that delay once it is answered.
    WarmUp,
    /// Start a two-party session (audio and video) on the given ports.
    StartSession {
        /// The agent's number for the session.
        session: u64,
        /// The negotiated streams.
        plan: Negotiated,
        /// Sources, sinks and latency knobs.
        settings: MediaSettings,
        /// The ports from the SDP; their sockets travel with the request.
        ports: PortNumbers,
    },
    /// Report a session's statistics.
    SessionStats {
        /// The session.
        session: u64,
    },
    /// Stop a session cleanly (EOS: RTCP BYE, files finalised) and forget it.
    StopSession {
        /// The session.
        session: u64,
    },
    /// Start an audio mix with the local source and sink and no legs yet.
    StartConference {
        /// The agent's number for the conference.
        conference: u64,
        /// Sources, sinks and latency knobs.
        settings: MediaSettings,
    },
    /// Add a party to a conference (its audio stream only).
    AddLeg {
        /// The conference.
        conference: u64,
        /// The party's negotiated streams.
        plan: Negotiated,
        /// Where the party's sockets come from.
        ports: LegPorts,
    },
    /// Remove a party from a conference.
    RemoveLeg {
        /// The conference.
        conference: u64,
        /// The leg, as [`Outcome::Leg`] named it.
        leg: LegId,
    },
    /// Report a conference's statistics.
    ConferenceStats {
        /// The conference.
        conference: u64,
    },
    /// Stop a conference cleanly and forget it.
    StopConference {
        /// The conference.
        conference: u64,
    },
}

/// The sockets of a new conference leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegPorts {
    /// Newly reserved ports; their sockets travel with the request.
    Reserved(PortNumbers),
    /// The audio sockets of this running session, which stops: a party moving into the
    /// conference keeps the ports its peer already sends to, bound all along.
    FromSession(u64),
}

/// One reply from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The id of the request this answers (0 when the request could not be read at all).
    pub id: u64,
    /// What came of it.
    pub outcome: Outcome,
}

/// What came of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done, nothing to report.
    Done,
    /// A leg was added under this id.
    Leg(LegId),
    /// A session's statistics.
    Stats(MediaStats),
    /// A conference's statistics.
    ConferenceStats(ConferenceStats),
    /// The request failed; the message says why.
    Failed(String),
}

/// One JSON value as a line (with its `\n`).
pub fn encode_line(value: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// What [`LineBuffer::take_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its `\n`.
    Complete(Vec<u8>),
    /// A line longer than the limit ended here; its bytes were dropped.
    TooLong,
}

/// Splits a byte stream into lines of at most a given length, holding at most that many
/// bytes whatever arrives: both sides use it on their end of the pipe.
#[derive(Debug)]
pub struct LineBuffer {
    limit: usize,
    partial: Vec<u8>,
    overflowed: bool,
}

impl LineBuffer {
    /// A buffer for lines of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            partial: Vec::new(),
            overflowed: false,
        }
    }

    /// Feeds `bytes`; returns how many were used (up to and including a `\n`) and the line
    /// they completed, if any. Call again with the rest.
    pub fn push(&mut self, bytes: &[u8]) -> (usize, Option<Line>) {
        let (used, end) = match bytes.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, Some(at)),
            None => (bytes.len(), None),
        };
        let content = &bytes[..end.unwrap_or(used)];
        if !self.overflowed {
            if self.partial.len() + content.len() > self.limit {
                self.overflowed = true;
                self.partial = Vec::new();
            } else {
                self.partial.extend_from_slice(content);
            }
        }
        if end.is_none() {
            return (used, None);
        }
        let line = if std::mem::take(&mut self.overflowed) {
            Line::TooLong
        } else {
            Line::Complete(std::mem::take(&mut self.partial))
        };
        (used, Some(line))
    }
}

/// Reads the next line from a blocking reader through `buffer`; `Ok(None)` at end of input
/// (a last line without `\n` is dropped: the writer died mid-line).
pub fn read_line(
    reader: &mut impl io::BufRead,
    buffer: &mut LineBuffer,
) -> io::Result<Option<Line>> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(None);
        }
        let (used, line) = buffer.push(available);
        reader.consume(used);
        if let Some(line) = line {
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn requests_and_replies_round_trip_as_single_lines() {
        let request = Request {
            id: 7,
            op: Operation::StartSession {
                session: 3,
                plan: Negotiated::default(),
                settings: MediaSettings::new(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ports: PortNumbers {
                    local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    audio_rtp: 40_000,
                    video_rtp: None,
                },
            },
        };
        let line = encode_line(&request).expect("encodes");
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let back: Request = serde_json::from_slice(&line).expect("decodes");
        assert_eq!(back, request);
        let reply = Reply {
            id: 7,
            outcome: Outcome::Failed("no \"audiomixer\"\nelement".into()),
        };
        let line = encode_line(&reply).expect("encodes");
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(serde_json::from_slice::<Reply>(&line).ok(), Some(reply));
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut input: &[u8] = b"one\ntwo-is-too-long\nthree\npartial";
        let mut buffer = LineBuffer::new(5);
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut input, &mut buffer).expect("reads") {
            lines.push(line);
        }
        assert_eq!(
            lines,
            vec![
                Line::Complete(b"one".to_vec()),
                Line::TooLong,
                Line::Complete(b"three".to_vec()),
            ]
        );
    }

    #[test]
    fn a_line_split_across_reads_is_joined() {
        let mut buffer = LineBuffer::new(64);
        assert_eq!(buffer.push(b"{\"id\""), (5, None));
        assert_eq!(
            buffer.push(b":1}\nrest"),
            (4, Some(Line::Complete(b"{\"id\":1}".to_vec())))
        );
    }
}
