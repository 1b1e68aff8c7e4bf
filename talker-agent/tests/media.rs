//! Media tests with real GStreamer on 127.0.0.1: SDP negotiation, two sessions back to back
//! (random tones detected at the other side), video frames, and a three-leg conference.
//! Pipelines run one test at a time (a shared lock): the machine has two busy cores.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use rand::Rng;
use talker_agent::media::{
    AllocatedPorts, AudioSink, AudioSource, Codec, Conference, Direction, MediaSession,
    MediaSettings, MediaStats, Negotiated, SdpError, VideoSink, VideoSource, answer,
    inactive_answer, inactive_offer, negotiated_from_answer, offer, offers_active_media,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Generous: two busy cores, debug build.
const DETECT_WITHIN: Duration = Duration::from_secs(10);
const TOLERANCE_HZ: f64 = 5.0;

static SERIAL: Mutex<()> = Mutex::new(());
static ENV: Once = Once::new();

/// One test at a time, and a private GStreamer registry file for this run.
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ENV.call_once(|| {
        if std::env::var_os("GST_REGISTRY").is_none() {
            let path = std::env::temp_dir().join(format!(
                "splitdial-media-test-{}.registry",
                std::process::id()
            ));
            // SAFETY: set once, under the lock every test takes before touching GStreamer.
            unsafe { std::env::set_var("GST_REGISTRY", path) };
        }
        // Headless image: never let anything pick dfbvideosink (FACTS.md).
        unsafe { std::env::set_var("GST_PLUGIN_FEATURE_RANK", "dfbvideosink:NONE") };
    });
    guard
}

fn settings(source: AudioSource, sink: AudioSink) -> MediaSettings {
    let mut s = MediaSettings::new(LOCALHOST);
    s.audio_source = source;
    s.audio_sink = sink;
    s
}

fn tone(hz: f64) -> AudioSource {
    AudioSource::Tone { frequency_hz: hz }
}

/// Two distinct random frequencies, at least 150 Hz apart, drawn now.
fn random_tones<const N: usize>() -> [f64; N] {
    let mut rng = rand::rng();
    let mut out = [0.0; N];
    let mut i = 0;
    while i < N {
        let f = f64::from(rng.random_range(300u32..3000))
            + f64::from(rng.random_range(0u32..10)) / 10.0;
        if out[..i].iter().all(|o| (o - f).abs() > 150.0) {
            out[i] = f;
            i += 1;
        }
    }
    out
}

/// Offer from `a`, answer from `b`: both plans and both ports.
fn negotiate(
    a: &MediaSettings,
    b: &MediaSettings,
    video: bool,
) -> (Negotiated, AllocatedPorts, Negotiated, AllocatedPorts) {
    let a_ports = AllocatedPorts::reserve(LOCALHOST, video).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, video).unwrap();
    let o = offer(a, &a_ports, video).unwrap();
    let (ans, b_plan) = answer(&o, b, &b_ports).unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    (a_plan, a_ports, b_plan, b_ports)
}

fn hears(stats: &MediaStats, hz: f64) -> bool {
    stats.sound.as_ref().is_some_and(|s| {
        s.frequencies_hz
            .iter()
            .any(|f| (f - hz).abs() < TOLERANCE_HZ)
    })
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + DETECT_WITHIN;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} not reached within {DETECT_WITHIN:?}: {}",
        describe()
    );
}

#[test]
fn two_sessions_hear_each_others_random_tones() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let a = settings(tone(fa), AudioSink::Analyze);
    let b = settings(tone(fb), AudioSink::Analyze);
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b, false);
    assert_eq!(a_plan.audio.as_ref().map(|s| s.codec), Some(Codec::Opus));
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "each side hears the other's tone",
        || hears(&sa.stats(), fb) && hears(&sb.stats(), fa),
        || {
            format!(
                "sent {fa:.1}/{fb:.1} Hz; A {:?}; B {:?}",
                sa.stats(),
                sb.stats()
            )
        },
    );
    // Sound keeps flowing at the full rate (nothing dropped between jitter buffer and sink).
    let before = sb.stats().sound.unwrap().samples;
    std::thread::sleep(Duration::from_secs(1));
    let per_second = sb.stats().sound.unwrap().samples - before;
    assert!(
        (38_000..58_000).contains(&per_second),
        "{per_second} samples in 1 s at 48 kHz"
    );
    let (a_stats, b_stats) = (sa.stats(), sb.stats());
    for (s, own) in [(&a_stats, fa), (&b_stats, fb)] {
        assert!(!hears(s, own), "a side hears its own tone: {s:?}");
        let audio = s.audio.as_ref().unwrap();
        assert!(
            audio.packets_sent > 0 && audio.packets_received > 0,
            "{audio:?}"
        );
        let level = s.sound.as_ref().unwrap().level_dbfs;
        assert!((-30.0..-3.0).contains(&level), "level {level} dBFS");
        assert!(s.errors.is_empty(), "{:?}", s.errors);
    }
    sa.stop();
    sb.stop();
}

#[test]
fn no_media_before_start_and_none_after_stop() {
    let _g = serial();
    let [fa] = random_tones::<1>();
    let a = settings(tone(fa), AudioSink::None);
    let b = settings(AudioSource::None, AudioSink::Analyze);
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b, false);
    assert_eq!(
        a_plan.audio.as_ref().map(|s| s.direction),
        Some(Direction::SendOnly)
    );
    assert_eq!(
        b_plan.audio.as_ref().map(|s| s.direction),
        Some(Direction::RecvOnly)
    );
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    // A negotiated and holds its ports, but has not started: nothing may arrive.
    std::thread::sleep(Duration::from_millis(1500));
    let before = sb.stats();
    assert_eq!(
        before.audio.as_ref().unwrap().packets_received,
        0,
        "{before:?}"
    );
    assert_eq!(before.sound.as_ref().unwrap().samples, 0, "{before:?}");
    let sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "the tone arrives once started",
        || hears(&sb.stats(), fa),
        || format!("{:?}", sb.stats()),
    );
    sa.stop();
    std::thread::sleep(Duration::from_millis(500));
    let (packets, samples) = (
        sb.stats().audio.unwrap().packets_received,
        sb.stats().sound.unwrap().samples,
    );
    std::thread::sleep(Duration::from_millis(1000));
    // The peer's source may be dropped from rtpbin's table after its BYE (the count can fall),
    // but nothing new may arrive and nothing more may be played.
    let later = sb.stats();
    assert!(
        later.audio.as_ref().unwrap().packets_received <= packets,
        "packets after stop: {later:?}"
    );
    assert_eq!(
        later.sound.as_ref().unwrap().samples,
        samples,
        "sound after stop: {later:?}"
    );
    sb.stop();
}

#[test]
fn video_frames_of_640x480_arrive_both_ways() {
    let _g = serial();
    let mut a = settings(tone(440.0), AudioSink::None);
    a.video_source = Some(VideoSource::TestPattern);
    a.video_sink = VideoSink::Analyze;
    let b = a.clone();
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b, true);
    assert_eq!(
        b_plan.video.as_ref().map(|v| (v.codec, v.direction)),
        Some((Codec::Vp8, Direction::SendRecv))
    );
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    let enough = |s: &MediaStats| {
        s.picture
            .is_some_and(|p| p.frames >= 15 && p.width == 640 && p.height == 480)
    };
    wait_until(
        "640x480 frames at both sides",
        || enough(&sa.stats()) && enough(&sb.stats()),
        || format!("A {:?}; B {:?}", sa.stats(), sb.stats()),
    );
    assert!(sa.stats().video.unwrap().packets_received > 0);
    sa.stop();
    sb.stop();
}

#[test]
fn g711_call_with_a_baresip_style_offer_carries_tones() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let a = settings(tone(fa), AudioSink::Analyze);
    let b = settings(tone(fb), AudioSink::Analyze);
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    // A plays a plain G.711 phone: its offer lists PCMU, PCMA and telephone-event only.
    let o = baresip_offer(a_ports.audio_rtp);
    let (ans, b_plan) = answer(&o, &b, &b_ports).unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    assert_eq!(
        b_plan.audio.as_ref().map(|s| (s.codec, s.payload_type)),
        Some((Codec::Pcmu, 0))
    );
    assert_eq!(a_plan.audio.as_ref().map(|s| s.codec), Some(Codec::Pcmu));
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "G.711 tones both ways",
        || hears(&sa.stats(), fb) && hears(&sb.stats(), fa),
        || {
            format!(
                "sent {fa:.1}/{fb:.1}; A {:?}; B {:?}",
                sa.stats(),
                sb.stats()
            )
        },
    );
    assert_eq!(sb.stats().sound.unwrap().sample_rate, 8000);
    sa.stop();
    sb.stop();
}

#[test]
fn three_leg_conference_each_party_hears_both_others() {
    let _g = serial();
    let [fh, f1, f2] = random_tones::<3>();
    let host = settings(tone(fh), AudioSink::Analyze);
    let p1 = settings(tone(f1), AudioSink::Analyze);
    let p2 = settings(tone(f2), AudioSink::Analyze);
    let mut conference = Conference::new(&host).unwrap();
    let mut parties = Vec::new();
    let mut legs = Vec::new();
    for p in [&p1, &p2] {
        let (h_plan, h_ports, p_plan, p_ports) = negotiate(&host, p, false);
        parties.push(MediaSession::start(&p_plan, p, p_ports).unwrap());
        legs.push(conference.add_leg(&h_plan, h_ports).unwrap());
    }
    wait_until(
        "every party hears both others",
        || {
            let c = conference.stats();
            hears(&parties[0].stats(), fh)
                && hears(&parties[0].stats(), f2)
                && hears(&parties[1].stats(), fh)
                && hears(&parties[1].stats(), f1)
                && hears(&c.local, f1)
                && hears(&c.local, f2)
        },
        || {
            format!(
                "host {fh:.1}, p1 {f1:.1}, p2 {f2:.1}; p1 {:?}; p2 {:?}; conference {:?}",
                parties[0].stats().sound,
                parties[1].stats().sound,
                conference.stats()
            )
        },
    );
    // Mix-minus: nobody hears themselves.
    assert!(!hears(&parties[0].stats(), f1));
    assert!(!hears(&parties[1].stats(), f2));
    assert_eq!(conference.stats().legs.len(), 2);
    // Removing a leg: the remaining party no longer hears it.
    conference.remove_leg(legs[1]).unwrap();
    let gone = parties.pop().unwrap();
    gone.stop();
    wait_until(
        "the removed party fades out of the mix",
        || !hears(&parties[0].stats(), f2) && hears(&parties[0].stats(), fh),
        || format!("{:?}", parties[0].stats().sound),
    );
    assert!(conference.remove_leg(legs[1]).is_err());
    conference.stop();
    for p in parties {
        p.stop();
    }
}

/// The party's RTP is already arriving when its conference leg starts (a plain
/// call moving into a conference): the leg must come up receiving, every time.
#[test]
fn a_leg_started_under_steady_inbound_rtp_is_heard_every_time() {
    let _g = serial();
    let [fh, f1] = random_tones::<2>();
    let host = settings(tone(fh), AudioSink::Analyze);
    let p1 = settings(tone(f1), AudioSink::Analyze);
    let mut conference = Conference::new(&host).unwrap();
    for round in 1..=4 {
        let (h_plan, h_ports, p_plan, p_ports) = negotiate(&host, &p1, false);
        let party = MediaSession::start(&p_plan, &p1, p_ports).unwrap();
        // Let its packets pile up at the leg's socket before the leg exists.
        std::thread::sleep(Duration::from_millis(300));
        let leg = conference.add_leg(&h_plan, h_ports).unwrap();
        wait_until(
            &format!("round {round}: the leg hears the party and the party the host"),
            || hears(&conference.stats().local, f1) && hears(&party.stats(), fh),
            || {
                format!(
                    "host {fh:.1}, party {f1:.1}; party {:?}; conference {:?}",
                    party.stats().sound,
                    conference.stats()
                )
            },
        );
        conference.remove_leg(leg).unwrap();
        party.stop();
        wait_until(
            &format!("round {round}: the party fades out"),
            || !hears(&conference.stats().local, f1),
            || format!("{:?}", conference.stats().local.sound),
        );
    }
    conference.stop();
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
    let _g = serial();
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
    let _g = serial();
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
    let _g = serial();
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
    let _g = serial();
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
    let _g = serial();
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
    let _g = serial();
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
    // The inactive plan starts nothing at all.
    let session = MediaSession::start(&plan, &v, ports).unwrap();
    assert_eq!(session.stats().audio.map(|a| a.packets_sent), Some(0));
    session.stop();
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
    let _g = serial();
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
    let _g = serial();
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
            let _g = serial();
            let s = settings(tone(440.0), AudioSink::Analyze);
            let ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
            let _ = answer(&text, &s, &ports);
            let _ = inactive_answer(&text, LOCALHOST);
            let _ = negotiated_from_answer(&text, &text);
            let _ = offers_active_media(&text);
        }

        #[test]
        fn mangled_offers_never_panic(cut in 0usize..400, junk in "[ -~\r\n]{0,40}", at in 0usize..400) {
            let _g = serial();
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
