//! Cost of a talker agent against baresip 1.0 (harness = false), all on
//! 127.0.0.x with the embedded sip-server in this process:
//! 1. idle and registered: the agent and a baresip side by side, same run;
//! 2. in a call between the two: the agent's referred call (control leg + REFER)
//!    to the baresip account, G.711 (baresip with g711 only), then Opus (a
//!    second baresip with opus too); both ends of the same call are measured;
//! 3. the agent idle again after those calls.
//!
//! The agent runs its media in a child process, the media worker `talker-media`: during a
//! call the worker is measured too, and "agent + worker" is their sum (RSS double-counts
//! nothing they share but the C library's pages; PSS is the fair sum). Idle, there is no worker.
//!
//! CPU = user + system time from `/proc/PID/stat` over a 10 s window after 2 s
//! of settling, as % of one core; RSS = VmRSS, PSS and anonymous memory from
//! `/proc/PID/smaps_rollup` at the end of the window.
//!
//! Run: `cargo build --release -p talker-media` (the agent finds the worker beside itself), then
//! `unshare --net -- sh -c 'ip link set lo up && cargo bench -p talker-agent --bench idle --offline'`;
//! with `IDLE_BENCH_AGENT=target/agent/talker-agent` it measures the `agent` profile's build.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/interop/rig.rs"]
mod rig;

use rig::{Baresip, BaresipSetup, CONTROLLER_IP, ControlLeg, DOMAIN, Matcher, agent_config};
use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use std::path::PathBuf;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);

/// MD5 H(A1)s (`md5(user:home.example:user-pw)`): baresip answers MD5 challenges only.
const EVE_HA1_MD5: &str = "8c4d506c4f0c83294a5e0db87b5e077a";
const ZED_HA1_MD5: &str = "b5f70be65bcd9457fd7a2ca2289f0e38";

/// What one process cost over the window.
struct Cost {
    cpu_percent: f64,
    rss_kib: u64,
    pss_kib: u64,
    anon_kib: u64,
}

impl Cost {
    /// Two processes' costs together (one call's agent and its media worker).
    fn plus(&self, other: &Cost) -> Cost {
        Cost {
            cpu_percent: self.cpu_percent + other.cpu_percent,
            rss_kib: self.rss_kib + other.rss_kib,
            pss_kib: self.pss_kib + other.pss_kib,
            anon_kib: self.anon_kib + other.anon_kib,
        }
    }
}

/// The agent's media worker (its `talker-media` child), if one runs.
fn media_worker_of(agent: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{agent}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "talker-media")
        })
}

/// Whether `pid` maps any GLib or GStreamer library (from `/proc/PID/maps`).
fn maps_gstreamer(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .any(|l| l.contains("libgstreamer") || l.contains("libglib"))
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:5.1} % of a core, RSS {:5.1} MiB (PSS {:4.1}, anonymous {:4.1})",
            self.cpu_percent,
            self.rss_kib as f64 / 1024.0,
            self.pss_kib as f64 / 1024.0,
            self.anon_kib as f64 / 1024.0
        )
    }
}

/// Measures `pids` together over the window (after settling).
async fn measure(pids: &[u32]) -> Vec<Cost> {
    tokio::time::sleep(SETTLE).await;
    let ticks_per_second = clock_ticks_per_second();
    let before: Vec<u64> = pids.iter().map(|p| rig::cpu_ticks(*p)).collect();
    let start = std::time::Instant::now();
    tokio::time::sleep(WINDOW).await;
    let seconds = start.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(pid, before)| Cost {
            cpu_percent: (rig::cpu_ticks(*pid) - before) as f64 / ticks_per_second / seconds
                * 100.0,
            rss_kib: rig::proc_kb(*pid, "status", "VmRSS"),
            pss_kib: rig::proc_kb(*pid, "smaps_rollup", "Pss"),
            anon_kib: rig::proc_kb(*pid, "smaps_rollup", "Anonymous"),
        })
        .collect()
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let users = format!(
        "challenge = \"md5\"\n[users.alice]\npassword = \"alice-pw\"\nmd5 = true\n[users.eve]\nha1_md5 = \"{EVE_HA1_MD5}\"\n[users.zed]\nha1_md5 = \"{ZED_HA1_MD5}\"\n"
    );
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(UserDirectory::parse(&users, DOMAIN).unwrap());
    config.trusted = vec![CONTROLLER_IP];
    let server = sip_server::start(config).await.unwrap();
    let matcher = Matcher::new();
    let dir = tempfile::tempdir().unwrap();
    let a_cfg = agent_config(
        dir.path(),
        "tv-a",
        "alice",
        server.local_addr(),
        &matcher.key,
        440.0,
        "",
    );
    // IDLE_BENCH_AGENT measures another build of the agent, e.g. the `agent` profile's
    // target/agent/talker-agent (its media worker must sit beside it).
    let binary = std::env::var_os("IDLE_BENCH_AGENT").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_talker-agent")),
        PathBuf::from,
    );
    println!("agent binary: {}", binary.display());
    let agent = rig::start_agent(&binary, &a_cfg, "tv-a");
    let mut eve = Baresip::start(&BaresipSetup {
        user: "eve",
        proxy: server.local_addr(),
        tone_hz: 1000,
        opus: false,
    });
    eve.wait_registered();
    let location = &server.context().location;
    rig::eventually("alice registered", Duration::from_secs(30), || {
        !location.lookup("alice").is_empty()
    })
    .await;
    let (agent_pid, eve_pid) = (agent.pid(), eve.process.pid());

    println!("talker agent vs baresip 1.0 (window {WINDOW:?} after {SETTLE:?})");
    let idle = measure(&[agent_pid, eve_pid]).await;
    println!("idle, registered        agent:   {}", idle[0]);
    println!("idle, registered        baresip: {}", idle[1]);
    println!(
        "idle: media worker running: {}; agent maps GLib/GStreamer: {}",
        media_worker_of(agent_pid).is_some(),
        maps_gstreamer(agent_pid)
    );

    // A G.711 call: the agent's referred call to eve (g711 only).
    let mut leg = ControlLeg::open(
        server.local_addr(),
        &matcher,
        "tv-a",
        &format!("sip:alice@{DOMAIN}"),
    )
    .await;
    leg.refer_and_wait_answer(&matcher, &format!("sip:eve@{DOMAIN}"))
        .await;
    let worker = media_worker_of(agent_pid).expect("a media worker during the call");
    let g711 = measure(&[agent_pid, worker, eve_pid]).await;
    println!("G.711 call (each end)   agent:   {}", g711[0]);
    println!("G.711 call (each end)   worker:  {}", g711[1]);
    println!(
        "G.711 call (each end)   agent + worker: {}",
        g711[0].plus(&g711[1])
    );
    println!("G.711 call (each end)   baresip: {}", g711[2]);
    leg.bye().await;
    drop(eve);

    // An Opus call: the same to zed, whose baresip also loads opus.
    let mut zed = Baresip::start(&BaresipSetup {
        user: "zed",
        proxy: server.local_addr(),
        tone_hz: 1000,
        opus: true,
    });
    zed.wait_registered();
    let zed_pid = zed.process.pid();
    let zed_idle = measure(&[zed_pid]).await;
    println!("idle, registered        baresip+opus: {}", zed_idle[0]);
    let mut leg = ControlLeg::open(
        server.local_addr(),
        &matcher,
        "tv-a",
        &format!("sip:alice@{DOMAIN}"),
    )
    .await;
    leg.refer_and_wait_answer(&matcher, &format!("sip:zed@{DOMAIN}"))
        .await;
    let worker = media_worker_of(agent_pid).expect("a media worker during the call");
    let opus = measure(&[agent_pid, worker, zed_pid]).await;
    println!("Opus call (each end)    agent:   {}", opus[0]);
    println!("Opus call (each end)    worker:  {}", opus[1]);
    println!(
        "Opus call (each end)    agent + worker: {}",
        opus[0].plus(&opus[1])
    );
    println!("Opus call (each end)    baresip: {}", opus[2]);
    leg.bye().await;
    let codec_line = agent
        .log()
        .lines()
        .filter(|l| l.contains("media session started"))
        .map(rig::plain)
        .collect::<Vec<_>>();
    println!("agent media sessions: {codec_line:#?}");
    drop(zed);

    let after = measure(&[agent_pid]).await;
    println!("idle again after calls  agent:   {}", after[0]);
    println!(
        "idle again: media worker running: {}",
        media_worker_of(agent_pid).is_some()
    );
    drop(agent);
    server.shutdown().await;
}
