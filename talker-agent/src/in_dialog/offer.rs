//! Offers inside a call (RFC 3264 §8 on RFC 3311 and RFC 3261 §14): each answered from
//! the call's [`SdpSession`], so the `o=` id stays and its version moves only when our
//! description changes. A call with media answers from what it can carry (the far end's
//! `sendonly` is answered `recvonly`, `inactive` with `inactive`); the control leg answers
//! every offer inactive. An offer we cannot take leaves the session as it was.

use splitdial_sip::sdp::{self, LocalMedia, Negotiated, SdpSession};

/// What a call's answers are made from.
#[derive(Debug, Clone, Copy)]
pub enum Answering {
    /// The control leg: every stream inactive, refused ones kept refused.
    Inactive,
    /// A call with media on these ports and directions.
    Media(LocalMedia),
}

/// Our answer to an offer, and what it means for the call.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The SDP of our 2xx.
    pub sdp: String,
    /// The plan the exchange makes (a call with media only).
    pub plan: Option<Negotiated>,
    /// Whether the offer puts us on hold (a call with media only).
    pub held_by_peer: Option<bool>,
}

/// Why an offer is refused: the status of the answer (488, or 400 for a body that is
/// not SDP) and what was wrong.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The status code.
    pub status: u16,
    /// Why, for the log.
    pub why: String,
}

/// Answers the far end's `offer` in `session`.
pub fn answer(
    session: &mut SdpSession,
    answering: &Answering,
    offer: &[u8],
) -> Result<Answered, Refused> {
    let refused = |e: sdp::SdpError| Refused {
        status: e.sip_status(),
        why: e.to_string(),
    };
    let offer = std::str::from_utf8(offer).map_err(|_| Refused {
        status: 400,
        why: "the offer is not UTF-8".into(),
    })?;
    match answering {
        Answering::Inactive => Ok(Answered {
            sdp: session.inactive_answer(offer).map_err(refused)?,
            plan: None,
            held_by_peer: None,
        }),
        Answering::Media(local) => {
            let held = sdp::holds_us(offer).map_err(refused)?;
            let (sdp, plan) = session.answer(offer, local).map_err(refused)?;
            Ok(Answered {
                sdp,
                plan: Some(plan),
                held_by_peer: Some(held),
            })
        }
    }
}

/// Our offer in the 2xx to a re-INVITE without one (RFC 3261 §14.2: its answer comes in
/// the ACK).
pub fn our_offer(session: &mut SdpSession, answering: &Answering) -> String {
    match answering {
        Answering::Inactive => session.inactive_offer(),
        Answering::Media(local) => session.offer(local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitdial_sip::sdp::{Direction, LocalStream};
    use std::net::IpAddr;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn local() -> Answering {
        Answering::Media(LocalMedia {
            audio: LocalStream {
                port: 40100,
                direction: Direction::SendRecv,
            },
            video: None,
        })
    }

    fn offer(version: u32, port: u16, direction: &str) -> String {
        format!(
            "v=0\r\no=bob 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na={direction}\r\n"
        )
    }

    fn origin(sdp: &str) -> (String, String) {
        let line = sdp
            .lines()
            .find(|l| l.starts_with("o="))
            .unwrap_or_default();
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields[1].to_owned(), fields[2].to_owned())
    }

    #[test]
    fn hold_resume_and_a_move_follow_rfc_3264() {
        let mut session = SdpSession::new(LOCAL);
        let answering = local();
        let first = answer(
            &mut session,
            &answering,
            offer(1, 5000, "sendrecv").as_bytes(),
        )
        .unwrap();
        assert!(first.sdp.contains("a=sendrecv"), "{}", first.sdp);
        assert_eq!(first.held_by_peer, Some(false));
        let hold = answer(
            &mut session,
            &answering,
            offer(2, 5000, "sendonly").as_bytes(),
        )
        .unwrap();
        assert!(hold.sdp.contains("a=recvonly"), "{}", hold.sdp);
        assert_eq!(hold.held_by_peer, Some(true));
        assert_eq!(
            hold.plan.and_then(|p| p.audio).map(|a| a.direction),
            Some(Direction::RecvOnly)
        );
        assert_eq!(origin(&hold.sdp).0, origin(&first.sdp).0);
        assert_eq!(origin(&hold.sdp).1, "2");
        let off = answer(
            &mut session,
            &answering,
            offer(3, 5000, "inactive").as_bytes(),
        )
        .unwrap();
        assert!(off.sdp.contains("a=inactive"), "{}", off.sdp);
        assert_eq!(off.held_by_peer, Some(true));
        let resumed = answer(
            &mut session,
            &answering,
            offer(4, 5000, "sendrecv").as_bytes(),
        )
        .unwrap();
        assert_eq!(origin(&resumed.sdp).1, "4");
        // A refresh with the same offer: the same description, the same version.
        let again = answer(
            &mut session,
            &answering,
            offer(4, 5000, "sendrecv").as_bytes(),
        )
        .unwrap();
        assert_eq!(again.sdp, resumed.sdp);
        let moved = answer(
            &mut session,
            &answering,
            offer(5, 6000, "sendrecv").as_bytes(),
        )
        .unwrap();
        assert_eq!(
            moved
                .plan
                .and_then(|p| p.audio)
                .map(|a| a.remote_rtp.port()),
            Some(6000)
        );
        assert_eq!(origin(&moved.sdp).1, "4", "our side did not change");
    }

    #[test]
    fn an_offer_we_cannot_take_leaves_the_session_as_it_was() {
        let mut session = SdpSession::new(LOCAL);
        let answering = local();
        let first = answer(
            &mut session,
            &answering,
            offer(1, 5000, "sendrecv").as_bytes(),
        )
        .unwrap();
        let video_only = "v=0\r\no=bob 7 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let refused = answer(&mut session, &answering, video_only.as_bytes()).unwrap_err();
        assert_eq!(refused.status, 488);
        assert_eq!(session.current().as_deref(), Some(first.sdp.as_str()));
        assert_eq!(
            answer(&mut session, &answering, b"not sdp")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn the_control_leg_answers_everything_inactive() {
        let mut session = SdpSession::new(LOCAL);
        let answered = answer(
            &mut session,
            &Answering::Inactive,
            offer(1, 5000, "sendrecv").as_bytes(),
        )
        .unwrap();
        assert!(answered.sdp.contains("a=inactive") && answered.plan.is_none());
        assert!(our_offer(&mut session, &Answering::Inactive).contains("a=inactive"));
    }
}
