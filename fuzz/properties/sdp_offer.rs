//! The `sdp_offer` fuzz target's properties for the SDP handling of a body that arrives
//! from the network (`splitdial_sip::sdp`), in one place: the fuzz target
//! (`fuzz/fuzz_targets/sdp_offer.rs`) and the stable replay of its seeds and the property
//! tests in CI (`sip/tests/sdp.rs`) both include this file. Every check panics on a
//! violation.

use std::net::{IpAddr, Ipv4Addr};

use splitdial_sip::sdp::{
    Direction, LocalMedia, LocalStream, SdpSession, negotiated_from_answer, offers_active_media,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A talker with audio and video both ways (nothing is bound: SDP only names the ports).
pub fn local_media() -> LocalMedia {
    LocalMedia {
        audio: LocalStream {
            port: 40_000,
            direction: Direction::SendRecv,
        },
        video: Some(LocalStream {
            port: 40_002,
            direction: Direction::SendRecv,
        }),
    }
}

/// Whatever the bytes: answering them as an offer (with media, and inactive) returns an
/// answer or an error with a 4xx; what we write reads back (an inactive answer as wanting
/// no media); reading them as the answer to our own offer, or asking whether they want
/// media, returns instead of panicking; and a refused offer leaves the dialog's `o=`
/// version where it was.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut session = SdpSession::new(LOCAL);
    match session.answer(&text, &local_media()) {
        Ok((written, _plan)) => {
            offers_active_media(&written).expect("our own answer reads back");
            negotiated_from_answer(&text, &written).expect("our own answer fits the offer");
        }
        Err(error) => {
            assert!((400..500).contains(&error.sip_status()), "{error:?}");
            assert_eq!(session.version(), 0, "a refused offer sent nothing");
        }
    }
    if let Ok(written) = session.inactive_answer(&text) {
        assert_eq!(offers_active_media(&written).ok(), Some(false), "{written}");
    }
    let _ = offers_active_media(&text);
    let ours = SdpSession::new(LOCAL).offer(&local_media());
    let _ = negotiated_from_answer(&ours, &text);
}
