//! SDP offer/answer (`splitdial_sip::sdp`): negotiation cases, the control leg's inactive
//! offers and answers, RFC 3264 §8's `o=` rules over a dialog's re-offers, refused streams
//! (port 0) answered with port 0, and property tests that garbage never panics the parser.
//! No media runs here: sessions are tested in `talker-media`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use splitdial_sip::sdp::{
    Codec, Direction, LocalMedia, LocalStream, SdpError, SdpSession, negotiated_from_answer,
    offers_active_media,
};

#[path = "../../fuzz/properties/sdp_offer.rs"]
mod sdp_offer;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const AUDIO_PORT: u16 = 41_000;
const VIDEO_PORT: u16 = 41_002;

/// Audio only, sending when `send` and receiving when `recv`.
fn audio(send: bool, recv: bool) -> LocalMedia {
    LocalMedia {
        audio: LocalStream {
            port: AUDIO_PORT,
            direction: Direction::from_flags(send, recv),
        },
        video: None,
    }
}

/// Audio and video, both ways.
fn audio_video() -> LocalMedia {
    LocalMedia {
        video: Some(LocalStream {
            port: VIDEO_PORT,
            direction: Direction::SendRecv,
        }),
        ..audio(true, true)
    }
}

fn session() -> SdpSession {
    SdpSession::new(LOCALHOST)
}

fn answer(
    offer: &str,
    local: &LocalMedia,
) -> Result<(String, splitdial_sip::sdp::Negotiated), SdpError> {
    session().answer(offer, local)
}

fn inactive_answer(offer: &str) -> Result<String, SdpError> {
    session().inactive_answer(offer)
}

/// The `o=` line's session id and version.
fn origin(sdp: &str) -> (u64, u64) {
    let line = sdp.lines().find(|l| l.starts_with("o=")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

/// Everything but the `o=` line: what "unchanged" compares.
fn without_origin(sdp: &str) -> String {
    sdp.lines()
        .filter(|l| !l.starts_with("o="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `m=` lines, in order.
fn m_lines(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("m=")).collect()
}

// ---------------------------------------------------------------- SDP negotiation

fn baresip_offer(port: u16) -> String {
    format!(
        "v=0\r\no=- 1608235282 1608235282 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

#[test]
fn offer_lists_opus_first_then_g711_and_video_only_when_local_has_it() {
    let o = session().offer(&audio_video());
    assert!(
        o.contains(&format!("m=audio {AUDIO_PORT} RTP/AVP 111 0 8")),
        "{o}"
    );
    assert!(o.contains("a=rtpmap:111 opus/48000/2"), "{o}");
    assert!(o.contains("c=IN IP4 127.0.0.1"), "{o}");
    assert!(
        o.contains(&format!("m=video {VIDEO_PORT} RTP/AVP 96")),
        "{o}"
    );
    assert!(o.contains("a=rtpmap:96 VP8/90000"), "{o}");
    let audio_only = session().offer(&audio(true, true));
    assert!(!audio_only.contains("m=video"), "{audio_only}");
    let ipv6 = SdpSession::new("::1".parse().unwrap()).offer(&audio(true, true));
    assert!(ipv6.contains("c=IN IP6 ::1\r\n"), "{ipv6}");
}

#[test]
fn answer_prefers_opus_even_when_offered_last() {
    let o = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 0 109\r\na=rtpmap:109 OPUS/48000/2\r\na=rtcp:40005\r\n";
    let (ans, plan) = answer(o, &audio(true, true)).unwrap();
    let audio = plan.audio.unwrap();
    assert_eq!((audio.codec, audio.payload_type), (Codec::Opus, 109));
    assert_eq!(audio.remote_rtp, SocketAddr::new(LOCALHOST, 40000));
    assert_eq!(audio.remote_rtcp, SocketAddr::new(LOCALHOST, 40005));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(
        ans.contains(&format!("m=audio {AUDIO_PORT} RTP/AVP 109\r\n")),
        "{ans}"
    );
    assert!(ans.contains("a=sendrecv"), "{ans}");
}

#[test]
fn g711_only_offer_gets_pcmu_in_the_offerers_order() {
    let (ans, plan) = answer(&baresip_offer(30000), &audio(true, true)).unwrap();
    assert_eq!(plan.audio.map(|a| a.codec), Some(Codec::Pcmu));
    assert!(
        ans.contains("RTP/AVP 0\r\n") && ans.contains("a=rtpmap:0 PCMU/8000"),
        "{ans}"
    );
    assert!(!ans.contains("telephone-event"), "{ans}");
    let pcma_first = baresip_offer(30000).replace("RTP/AVP 0 8 101", "RTP/AVP 8 0");
    let (_, plan) = answer(&pcma_first, &audio(true, true)).unwrap();
    assert_eq!(plan.audio.map(|a| a.codec), Some(Codec::Pcma));
}

#[test]
fn video_only_when_both_sides_do_video() {
    let o = session().offer(&audio_video());
    // Audio-only answerer: video refused with port 0, audio accepted.
    let (ans, plan) = answer(&o, &audio(true, true)).unwrap();
    assert!(plan.video.is_none() && plan.audio.is_some());
    assert!(ans.contains("m=video 0 RTP/AVP 96"), "{ans}");
    let back = negotiated_from_answer(&o, &ans).unwrap();
    assert!(back.video.is_none() && back.audio.is_some());
    // Video answerer: VP8 both ways.
    let (ans, plan) = answer(&o, &audio_video()).unwrap();
    assert_eq!(plan.video.as_ref().map(|p| p.codec), Some(Codec::Vp8));
    let back = negotiated_from_answer(&o, &ans).unwrap();
    assert_eq!(back.video.map(|p| p.remote_rtp.port()), Some(VIDEO_PORT));
    // Video offered without VP8 (H.264 only): refused.
    let h264 = o
        .replace("RTP/AVP 96", "RTP/AVP 97")
        .replace("a=rtpmap:96 VP8/90000", "a=rtpmap:97 H264/90000");
    let (_, plan) = answer(&h264, &audio_video()).unwrap();
    assert!(plan.video.is_none());
}

#[test]
fn directions_are_honoured() {
    for (offered, expected) in [
        ("sendrecv", Direction::SendRecv),
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
    ] {
        let o = baresip_offer(30000).replace("a=sendrecv", &format!("a={offered}"));
        let (ans, plan) = answer(&o, &audio(true, true)).unwrap();
        assert_eq!(
            plan.audio.as_ref().map(|a| a.direction),
            Some(expected),
            "{offered}"
        );
        assert!(
            ans.contains(&format!("a={}", expected.attribute())),
            "{ans}"
        );
        let back = negotiated_from_answer(&o, &ans).unwrap();
        let reversed = Direction::from_flags(expected.receives(), expected.sends());
        assert_eq!(back.audio.map(|a| a.direction), Some(reversed), "{offered}");
    }
    // Old-style hold: c=0.0.0.0 means nothing can be sent there.
    let hold = baresip_offer(30000).replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (_, plan) = answer(&hold, &audio(true, true)).unwrap();
    assert_eq!(plan.audio.map(|a| a.direction), Some(Direction::RecvOnly));
    // A talker with no microphone only receives.
    let (_, plan) = answer(&baresip_offer(30000), &audio(false, true)).unwrap();
    assert_eq!(plan.audio.map(|a| a.direction), Some(Direction::RecvOnly));
}

#[test]
fn control_leg_is_inactive_both_ways() {
    let o = session().inactive_offer();
    assert!(
        o.contains("m=audio 9 RTP/AVP 0 8") && o.contains("a=inactive"),
        "{o}"
    );
    assert!(o.contains("c=IN IP4 127.0.0.1"), "{o}");
    assert!(!offers_active_media(&o).unwrap());
    // Any offer, even one asking for active audio and video, is answered inactive.
    let active = session().offer(&audio_video());
    assert!(offers_active_media(&active).unwrap());
    let ans = inactive_answer(&active).unwrap();
    assert_eq!(ans.matches("a=inactive").count(), 2, "{ans}");
    assert!(
        !ans.contains("sendrecv") && !ans.contains("m=audio 0") && !ans.contains("m=video 0"),
        "{ans}"
    );
    assert!(!offers_active_media(&ans).unwrap());
    let plan = negotiated_from_answer(&active, &ans).unwrap();
    assert!(!plan.carries_media(), "{plan:?}");
    // Our inactive offer, answered inactive by another splitdial element, plans nothing.
    let ans = inactive_answer(&o).unwrap();
    assert!(ans.contains("m=audio 9 RTP/AVP 0\r\n"), "{ans}");
    assert!(!negotiated_from_answer(&o, &ans).unwrap().carries_media());
}

// ---------------------------------------------------------------- refused streams

/// RFC 3264 §6: a stream the offer refused (port 0) stays refused in the answer, with
/// port 0, whether we answer with media or inactive; the other streams are answered as
/// usual.
#[test]
fn an_offered_port_0_is_answered_with_port_0() {
    let offer = format!(
        "{}m=audio 30002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        baresip_offer(0)
    );
    let (ans, plan) = answer(&offer, &audio(true, true)).unwrap();
    let lines = m_lines(&ans);
    assert_eq!(lines.len(), 2, "{ans}");
    assert!(lines[0].starts_with("m=audio 0 RTP/AVP "), "{ans}");
    assert!(
        lines[1].starts_with(&format!("m=audio {AUDIO_PORT} RTP/AVP 0")),
        "{ans}"
    );
    assert_eq!(plan.audio.map(|a| a.remote_rtp.port()), Some(30002));

    let ans = inactive_answer(&offer).unwrap();
    let lines = m_lines(&ans);
    assert!(lines[0].starts_with("m=audio 0 RTP/AVP "), "{ans}");
    assert!(lines[1].starts_with("m=audio 9 RTP/AVP 0"), "{ans}");
    // The control leg's answer to an offer whose only stream is refused: refused too.
    assert!(
        m_lines(&inactive_answer(&baresip_offer(0)).unwrap())[0].starts_with("m=audio 0 "),
        "an inactive answer keeps the refused stream at 0"
    );
    // With media, an offer whose every stream is refused has nothing to accept.
    assert!(matches!(
        answer(&baresip_offer(0), &audio(true, true)),
        Err(SdpError::NoCommonCodec(_))
    ));
}

#[test]
fn an_unknown_media_line_is_refused_with_port_zero_and_the_call_goes_on() {
    // A desk phone offering content sharing (BFCP) next to its audio.
    let offer = format!(
        "{}m=application 5072 TCP/BFCP *\r\na=setup:actpass\r\na=connection:new\r\n",
        baresip_offer(30000)
    );
    let text = answer(&offer, &audio(true, true)).unwrap().0;
    let lines = m_lines(&text);
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("m=audio ") && !lines[0].starts_with("m=audio 0 "),
        "{text}"
    );
    assert!(lines[1].starts_with("m=application 0 TCP/BFCP "), "{text}");
}

// ---------------------------------------------------------------- one dialog's o= line

/// RFC 3264 §8: within a dialog every SDP we send keeps the session id of the first; the
/// version stays when what we send is unchanged and goes up by exactly one when it
/// changes. The control leg's sequence: our answer to the controller's offer, the same
/// re-offer (a refresh), a re-offer with video, a re-INVITE without an offer, and the
/// first offer again.
#[test]
fn a_dialogs_reoffers_keep_the_session_id_and_raise_the_version_only_on_change() {
    let controller = session().inactive_offer();
    let with_video = session().offer(&audio_video());
    let mut leg = session();
    let first = leg.inactive_answer(&controller).unwrap();
    let (id, version) = origin(&first);
    assert_eq!((id, version), (leg.session_id(), 1));
    let steps = [
        // (what we send, whether it differs from what we sent before it)
        (leg.inactive_answer(&controller).unwrap(), false),
        (leg.inactive_answer(&controller).unwrap(), false),
        (leg.inactive_answer(&with_video).unwrap(), true),
        (leg.inactive_answer(&with_video).unwrap(), false),
        (leg.inactive_offer(), true),
        (leg.inactive_offer(), false),
        (leg.inactive_answer(&controller).unwrap(), true),
    ];
    let mut last = (first, version);
    for (i, (sent, changed)) in steps.iter().enumerate() {
        assert_eq!(
            *changed,
            without_origin(sent) != without_origin(&last.0),
            "step {i}: the test's own expectation"
        );
        let (sent_id, sent_version) = origin(sent);
        assert_eq!(
            sent_id, id,
            "step {i}: the session id is the dialog's\n{sent}"
        );
        let expected = last.1 + u64::from(*changed);
        assert_eq!(sent_version, expected, "step {i}\n{}\nthen\n{sent}", last.0);
        last = (sent.clone(), sent_version);
    }
    assert_eq!(leg.version(), 4);
    // A refused offer sends nothing: the version stays.
    assert!(leg.inactive_answer("v=0\r\nm=audio banana\r\n").is_err());
    assert_eq!(leg.version(), 4);
    // Another dialog has its own session id (random: equal by chance once in 2^32).
    assert_ne!(origin(&session().inactive_offer()).0, id);
}

/// The same rules for a call with media: a referred call's offer, or an ordinary call's
/// answer, and any SDP sent after it in that dialog.
#[test]
fn a_calls_offer_and_answer_start_the_dialogs_versions() {
    let mut caller = session();
    let offer = caller.offer(&audio(true, true));
    assert_eq!(origin(&offer), (caller.session_id(), 1));
    assert_eq!(
        origin(&caller.offer(&audio(true, true))),
        (caller.session_id(), 1)
    );
    assert_eq!(
        origin(&caller.offer(&audio(false, true))),
        (caller.session_id(), 2)
    );
    let mut callee = session();
    let (ans, _) = callee.answer(&offer, &audio(true, true)).unwrap();
    assert_eq!(origin(&ans), (callee.session_id(), 1));
    let (again, _) = callee.answer(&offer, &audio(true, true)).unwrap();
    assert_eq!(again, ans, "an unchanged answer is the same text");
}

// ---------------------------------------------------------------- refusals

#[test]
fn no_common_codec_is_a_488_error() {
    let g722 = baresip_offer(30000)
        .replace("RTP/AVP 0 8 101", "RTP/AVP 9 101")
        .replace(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:9 G722/8000\r\n",
        );
    let err = answer(&g722, &audio(true, true)).unwrap_err();
    assert!(matches!(err, SdpError::NoCommonCodec(_)), "{err:?}");
    assert_eq!(err.sip_status(), 488);
    let srtp = baresip_offer(30000).replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        answer(&srtp, &audio(true, true)).unwrap_err().sip_status(),
        488
    );
}

#[test]
fn malformed_sdp_is_an_error() {
    for bad in [
        "",
        "hello",
        "v=1\r\nm=audio 1 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP4 not.an.ip\r\nm=audio 5000 RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP6 127.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n",
        "v=0\r\nm=audio 5000 RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP\r\n",
    ] {
        let err = answer(bad, &audio(true, true)).unwrap_err();
        assert!(
            matches!(err, SdpError::Malformed(_)),
            "{bad:?} gave {err:?}"
        );
        assert_eq!(err.sip_status(), 400);
        assert!(inactive_answer(bad).is_err(), "{bad:?}");
    }
    let o = baresip_offer(30000);
    assert!(matches!(
        negotiated_from_answer(
            &o,
            &session().inactive_offer().replace("m=audio", "m=video")
        ),
        Err(SdpError::AnswerMismatch(_))
    ));
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,600}") {
            sdp_offer::check(text.as_bytes());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            sdp_offer::check(&bytes);
        }

        #[test]
        fn mangled_offers_never_panic(cut in 0usize..400, junk in "[ -~\r\n]{0,40}", at in 0usize..400) {
            let mut o = baresip_offer(30000);
            let at = at.min(o.len());
            if o.is_char_boundary(at) {
                o.insert_str(at, &junk);
            }
            let cut = cut.min(o.len());
            let o = &o[..cut];
            if let Ok((ans, _)) = answer(o, &audio(true, true)) {
                prop_assert!(negotiated_from_answer(o, &ans).is_ok(), "own answer refused: {ans}");
            }
            sdp_offer::check(o.as_bytes());
        }

        /// Over any sequence of offers (valid, mangled or garbage) answered in one dialog,
        /// the session id never changes and the version rises by at most one per SDP sent.
        #[test]
        fn a_dialogs_origin_follows_the_rules_over_any_offers(
            offers in proptest::collection::vec(
                prop_oneof![
                    Just(baresip_offer(30000)),
                    Just(baresip_offer(0)),
                    Just(session().offer(&audio_video())),
                    "[ -~\r\n]{0,80}",
                ],
                1..12,
            ),
            inactive in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let mut leg = session();
            let mut sent: Option<(String, u64)> = None;
            for (offer, inactive) in offers.iter().zip(&inactive) {
                let written = if *inactive {
                    leg.inactive_answer(offer)
                } else {
                    leg.answer(offer, &audio_video()).map(|(text, _)| text)
                };
                let Ok(written) = written else { continue };
                let (id, version) = origin(&written);
                prop_assert_eq!(id, leg.session_id());
                prop_assert_eq!(version, leg.version());
                if let Some((before, before_version)) = &sent {
                    let changed = without_origin(&written) != without_origin(before);
                    prop_assert_eq!(version, before_version + u64::from(changed));
                } else {
                    prop_assert_eq!(version, 1);
                }
                sent = Some((written, version));
            }
        }
    }
}

/// The `sdp_offer` fuzz target's properties (`fuzz/properties/sdp_offer.rs`) over its seed
/// corpus, on stable in CI.
#[test]
fn the_fuzz_seeds_keep_the_fuzz_targets_properties() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sdp_offer");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        eprintln!("{}", path.display());
        sdp_offer::check(&std::fs::read(&path).unwrap());
        seen += 1;
    }
    assert!(seen >= 5, "seeds in {}", dir.display());
}
