//! The requests the agent sends its media worker (`talker-media`) and the worker's replies.
//! Every request carries an id that its reply repeats, so several calls' requests can be in
//! flight at once; the worker runs them in order. Each travels as one JSON object (see
//! [`crate::lines`]): on the worker's stdin, one request per packet with the sockets it starts
//! media on passed beside it ([`crate::passing`]); on its stdout, one reply per line. The
//! worker exits when its stdin closes.
//!
//! Sessions and conferences are named by numbers the agent picks ([`Operation`]), so a
//! request never waits for another's reply to know what it talks about.

use serde::{Deserialize, Serialize};

use crate::plan::Negotiated;
use crate::ports::PortNumbers;
use crate::settings::MediaSettings;
use crate::stats::{ConferenceStats, LegId, MediaStats};

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
    /// Run a session on a new plan (the far end re-offered: hold or resume, a new address,
    /// another codec), on the same sockets. Answered `done` once the new plan runs. A
    /// `failed` reply leaves the session on its previous plan: when the new pipeline cannot
    /// be built the old one never stopped; when it was built but cannot start, the previous
    /// plan is rebuilt on the same sockets (a new SSRC, counters carried on), and only if
    /// that fails too does the session hold its sockets with nothing running (the reply
    /// says so; stopping it still works).
    UpdateSession {
        /// The session.
        session: u64,
        /// The new plan; its sockets are the session's.
        plan: Negotiated,
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
    /// Run a conference leg on a new plan (its audio stream), on the same sockets: `done` once
    /// it runs; `failed` leaves the leg on its previous plan, rebuilt on the same sockets if
    /// it was already taken down (an `inactive` audio stream is allowed here: the leg stays,
    /// carrying nothing). Only if that rebuild fails too does the leg carry nothing until
    /// the next update or its removal (the reply says so).
    UpdateLeg {
        /// The conference.
        conference: u64,
        /// The leg, as [`Outcome::Leg`] named it.
        leg: LegId,
        /// The party's new plan (audio only counts).
        plan: Negotiated,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::encode_line;
    use std::net::{IpAddr, Ipv4Addr};

    /// The JSON that crosses the pipe, as docs/media.md describes it: an older worker
    /// beside a newer agent (or the reverse) must keep understanding it.
    #[test]
    fn the_wire_form_is_the_documented_one() {
        fn json(value: &impl Serialize) -> String {
            serde_json::to_string(value).unwrap_or_default()
        }
        assert_eq!(
            json(&Request {
                id: 1,
                op: Operation::WarmUp
            }),
            r#"{"id":1,"op":"warm_up"}"#
        );
        assert_eq!(
            json(&Request {
                id: 4,
                op: Operation::StopSession { session: 2 }
            }),
            r#"{"id":4,"op":{"stop_session":{"session":2}}}"#
        );
        assert_eq!(
            json(&Request {
                id: 5,
                op: Operation::AddLeg {
                    conference: 1,
                    plan: Negotiated::default(),
                    ports: LegPorts::FromSession(2),
                }
            }),
            r#"{"id":5,"op":{"add_leg":{"conference":1,"plan":{"audio":null,"video":null},"ports":{"from_session":2}}}}"#
        );
        assert_eq!(
            json(&Request {
                id: 8,
                op: Operation::UpdateSession {
                    session: 2,
                    plan: Negotiated::default(),
                }
            }),
            r#"{"id":8,"op":{"update_session":{"session":2,"plan":{"audio":null,"video":null}}}}"#
        );
        assert_eq!(
            json(&Request {
                id: 9,
                op: Operation::UpdateLeg {
                    conference: 1,
                    leg: 3,
                    plan: Negotiated::default(),
                }
            }),
            r#"{"id":9,"op":{"update_leg":{"conference":1,"leg":3,"plan":{"audio":null,"video":null}}}}"#
        );
        assert_eq!(
            json(&Reply {
                id: 4,
                outcome: Outcome::Done
            }),
            r#"{"id":4,"outcome":"done"}"#
        );
        assert_eq!(
            json(&Reply {
                id: 5,
                outcome: Outcome::Leg(3)
            }),
            r#"{"id":5,"outcome":{"leg":3}}"#
        );
        assert_eq!(
            json(&Reply {
                id: 6,
                outcome: Outcome::Failed("why".into())
            }),
            r#"{"id":6,"outcome":{"failed":"why"}}"#
        );
    }

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
}
