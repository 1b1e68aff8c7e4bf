//! Media tests with real GStreamer on 127.0.0.1, in the worker's library: two sessions back to
//! back (random tones detected at the other side), video frames, and a three-leg conference.
//! (The SDP tests live with the SIP layer: `sip/tests/sdp.rs`.)
//! Pipelines run one test at a time (a shared lock): the machine has two busy cores.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use rand::Rng;
use splitdial_media::{
    AllocatedPorts, AudioSink, AudioSource, Codec, Direction, MediaSettings, MediaStats,
    Negotiated, VideoSink, VideoSource,
};
use splitdial_sip::sdp::{LocalMedia, SdpSession, negotiated_from_answer};
use talker_media::{Conference, MediaSession};

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
    let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(a, &a_ports));
    let (ans, b_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(b, &b_ports))
        .unwrap();
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
    testbed::wait_until(what, DETECT_WITHIN, || check().then_some(()))
        .unwrap_or_else(|e| panic!("{e}: {}", describe()));
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

/// A `beeps:` sender's bursts start on whole seconds of the wall clock, so how far past its
/// second each one is played at the other side is the mouth-to-ear latency.
#[test]
fn beeps_are_heard_a_mouth_to_ear_latency_past_each_second() {
    let _g = serial();
    let a = settings(
        AudioSource::Beeps {
            frequency_hz: 1000.0,
        },
        AudioSink::None,
    );
    let b = settings(AudioSource::None, AudioSink::Analyze);
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b, false);
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    let onsets = || {
        sb.stats()
            .sound
            .map(|s| s.onsets_past_second_ms)
            .unwrap_or_default()
    };
    let heard_by_then = |count: usize| {
        wait_until(
            &format!("{count} bursts heard"),
            || onsets().len() >= count,
            || format!("B {:?}", sb.stats()),
        );
        Instant::now()
    };
    // The first burst may be cut short by the sender's start, and the start may
    // break it up; from the third on they are whole, a second apart. So with one
    // onset per burst, the fifth comes two seconds after the third (less what
    // polling every 100 ms takes off).
    let third = heard_by_then(3);
    let fifth = heard_by_then(5);
    let heard = onsets();
    eprintln!("onsets past the second (ms): {heard:?}");
    assert!(
        fifth - third >= Duration::from_millis(1600),
        "two more onsets within {:?}, more than one per burst: {heard:?}",
        fifth - third
    );
    let heard = &heard[heard.len() - 3..];
    // Generous bounds (debug build, busy cores); the benchmarks report the real figure.
    assert!(
        heard.iter().all(|ms| (1.0..600.0).contains(ms)),
        "onsets past the second: {heard:?}"
    );
    let spread = heard.iter().copied().fold(f64::MIN, f64::max)
        - heard.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread < 150.0, "onsets past the second: {heard:?}");
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
    let (ans, b_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(&b, &b_ports))
        .unwrap();
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

/// A G.711-only offer as baresip 1.0 writes it.
fn baresip_offer(port: u16) -> String {
    format!(
        "v=0\r\no=- 1608235282 1608235282 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}
