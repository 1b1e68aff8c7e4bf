//! Media benchmarks (harness = false), all on 127.0.0.1:
//! 1. mouth-to-ear latency: a muted tone is unmuted at the sender (t0) and the receiver's
//!    `analyze` sink, which renders in sync like a speaker, notes the onset; LAN settings vs
//!    GStreamer's defaults;
//! 2. CPU and RSS of one talker in a two-way call (audio; audio + VP8 640x480@30), the peer
//!    running in a second process of this same binary.
//!
//! Run: `cargo bench -p talker-media --bench media` (inside a loopback-only namespace).
#![allow(
    missing_docs,
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use splitdial_media::{
    AllocatedPorts, AudioSink, AudioSource, MediaSettings, VideoSink, VideoSource,
};
use talker_agent::media::{answer, negotiated_from_answer, offer};
use talker_media::MediaSession;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LATENCY_TRIALS: usize = 15;
const CPU_WINDOW: Duration = Duration::from_secs(10);

fn settings(video: bool, lan: bool) -> MediaSettings {
    let mut s = MediaSettings::new(LOCALHOST);
    s.audio_source = AudioSource::Tone {
        frequency_hz: 1000.0,
    };
    s.audio_sink = AudioSink::Analyze;
    if video {
        s.video_source = Some(VideoSource::TestPattern);
        s.video_sink = VideoSink::Analyze;
    }
    if lan { s } else { s.with_gstreamer_defaults() }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Mouth-to-ear latency in ms over several onsets.
fn latency(lan: bool) -> Vec<f64> {
    let a = settings(false, lan);
    let mut b = settings(false, lan);
    b.audio_source = AudioSource::None;
    let a_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let b_ports = AllocatedPorts::reserve(LOCALHOST, false).unwrap();
    let o = offer(&a, &a_ports, false).unwrap();
    let (ans, b_plan) = answer(&o, &b, &b_ports).unwrap();
    let a_plan = negotiated_from_answer(&o, &ans).unwrap();
    let receiver = MediaSession::start(&b_plan, &b, b_ports).unwrap();
    let sender = MediaSession::start(&a_plan, &a, a_ports).unwrap();
    sender.set_muted(true);
    std::thread::sleep(Duration::from_millis(1500));
    let mut out = Vec::new();
    for _ in 0..LATENCY_TRIALS {
        let t0 = Instant::now();
        sender.set_muted(false);
        let deadline = t0 + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(onset) = receiver.sound_onset().filter(|o| *o > t0) {
                out.push(onset.duration_since(t0).as_secs_f64() * 1000.0);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sender.set_muted(true);
        std::thread::sleep(Duration::from_millis(600));
    }
    sender.stop();
    receiver.stop();
    out.sort_by(f64::total_cmp);
    out
}

/// (utime + stime in seconds, RSS in KiB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss)
}

/// How a measured call is set up: the receiving sink and the Opus frame size.
#[derive(Clone, Copy)]
struct CallSetup {
    video: bool,
    /// `true`: the test analyser (an FFT per buffer); `false`: a playback sink
    /// paced like a device (headless: `fakesink sync=true`), as a real call has.
    analyze: bool,
    opus_frame_ms: u32,
}

fn call_settings(setup: CallSetup) -> MediaSettings {
    let mut s = settings(setup.video, true);
    if !setup.analyze {
        s.audio_sink = AudioSink::Auto;
    }
    s.opus_frame_ms = setup.opus_frame_ms;
    s
}

/// The peer side, in a child process: answers the offer from the environment, prints the
/// answer on one line, runs until stdin closes.
fn peer() {
    let setup = CallSetup {
        video: std::env::var("MEDIA_BENCH_VIDEO").is_ok_and(|v| v == "1"),
        analyze: std::env::var("MEDIA_BENCH_ANALYZE").is_ok_and(|v| v == "1"),
        opus_frame_ms: std::env::var("MEDIA_BENCH_FRAME_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    };
    let video = setup.video;
    let o = std::env::var("MEDIA_BENCH_OFFER")
        .unwrap()
        .replace('|', "\r\n");
    let s = call_settings(setup);
    let ports = AllocatedPorts::reserve(LOCALHOST, video).unwrap();
    let (ans, plan) = answer(&o, &s, &ports).unwrap();
    let session = MediaSession::start(&plan, &s, ports).unwrap();
    println!("ANSWER {}", ans.replace("\r\n", "|"));
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    session.stop();
}

/// CPU (% of one core) and RSS (MiB) of this talker and of its peer process during a call.
fn call_cost(setup: CallSetup) -> ((f64, f64), (f64, f64)) {
    let video = setup.video;
    let s = call_settings(setup);
    let ports = AllocatedPorts::reserve(LOCALHOST, video).unwrap();
    let o = offer(&s, &ports, video).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--peer")
        .env("MEDIA_BENCH_OFFER", o.replace("\r\n", "|"))
        .env("MEDIA_BENCH_VIDEO", if video { "1" } else { "0" })
        .env("MEDIA_BENCH_ANALYZE", if setup.analyze { "1" } else { "0" })
        .env("MEDIA_BENCH_FRAME_MS", setup.opus_frame_ms.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ans = line
        .trim()
        .strip_prefix("ANSWER ")
        .unwrap()
        .replace('|', "\r\n");
    let plan = negotiated_from_answer(&o, &ans).unwrap();
    let session = MediaSession::start(&plan, &s, ports).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let me = std::process::id();
    let (c0, _) = usage(me);
    let (p0, _) = usage(child.id());
    let t0 = Instant::now();
    std::thread::sleep(CPU_WINDOW);
    let elapsed = t0.elapsed().as_secs_f64();
    let (c1, rss) = usage(me);
    let (p1, peer_rss) = usage(child.id());
    let stats = session.stats();
    if setup.analyze {
        assert!(
            stats
                .sound
                .as_ref()
                .is_some_and(|s| s.dominant_frequency_hz.is_some()),
            "no audio: {stats:?}"
        );
    } else {
        assert!(
            stats
                .audio
                .as_ref()
                .is_some_and(|a| a.packets_received > 100),
            "no audio: {stats:?}"
        );
    }
    if video {
        assert!(
            stats.picture.is_some_and(|p| p.frames > 100),
            "no video: {stats:?}"
        );
    }
    session.stop();
    drop(child.stdin.take());
    let _ = child.wait();
    (
        ((c1 - c0) / elapsed * 100.0, rss as f64 / 1024.0),
        ((p1 - p0) / elapsed * 100.0, peer_rss as f64 / 1024.0),
    )
}

fn main() {
    if std::env::var_os("GST_REGISTRY").is_none() {
        let path = std::env::temp_dir().join("splitdial-media-bench.registry");
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("GST_REGISTRY", path) };
    }
    if std::env::args().any(|a| a == "--peer") {
        peer();
        return;
    }
    let (_, rss_before) = usage(std::process::id());
    println!(
        "bench process RSS before GStreamer starts: {:.1} MiB",
        rss_before as f64 / 1024.0
    );
    let only_cost = std::env::var("MEDIA_BENCH_ONLY").is_ok_and(|v| v == "cost");
    for (name, lan) in [
        (
            "LAN settings (jitter 20 ms, Opus 20 ms, 10 ms buffers)",
            true,
        ),
        (
            "GStreamer defaults (jitter 200 ms, Opus 20 ms, default buffers)",
            false,
        ),
    ] {
        if only_cost {
            break;
        }
        let l = latency(lan);
        if l.is_empty() {
            println!("| {name} | no onset detected |");
            continue;
        }
        println!(
            "| mouth-to-ear, {name} | median {:.1} ms (min {:.1}, p90 {:.1}, max {:.1}, n={}) |",
            percentile(&l, 0.5),
            l[0],
            percentile(&l, 0.9),
            l[l.len() - 1],
            l.len()
        );
    }
    let setup = |video, analyze, opus_frame_ms| CallSetup {
        video,
        analyze,
        opus_frame_ms,
    };
    for (name, setup) in [
        (
            "two-way Opus call, analyser sink, 10 ms frames",
            setup(false, true, 10),
        ),
        (
            "two-way Opus call, playback sink, 10 ms frames",
            setup(false, false, 10),
        ),
        (
            "two-way Opus call, playback sink, 20 ms frames",
            setup(false, false, 20),
        ),
        ("two-way Opus + VP8 640x480@30 call", setup(true, true, 10)),
    ] {
        let ((cpu, rss), (peer_cpu, peer_rss)) = call_cost(setup);
        println!(
            "| {name} | this talker {cpu:.1} % of a core, {rss:.1} MiB RSS | peer process {peer_cpu:.1} %, {peer_rss:.1} MiB |"
        );
    }
}
