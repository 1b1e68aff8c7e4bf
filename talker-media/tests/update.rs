//! A running call's media following a new offer/answer, with real GStreamer on 127.0.0.1:
//! hold and resume stop and start sending at the network, a move sends to the new address
//! and stops playing the old one, a codec change keeps the tone, a held conference leg
//! leaves the others' mix alone, and an update that fails leaves the media running.
//! Pipelines run one test at a time (a shared lock): the machine has two busy cores.
//! The tests print what each update cost (docs/media.md, "Updates").
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use rand::Rng;
use splitdial_media::{
    AllocatedPorts, AudioSink, AudioSource, Codec, Direction, MediaSettings, MediaStats,
    Negotiated, PortNumbers,
};
use splitdial_sip::sdp::{LocalMedia, SdpSession, negotiated_from_answer};
use talker_media::{Conference, MediaSession};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Generous: two busy cores, debug build.
const DETECT_WITHIN: Duration = Duration::from_secs(10);
const TOLERANCE_HZ: f64 = 5.0;
/// How long "nothing arrives" is watched.
const QUIET_FOR: Duration = Duration::from_millis(1100);

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
                "splitdial-media-update-test-{}.registry",
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

fn talker(hz: f64) -> MediaSettings {
    let mut s = MediaSettings::new(LOCALHOST);
    s.audio_source = AudioSource::Tone { frequency_hz: hz };
    s.audio_sink = AudioSink::Analyze;
    s
}

/// Distinct random frequencies, at least 150 Hz apart.
fn random_tones<const N: usize>() -> [f64; N] {
    let mut rng = rand::rng();
    let mut out = [0.0; N];
    let mut i = 0;
    while i < N {
        let f = f64::from(rng.random_range(300u32..3000));
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
) -> (Negotiated, AllocatedPorts, Negotiated, AllocatedPorts) {
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let (a_plan, b_plan) = answer_from(a, &a_ports, b, &b_ports);
    (a_plan, a_ports, b_plan, b_ports)
}

/// The plans of an offer from `a` on `a_ports` answered by `b` on `b_ports`.
fn answer_from(
    a: &MediaSettings,
    a_ports: &AllocatedPorts,
    b: &MediaSettings,
    b_ports: &AllocatedPorts,
) -> (Negotiated, Negotiated) {
    let o = SdpSession::new(LOCALHOST).offer(&LocalMedia::for_call(a, a_ports));
    let (ans, b_plan) = SdpSession::new(LOCALHOST)
        .answer(&o, &LocalMedia::for_call(b, b_ports))
        .unwrap();
    (negotiated_from_answer(&o, &ans).unwrap(), b_plan)
}

/// `plan` with its audio stream changed by `change`.
fn with_audio(
    plan: &Negotiated,
    change: impl FnOnce(&mut splitdial_media::StreamPlan),
) -> Negotiated {
    let mut plan = plan.clone();
    change(plan.audio.as_mut().unwrap());
    plan
}

fn hears(stats: &MediaStats, hz: f64) -> bool {
    stats.sound.as_ref().is_some_and(|s| {
        s.frequencies_hz
            .iter()
            .any(|f| (f - hz).abs() < TOLERANCE_HZ)
    })
}

fn samples(stats: &MediaStats) -> u64 {
    stats.sound.as_ref().map_or(0, |s| s.samples)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool, describe: impl Fn() -> String) {
    testbed::wait_until(what, DETECT_WITHIN, || check().then_some(()))
        .unwrap_or_else(|e| panic!("{e}: {}", describe()));
}

/// A peer's RTP socket that only counts what reaches it (and an RTCP socket beside it that
/// nobody reads).
struct PacketCounter {
    rtp: SocketAddr,
    rtcp: SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _rtcp: UdpSocket,
}

impl PacketCounter {
    fn start() -> Self {
        let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let rtcp_socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (arrivals, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (noted, stopping) = (arrivals.clone(), stop.clone());
        let rtp = socket.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while !stopping.load(Ordering::Relaxed) {
                if socket.recv(&mut buffer).is_ok() {
                    noted.lock().unwrap().push(Instant::now());
                }
            }
        });
        Self {
            rtp,
            rtcp: rtcp_socket.local_addr().unwrap(),
            arrivals,
            stop,
            thread: Some(thread),
            _rtcp: rtcp_socket,
        }
    }

    /// Packets that arrived after `since`.
    fn since(&self, since: Instant) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t > since)
            .count()
    }

    /// When the first packet after `since` arrived.
    fn first_since(&self, since: Instant) -> Option<Instant> {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .find(|t| **t > since)
            .copied()
    }

    /// `plan` sending its audio here.
    fn target_of(&self, plan: &Negotiated) -> Negotiated {
        with_audio(plan, |a| {
            a.remote_rtp = self.rtp;
            a.remote_rtcp = self.rtcp;
        })
    }
}

impl Drop for PacketCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// After an update that stops sending returned at `done`: nothing reaches `peer` for over a
/// second (a packet already on its way may land within 50 ms).
fn assert_quiet(peer: &PacketCounter, done: Instant, what: &str) {
    std::thread::sleep(QUIET_FOR);
    let late = peer.since(done + Duration::from_millis(50));
    assert_eq!(late, 0, "{late} packets reached the peer {what}");
}

/// Sound keeps arriving at `session`'s sink, and it is `hz`.
fn keeps_hearing(session: &MediaSession, hz: f64, what: &str) {
    let before = samples(&session.stats());
    wait_until(
        what,
        || {
            let s = session.stats();
            samples(&s) > before + 4800 && hears(&s, hz)
        },
        || format!("{:?}", session.stats()),
    );
}

/// Nothing more is played at `session`'s sink over a second.
fn plays_nothing(session: &MediaSession, what: &str) {
    // The update is in place; give a buffer in flight time to reach the sink.
    std::thread::sleep(Duration::from_millis(200));
    let before = samples(&session.stats());
    std::thread::sleep(Duration::from_secs(1));
    let after = samples(&session.stats());
    assert_eq!(after, before, "sound played {what}");
}

#[test]
fn hold_and_resume_stop_and_restart_sending_at_the_network() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let (a, b) = (talker(fa), talker(fb));
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b);
    // A sends to a socket that counts; B sends its tone to A all along.
    let peer = PacketCounter::start();
    let a_plan = peer.target_of(&a_plan);
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let mut sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    let started = Instant::now();
    wait_until(
        "A sends and hears B",
        || peer.since(started) > 0 && hears(&sa.stats(), fb),
        || format!("A {:?}", sa.stats()),
    );
    let mut sent_before = 0;
    let mut was_sending = true;
    for direction in [
        Direction::RecvOnly,
        Direction::Inactive,
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::SendRecv,
    ] {
        let plan = with_audio(&a_plan, |s| s.direction = direction);
        let asked = Instant::now();
        sa.update(&plan).unwrap();
        let done = Instant::now();
        let stats = sa.stats();
        assert_eq!(stats.audio.as_ref().map(|s| s.direction), Some(direction));
        if direction.sends() {
            wait_until(
                &format!("packets reach the peer again once {direction:?}"),
                || peer.since(done).min(1) > 0,
                || format!("A {:?}", sa.stats()),
            );
            let first = peer.first_since(asked).unwrap();
            if !was_sending {
                eprintln!(
                    "{direction:?} after a hold: update {:?}, first packet {:?} after the request",
                    done - asked,
                    first - asked
                );
            }
        } else {
            assert_quiet(&peer, done, &format!("while {direction:?}"));
            eprintln!("{direction:?}: update {:?}", done - asked);
        }
        if direction.receives() {
            keeps_hearing(&sa, fb, &format!("A keeps hearing B while {direction:?}"));
        } else {
            plays_nothing(&sa, &format!("while {direction:?}"));
        }
        was_sending = direction.sends();
        // The counters carry on across pipelines.
        let sent = sa.stats().audio.unwrap().packets_sent;
        assert!(sent >= sent_before, "{sent} < {sent_before}");
        sent_before = sent;
    }
    // Some 3 s of sending at 50 packets a second, counted across five pipelines.
    assert!(sent_before > 80, "{sent_before} packets counted in all");
    assert!(sa.stats().errors.is_empty(), "{:?}", sa.stats().errors);
    sa.stop();
    sb.stop();
}

#[test]
fn a_move_sends_to_the_new_address_and_plays_only_the_new_peer() {
    let _g = serial();
    let [fa, f1, f2] = random_tones::<3>();
    let (a, b1, b2) = (talker(fa), talker(f1), talker(f2));
    let (a_plan, a_ports, b1_plan, b1_ports) = negotiate(&a, &b1);
    let s1 = MediaSession::start(&b1_plan, &b1, b1_ports).unwrap();
    let mut sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "A and B1 hear each other",
        || hears(&sa.stats(), f1) && hears(&s1.stats(), fa),
        || format!("A {:?}; B1 {:?}", sa.stats(), s1.stats()),
    );
    // A's peer moves: the same call now goes to B2's address (B1 keeps sending to A).
    let b2_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let moved = with_audio(&a_plan, |s| {
        s.remote_rtp = SocketAddr::new(LOCALHOST, b2_ports.audio_rtp);
        s.remote_rtcp = SocketAddr::new(LOCALHOST, b2_ports.audio_rtp + 1);
    });
    // B2 sends to A as B1 does.
    let b2_plan = b1_plan.clone();
    let s2 = MediaSession::start(&b2_plan, &b2, b2_ports).unwrap();
    let asked = Instant::now();
    sa.update(&moved).unwrap();
    eprintln!("move: update {:?}", asked.elapsed());
    wait_until(
        "B2 hears A and A hears B2, not B1",
        || hears(&s2.stats(), fa) && hears(&sa.stats(), f2) && !hears(&sa.stats(), f1),
        || format!("A {:?}; B2 {:?}", sa.stats(), s2.stats()),
    );
    // Nothing reaches B1 any more.
    let old = s1.stats().audio.unwrap().packets_received;
    std::thread::sleep(QUIET_FOR);
    let later = s1.stats().audio.unwrap().packets_received;
    assert!(later <= old, "B1 still receives: {old} -> {later}");
    // A new stream from the old address (a new SSRC, after B2's) is not played either:
    // without the filter it would take the sink over.
    s1.stop();
    let old_address = PortNumbers {
        local_ip: LOCALHOST,
        audio_rtp: a_plan.audio.as_ref().unwrap().remote_rtp.port(),
        video_rtp: None,
    };
    let s1 = MediaSession::start(&b1_plan, &b1, old_address.bind().unwrap()).unwrap();
    wait_until(
        "the old address sends again",
        || s1.stats().audio.unwrap().packets_sent > 25,
        || format!("B1 {:?}", s1.stats()),
    );
    std::thread::sleep(Duration::from_millis(300));
    let stats = sa.stats();
    assert!(
        hears(&stats, f2) && !hears(&stats, f1),
        "A plays the old address: {stats:?}"
    );
    // And a move to a counting socket: the time to the first packet there.
    let peer = PacketCounter::start();
    let asked = Instant::now();
    sa.update(&peer.target_of(&moved)).unwrap();
    let done = Instant::now();
    wait_until(
        "packets at the new address",
        || peer.since(asked) > 0,
        || format!("A {:?}", sa.stats()),
    );
    eprintln!(
        "move to a new address: update {:?}, first packet there {:?} after the request",
        done - asked,
        peer.first_since(asked).unwrap() - asked
    );
    let old = s2.stats().audio.unwrap().packets_received;
    std::thread::sleep(QUIET_FOR);
    assert!(
        s2.stats().audio.unwrap().packets_received <= old,
        "B2 still receives"
    );
    sa.stop();
    s1.stop();
    s2.stop();
}

#[test]
fn a_codec_change_keeps_the_tone_at_its_frequency() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let (a, b) = (talker(fa), talker(fb));
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b);
    assert_eq!(a_plan.audio.as_ref().map(|s| s.codec), Some(Codec::Opus));
    let mut sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let mut sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "both hear each other over Opus",
        || hears(&sa.stats(), fb) && hears(&sb.stats(), fa),
        || format!("A {:?}; B {:?}", sa.stats(), sb.stats()),
    );
    for (codec, pt, rate) in [(Codec::Pcmu, 0, 8000), (Codec::Opus, 111, 48_000)] {
        let to = |plan: &Negotiated| {
            with_audio(plan, |s| {
                s.codec = codec;
                s.payload_type = pt;
            })
        };
        // The far end re-offers: both sides move to the new codec.
        let asked = Instant::now();
        sb.update(&to(&b_plan)).unwrap();
        sa.update(&to(&a_plan)).unwrap();
        let done = Instant::now();
        wait_until(
            &format!("the tones heard over {codec}"),
            || {
                let (at_a, at_b) = (sa.stats(), sb.stats());
                hears(&at_a, fb)
                    && hears(&at_b, fa)
                    && at_b.sound.as_ref().is_some_and(|s| s.sample_rate == rate)
            },
            || format!("A {:?}; B {:?}", sa.stats(), sb.stats()),
        );
        eprintln!(
            "codec change to {codec}: both updates {:?}, tone heard {:?} after the request",
            done - asked,
            asked.elapsed()
        );
        for stats in [sa.stats(), sb.stats()] {
            assert_eq!(stats.audio.as_ref().map(|s| s.codec), Some(codec));
            assert!(stats.errors.is_empty(), "{:?}", stats.errors);
        }
    }
    sa.stop();
    sb.stop();
}

#[test]
fn a_held_conference_leg_leaves_the_other_leg_hearing_the_mix() {
    let _g = serial();
    let [fh, f1, f2] = random_tones::<3>();
    let (host, p1, p2) = (talker(fh), talker(f1), talker(f2));
    let mut conference = Conference::new(&host).unwrap();
    let mut parties = Vec::new();
    let mut legs = Vec::new();
    for p in [&p1, &p2] {
        let (h_plan, h_ports, p_plan, p_ports) = negotiate(&host, p);
        parties.push(MediaSession::start(&p_plan, p, p_ports).unwrap());
        legs.push((conference.add_leg(&h_plan, h_ports).unwrap(), h_plan));
    }
    let everyone_hears_everyone = |conference: &Conference, parties: &[MediaSession]| {
        hears(&parties[0].stats(), fh)
            && hears(&parties[0].stats(), f2)
            && hears(&parties[1].stats(), fh)
            && hears(&parties[1].stats(), f1)
            && hears(&conference.stats().local, f1)
    };
    wait_until(
        "every party hears both others",
        || everyone_hears_everyone(&conference, &parties),
        || format!("{:?}", conference.stats()),
    );
    let (leg1, plan1) = legs[0].clone();
    let received = |p: &MediaSession| p.stats().audio.unwrap().packets_received;
    // Party 1 puts us on hold: we only receive from it.
    conference
        .update_leg(
            leg1,
            &with_audio(&plan1, |s| s.direction = Direction::RecvOnly),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = received(&parties[0]);
    std::thread::sleep(QUIET_FOR);
    assert!(
        received(&parties[0]) <= before,
        "party 1 still receives while held"
    );
    let leg_stats = &conference.stats().legs;
    let held = leg_stats.iter().find(|(id, _)| *id == leg1).unwrap();
    assert_eq!(
        held.1.audio.as_ref().map(|s| s.direction),
        Some(Direction::RecvOnly)
    );
    wait_until(
        "party 2 still hears the host and the held party",
        || hears(&parties[1].stats(), fh) && hears(&parties[1].stats(), f1),
        || format!("{:?}", parties[1].stats().sound),
    );
    // Inactive: party 1 drops out of the mix.
    conference
        .update_leg(
            leg1,
            &with_audio(&plan1, |s| s.direction = Direction::Inactive),
        )
        .unwrap();
    wait_until(
        "party 2 no longer hears party 1",
        || !hears(&parties[1].stats(), f1) && hears(&parties[1].stats(), fh),
        || format!("{:?}", parties[1].stats().sound),
    );
    // Resumed: all hear each other again.
    conference.update_leg(leg1, &plan1).unwrap();
    wait_until(
        "every party hears both others after the resume",
        || everyone_hears_everyone(&conference, &parties),
        || format!("{:?}", conference.stats()),
    );
    conference.stop();
    for p in parties {
        p.stop();
    }
}

#[test]
fn an_update_that_fails_leaves_the_media_running() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let (a, b) = (talker(fa), talker(fb));
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b);
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let mut sa = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    wait_until(
        "both hear each other",
        || hears(&sa.stats(), fb) && hears(&sb.stats(), fa),
        || format!("A {:?}; B {:?}", sa.stats(), sb.stats()),
    );
    // Video without video ports, and a video codec on the audio stream: neither can run.
    let mut with_video = a_plan.clone();
    with_video.video = a_plan.audio.clone().map(|mut v| {
        v.codec = Codec::Vp8;
        v.payload_type = 96;
        v
    });
    let vp8_audio = with_audio(&a_plan, |s| s.codec = Codec::Vp8);
    for broken in [&with_video, &vp8_audio] {
        assert!(sa.update(broken).is_err(), "{broken:?} accepted");
        assert_eq!(sa.plan(), &a_plan);
        keeps_hearing(&sa, fb, "A still hears B");
        keeps_hearing(&sb, fa, "B still hears A");
    }
    // The same for a conference leg.
    let mut conference = Conference::new(&a).unwrap();
    let (h_plan, h_ports, p_plan, p_ports) = negotiate(&a, &b);
    let party = MediaSession::start(&p_plan, &b, p_ports).unwrap();
    let leg = conference.add_leg(&h_plan, h_ports).unwrap();
    assert!(
        conference
            .update_leg(leg, &with_audio(&h_plan, |s| s.codec = Codec::Vp8))
            .is_err()
    );
    assert!(conference.update_leg(leg + 1, &h_plan).is_err());
    assert!(conference.update_leg(leg, &Negotiated::default()).is_err());
    keeps_hearing(&party, fa, "the party still hears the mix");
    wait_until(
        "the mix still hears the party",
        || hears(&conference.stats().local, fb),
        || format!("{:?}", conference.stats()),
    );
    conference.stop();
    party.stop();
    sa.stop();
    sb.stop();
}

/// A plan that is built but cannot start (here: playing into a file that cannot be created,
/// which a send-only plan never opened) brings the previous plan back on the same sockets.
#[test]
fn an_update_that_cannot_start_brings_the_previous_plan_back() {
    let _g = serial();
    let [fa, fb] = random_tones::<2>();
    let mut a = talker(fa);
    a.audio_sink = AudioSink::File("/nonexistent-splitdial-dir/heard.wav".into());
    let b = talker(fb);
    let (a_plan, a_ports, b_plan, b_ports) = negotiate(&a, &b);
    let send_only = with_audio(&a_plan, |s| s.direction = Direction::SendOnly);
    let sb = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let mut sa = MediaSession::start(&send_only, &a, a_ports).unwrap();
    keeps_hearing(&sb, fa, "B hears A's send-only stream");
    let sent = sa.stats().audio.unwrap().packets_sent;
    let refused = sa.update(&a_plan).expect_err("the file sink cannot open");
    assert!(
        refused.to_string().contains("the previous plan runs again"),
        "{refused}"
    );
    assert_eq!(sa.plan(), &send_only);
    keeps_hearing(&sb, fa, "B hears A again after the failed update");
    let stats = sa.stats();
    assert_eq!(
        stats.audio.as_ref().map(|s| s.direction),
        Some(Direction::SendOnly)
    );
    assert!(
        stats.audio.unwrap().packets_sent > sent,
        "counters carried on"
    );
    sa.stop();
    sb.stop();
}
