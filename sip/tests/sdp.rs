//! SDP offer/answer tests (no media runs: the sessions are tested in `talker-media`), and
//! property tests that garbage never panics the parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use talker_agent::media::worker::MediaWorker;
use talker_agent::media::{
    AllocatedPorts, AudioSink, AudioSource, Codec, Direction, MediaSettings, RemoteSession,
    SdpError, VideoSink, VideoSource, answer, inactive_answer, inactive_offer,
    negotiated_from_answer, offer, offers_active_media,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn settings(source: AudioSource, sink: AudioSink) -> MediaSettings {
    let mut s = MediaSettings::new(LOCALHOST);
    s.audio_source = source;
    s.audio_sink = sink;
    s
}

fn tone(hz: f64) -> AudioSource {
    AudioSource::Tone { frequency_hz: hz }
}

// ---------------------------------------------------------------- SDP negotiation

fn baresip_offer(port: u16) -> String {
    format!(
        "v=0\r\no=- 1608235282 1608235282 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn video_settings() -> MediaSettings {
    let mut s = settings(tone(440.0), AudioSink::Analyze);
    s.video_source = Some(VideoSource::TestPattern);
    s.video_sink = VideoSink::Analyze;
    s
}

#[test]
fn offer_lists_opus_first_then_g711_and_video_only_when_asked() {
    let s = video_settings();
    let ports = AllocatedPorts::reserve(LOCALHOST, true).unwrap();
    let o = offer(&s, &ports, true).unwrap();
    assert!(
        o.contains(&format!("m=audio {} RTP/AVP 111 0 8", ports.audio_rtp)),
        "{o}"
    );
    assert!(o.contains("a=rtpmap:111 opus/48000/2"), "{o}");
    assert!(o.contains("c=IN IP4 127.0.0.1"), "{o}");
    assert!(
        o.contains(&format!("m=video {} RTP/AVP 96", ports.video_rtp.unwrap())),
        "{o}"
    );
    assert!(o.contains("a=rtpmap:96 VP8/90000"), "{o}");
    let audio_only = offer(&s, &ports, false).unwrap();
    assert!(!audio_only.contains("m=video"), "{audio_only}");
    let mut no_video = s;
    no_video.video_source = None;
    assert!(!offer(&no_video, &ports, true).unwrap().contains("m=video"));
}

#[test]
fn answer_prefers_opus_even_when_offered_last() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 0 109\r\na=rtpmap:109 OPUS/48000/2\r\na=rtcp:40005\r\n";
    let (ans, plan) = answer(o, &s, &ports).unwrap();
    let audio = plan.audio.unwrap();
    assert_eq!((audio.codec, audio.payload_type), (Codec::Opus, 109));
    assert_eq!(audio.remote_rtp, SocketAddr::new(LOCALHOST, 40000));
    assert_eq!(audio.remote_rtcp, SocketAddr::new(LOCALHOST, 40005));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(
        ans.contains(&format!("m=audio {} RTP/AVP 109\r\n", ports.audio_rtp)),
        "{ans}"
    );
    assert!(ans.contains("a=sendrecv"), "{ans}");
}

#[test]
fn g711_only_offer_gets_pcmu_in_the_offerers_order() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let (ans, plan) = answer(&baresip_offer(30000), &s, &ports).unwrap();
    assert_eq!(plan.audio.map(|a| a.codec), Some(Codec::Pcmu));
    assert!(
        ans.contains("RTP/AVP 0\r\n") && ans.contains("a=rtpmap:0 PCMU/8000"),
        "{ans}"
    );
    assert!(!ans.contains("telephone-event"), "{ans}");
    let pcma_first = baresip_offer(30000).replace("RTP/AVP 0 8 101", "RTP/AVP 8 0");
    let (_, plan) = answer(&pcma_first, &s, &ports).unwrap();
    assert_eq!(plan.audio.map(|a| a.codec), Some(Codec::Pcma));
}

#[test]
fn video_only_when_both_sides_do_video() {
    let v = video_settings();
    let v_ports = AllocatedPorts::reserve(LOCALHOST, true).unwrap();
    let o = offer(&v, &v_ports, true).unwrap();
    // Audio-only answerer: video refused with port 0, audio accepted.
    let audio_only = settings(tone(440.0), AudioSink::Analyze);
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let (ans, plan) = answer(&o, &audio_only, &a_ports).unwrap();
    assert!(plan.video.is_none() && plan.audio.is_some());
    assert!(ans.contains("m=video 0 RTP/AVP 96"), "{ans}");
    let back = negotiated_from_answer(&o, &ans).unwrap();
    assert!(back.video.is_none() && back.audio.is_some());
    // Video answerer: VP8 both ways.
    let w_ports = AllocatedPorts::reserve(LOCALHOST, true).unwrap();
    let (ans, plan) = answer(&o, &v, &w_ports).unwrap();
    assert_eq!(plan.video.as_ref().map(|p| p.codec), Some(Codec::Vp8));
    let back = negotiated_from_answer(&o, &ans).unwrap();
    assert_eq!(back.video.map(|p| p.remote_rtp.port()), w_ports.video_rtp);
    // Video offered without VP8 (H.264 only): refused.
    let h264 = o
        .replace("RTP/AVP 96", "RTP/AVP 97")
        .replace("a=rtpmap:96 VP8/90000", "a=rtpmap:97 H264/90000");
    let (_, plan) = answer(&h264, &v, &w_ports).unwrap();
    assert!(plan.video.is_none());
}

#[test]
fn directions_are_honoured() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    for (offered, expected) in [
        ("sendrecv", Direction::SendRecv),
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
    ] {
        let o = baresip_offer(30000).replace("a=sendrecv", &format!("a={offered}"));
        let (ans, plan) = answer(&o, &s, &ports).unwrap();
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
    let (_, plan) = answer(&hold, &s, &ports).unwrap();
    assert_eq!(plan.audio.map(|a| a.direction), Some(Direction::RecvOnly));
    // A talker with no microphone only receives.
    let mute = settings(AudioSource::None, AudioSink::Analyze);
    let (_, plan) = answer(&baresip_offer(30000), &mute, &ports).unwrap();
    assert_eq!(plan.audio.map(|a| a.direction), Some(Direction::RecvOnly));
}

#[test]
fn control_leg_is_inactive_both_ways() {
    let o = inactive_offer(LOCALHOST).unwrap();
    assert!(
        o.contains("m=audio 9 RTP/AVP 0 8") && o.contains("a=inactive"),
        "{o}"
    );
    assert!(o.contains("c=IN IP4 127.0.0.1"), "{o}");
    assert!(!offers_active_media(&o).unwrap());
    // Any offer, even one asking for active audio and video, is answered inactive.
    let v = video_settings();
    let ports = AllocatedPorts::reserve(LOCALHOST, true).unwrap();
    let active = offer(&v, &ports, true).unwrap();
    assert!(offers_active_media(&active).unwrap());
    let ans = inactive_answer(&active, LOCALHOST).unwrap();
    assert_eq!(ans.matches("a=inactive").count(), 2, "{ans}");
    assert!(
        !ans.contains("sendrecv") && !ans.contains("m=audio 0") && !ans.contains("m=video 0"),
        "{ans}"
    );
    assert!(!offers_active_media(&ans).unwrap());
    let plan = negotiated_from_answer(&active, &ans).unwrap();
    assert!(!plan.carries_media(), "{plan:?}");
    // The inactive plan starts nothing at all: not even the media worker.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = RemoteSession::start(&plan, &v, ports).await.unwrap();
        assert!(!MediaWorker::shared().is_running());
        let stats = session.stats().await.unwrap();
        assert_eq!(stats.audio.map(|a| a.packets_sent), Some(0));
        session.stop().await;
    });
    // A refused stream stays refused.
    let refused = baresip_offer(0);
    assert!(
        inactive_answer(&refused, LOCALHOST)
            .unwrap()
            .contains("m=audio 0 ")
    );
}

#[test]
fn no_common_codec_is_a_488_error() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let g722 = baresip_offer(30000)
        .replace("RTP/AVP 0 8 101", "RTP/AVP 9 101")
        .replace(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
            "a=rtpmap:9 G722/8000\r\n",
        );
    let err = answer(&g722, &s, &ports).unwrap_err();
    assert!(matches!(err, SdpError::NoCommonCodec(_)), "{err:?}");
    assert_eq!(err.sip_status(), 488);
    let srtp = baresip_offer(30000).replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(answer(&srtp, &s, &ports).unwrap_err().sip_status(), 488);
}

#[test]
fn malformed_sdp_is_an_error() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
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
        let err = answer(bad, &s, &ports).unwrap_err();
        assert!(
            matches!(err, SdpError::Malformed(_)),
            "{bad:?} gave {err:?}"
        );
        assert_eq!(err.sip_status(), 400);
        assert!(inactive_answer(bad, LOCALHOST).is_err(), "{bad:?}");
    }
    let o = baresip_offer(30000);
    assert!(matches!(
        negotiated_from_answer(
            &o,
            &inactive_offer(LOCALHOST)
                .unwrap()
                .replace("m=audio", "m=video")
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
                    let s = settings(tone(440.0), AudioSink::Analyze);
            let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
            let _ = answer(&text, &s, &ports);
            let _ = inactive_answer(&text, LOCALHOST);
            let _ = negotiated_from_answer(&text, &text);
            let _ = offers_active_media(&text);
        }

        #[test]
        fn mangled_offers_never_panic(cut in 0usize..400, junk in "[ -~\r\n]{0,40}", at in 0usize..400) {
                    let s = settings(tone(440.0), AudioSink::Analyze);
            let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
            let mut o = baresip_offer(30000);
            let at = at.min(o.len());
            if o.is_char_boundary(at) {
                o.insert_str(at, &junk);
            }
            let cut = cut.min(o.len());
            let o = &o[..cut];
            if let Ok((ans, _)) = answer(o, &s, &ports) {
                prop_assert!(negotiated_from_answer(o, &ans).is_ok(), "own answer refused: {ans}");
            }
            let _ = inactive_answer(o, LOCALHOST);
        }
    }
}

#[test]
fn an_unknown_media_line_is_refused_with_port_zero_and_the_call_goes_on() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    // A desk phone offering content sharing (BFCP) next to its audio.
    let offer = format!(
        "{}m=application 5072 TCP/BFCP *\r\na=setup:actpass\r\na=connection:new\r\n",
        baresip_offer(30000)
    );
    let text = answer(&offer, &s, &ports).unwrap().0;
    let m_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines.len(), 2, "{text}");
    assert!(
        m_lines[0].starts_with("m=audio ") && !m_lines[0].starts_with("m=audio 0 "),
        "{text}"
    );
    assert!(
        m_lines[1].starts_with("m=application 0 TCP/BFCP "),
        "{text}"
    );
}

/// The `sdp_offer` fuzz target's properties over its seed corpus, on stable in
/// CI: answering never panics, refuses only with a 4xx, and whatever we write
/// reads back (an inactive answer as wanting no media).
#[test]
fn the_fuzz_seeds_keep_the_fuzz_targets_properties() {
    let s = settings(tone(440.0), AudioSink::Analyze);
    let ports = AllocatedPorts::reserve(LOCALHOST, true).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sdp_offer");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        match answer(&text, &s, &ports) {
            Ok((written, _)) => {
                offers_active_media(&written).unwrap_or_else(|e| {
                    panic!("{}: our answer does not read back: {e:?}", path.display())
                });
            }
            Err(e) => assert!(
                (400..500).contains(&e.sip_status()),
                "{}: {e:?}",
                path.display()
            ),
        }
        if let Ok(written) = inactive_answer(&text, LOCALHOST) {
            assert_eq!(offers_active_media(&written).ok(), Some(false), "{written}");
        }
        seen += 1;
    }
    assert!(seen >= 5, "seeds in {}", dir.display());
}
