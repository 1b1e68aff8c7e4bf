//! sip-server vs Kamailio 5.6, side by side in one run on one machine.
//!
//! `cargo bench -p sip-server --bench proxy_vs_kamailio` (as root: the bench re-runs
//! itself inside a private network namespace with only loopback, because sipp binds
//! its control port on 0.0.0.0 and nothing here may touch a real network).
//!
//! 1. Completed calls: sipp UAC -> proxy -> sipp UAS (interop/uac.xml, uas.xml) at
//!    500, 1000 and 1500 calls/s, bounded runs of 10 s of calls each, the same
//!    scenarios and rates through both proxies, taking turns; each run gets a
//!    freshly started proxy (nothing left over from the run before).
//! 2. INVITE -> 200 latency through each proxy: a Rust caller and callee on plain
//!    UDP sockets (`sip_probe`), sequential calls (INVITE, 200, ACK and BYE along
//!    the Record-Route), timed with `Instant`; the two proxies take turns in blocks
//!    so drift hits both alike. p50/p99 with distribution-free 95% confidence
//!    intervals (order statistics).
//!
//! Cargo builds the bench and the `sip-server` binary with the bench (release)
//! profile, so the server measured is the optimized one. Knobs (environment):
//! `SPLITDIAL_BENCH_RATES` (default `500,1000,1500`), `SPLITDIAL_BENCH_SECONDS`
//! (10), `SPLITDIAL_BENCH_SAMPLES` (10000 per proxy), `SPLITDIAL_BENCH_ROUNDS` (1:
//! how many times the whole set of rates is repeated); for diagnosis,
//! `SPLITDIAL_BENCH_ONLY=kamailio|sip-server` (call runs through one proxy only) and
//! `SPLITDIAL_SIPP_TRACE_DIR=DIR` (sipp's message traces).

#[path = "../../interop/harness.rs"]
mod harness;
mod sip_probe;

use harness::{Auth, CallLoad, Proxy, ProxyKind, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Set in the environment of the re-run inside the private namespace.
const IN_NETNS: &str = "SPLITDIAL_BENCH_IN_PRIVATE_NETNS";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("proxy_vs_kamailio: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    if std::env::var_os(IN_NETNS).is_none() {
        return rerun_in_private_namespace();
    }
    let config = Config::from_env()?;
    let sip_server = PathBuf::from(env!("CARGO_BIN_EXE_sip-server"));
    print_machine(&sip_server);

    let throughput = measure_throughput(&config, &sip_server)?;

    let mut kamailio = Proxy::start(
        ProxyKind::Kamailio,
        Auth::Open,
        testbed::free_port()?,
        None,
        &sip_server,
    )?;
    let mut ours = Proxy::start(
        ProxyKind::SipServer,
        Auth::Open,
        testbed::free_port()?,
        None,
        &sip_server,
    )?;
    let latency = measure_latency(&config, &kamailio, &ours)?;
    let mut healthy = throughput.iter().all(|row| row.survived);
    for proxy in [&mut kamailio, &mut ours] {
        if !proxy.is_running() {
            healthy = false;
            eprintln!(
                "{} died during the latency run; log tail:\n{}",
                proxy.kind.name(),
                tail(&proxy.log(), 40)
            );
        }
    }
    print_report(&config, &throughput, &latency);
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs this same binary again under `unshare --net` with loopback up.
fn rerun_in_private_namespace() -> Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let status = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_NETNS, "1")
        .status()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!(
            "the run in a private network namespace failed ({status}); \
             it needs root for `unshare --net`"
        )
        .into())
    }
}

struct Config {
    rates: Vec<u64>,
    seconds: u64,
    samples: usize,
    rounds: usize,
    only: Option<ProxyKind>,
}

impl Config {
    fn from_env() -> Result<Self> {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        let rates = var("SPLITDIAL_BENCH_RATES", "500,1000,1500")
            .split(',')
            .map(|r| r.trim().parse::<u64>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Self {
            rates,
            seconds: var("SPLITDIAL_BENCH_SECONDS", "10").parse()?,
            samples: var("SPLITDIAL_BENCH_SAMPLES", "10000").parse()?,
            rounds: var("SPLITDIAL_BENCH_ROUNDS", "1").parse()?,
            only: match var("SPLITDIAL_BENCH_ONLY", "").as_str() {
                "" => None,
                "kamailio" => Some(ProxyKind::Kamailio),
                "sip-server" => Some(ProxyKind::SipServer),
                other => {
                    return Err(
                        format!("SPLITDIAL_BENCH_ONLY={other}: kamailio or sip-server").into(),
                    );
                }
            },
        })
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_else(|e| format!("({program}: {e})"))
}

fn print_machine(sip_server: &std::path::Path) {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    println!("# proxy_vs_kamailio");
    println!(
        "machine: {cpus} cores ({model}), {}",
        command_line("uname", &["-sr"])
    );
    println!(
        "sip-server: {} ({})",
        command_line(&sip_server.to_string_lossy(), &["--version"]),
        sip_server.display()
    );
    println!("kamailio: {}", command_line("kamailio", &["-v"]));
    println!("sipp: {}", command_line("sipp", &["-v"]));
    println!();
}

/// CPU time (user + system) of `pid` and every live descendant, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    // USER_HZ is 100 on Linux x86_64 and arm64.
    const TICKS: f64 = 100.0;
    let mut total = 0.0;
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
                total += ticks(14).unwrap_or(0.0) + ticks(15).unwrap_or(0.0);
            }
        }
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            stack.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total / TICKS
}

struct ThroughputRow {
    rate: u64,
    calls: u64,
    kind: ProxyKind,
    successful: u64,
    failed: u64,
    created: u64,
    wall: Duration,
    proxy_cpu: f64,
    error_kinds: String,
    survived: bool,
}

fn measure_throughput(config: &Config, sip_server: &Path) -> Result<Vec<ThroughputRow>> {
    let mut rows = Vec::new();
    let mut turn = 0;
    for _round in 0..config.rounds {
        for &rate in &config.rates {
            // Alternate who goes first, so neither always runs on a warmer machine.
            let order = if turn % 2 == 0 {
                [ProxyKind::Kamailio, ProxyKind::SipServer]
            } else {
                [ProxyKind::SipServer, ProxyKind::Kamailio]
            };
            turn += 1;
            for kind in order {
                if config.only.is_some_and(|only| only != kind) {
                    continue;
                }
                // A fresh proxy per run: no transactions or timers left from the
                // previous run, and nothing else running beside it.
                let mut proxy =
                    Proxy::start(kind, Auth::Open, testbed::free_port()?, None, sip_server)?;
                let mut row = throughput_run(config, &mut proxy, rate)?;
                row.survived = proxy.is_running();
                if !row.survived {
                    eprintln!(
                        "{} died during the run; log tail:\n{}",
                        kind.name(),
                        tail(&proxy.log(), 40)
                    );
                }
                proxy.stop()?;
                rows.push(row);
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    Ok(rows)
}

fn throughput_run(config: &Config, proxy: &mut Proxy, rate: u64) -> Result<ThroughputRow> {
    let calls = rate * config.seconds;
    let load = CallLoad {
        calls,
        rate,
        auth: None,
        timeout: Duration::from_secs(config.seconds + 60),
        uac_args: Vec::new(),
    };
    let cpu_before = cpu_seconds(proxy.pid());
    let run = harness::run_calls(
        proxy.addr,
        testbed::free_port()?,
        testbed::free_port()?,
        &load,
        None,
    )?;
    let wall = run.uac.elapsed;
    let proxy_cpu = cpu_seconds(proxy.pid()) - cpu_before;
    let stats = run.uac.stats.unwrap_or_default();
    let kinds = |outcome: &harness::SippOutcome| {
        outcome
            .error_kinds(4)
            .iter()
            .map(|(n, kind)| format!("{n}x {kind}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    eprintln!(
        "{:>10} {rate:>5}/s: {}/{} completed, {} failed, {:.1} s, proxy CPU {:.1} s",
        proxy.kind.name(),
        stats.successful,
        calls,
        stats.failed,
        wall.as_secs_f64(),
        proxy_cpu
    );
    Ok(ThroughputRow {
        rate,
        calls,
        kind: proxy.kind,
        successful: stats.successful,
        failed: stats.failed,
        created: stats.created,
        wall,
        proxy_cpu,
        error_kinds: format!(
            "caller: {}; callee ({}): {}",
            kinds(&run.uac),
            run.uas.stats.map_or("no statistics".into(), |s| format!(
                "{} ok, {} failed",
                s.successful, s.failed
            )),
            kinds(&run.uas)
        ),
        survived: true,
    })
}

struct LatencySet {
    kind: ProxyKind,
    samples: Vec<Duration>,
    failures: Vec<String>,
}

fn measure_latency(config: &Config, kamailio: &Proxy, ours: &Proxy) -> Result<Vec<LatencySet>> {
    const BLOCK: usize = 1000;
    const WARM_UP: usize = 500;
    let mut sets = Vec::new();
    let mut rigs = Vec::new();
    for proxy in [kamailio, ours] {
        let callee = sip_probe::Callee::start(proxy.addr, "probe")?;
        let caller = sip_probe::Caller::new(proxy.addr)?;
        rigs.push((proxy.kind, callee, caller));
        sets.push(LatencySet {
            kind: proxy.kind,
            samples: Vec::with_capacity(config.samples),
            failures: Vec::new(),
        });
    }
    for (_, _, caller) in &mut rigs {
        for _ in 0..WARM_UP {
            let _ = caller.call("probe");
        }
    }
    let started = Instant::now();
    while sets.iter().any(|s| s.samples.len() < config.samples) {
        for ((_, _, caller), set) in rigs.iter_mut().zip(&mut sets) {
            let want = BLOCK.min(config.samples.saturating_sub(set.samples.len()));
            for _ in 0..want {
                match caller.call("probe") {
                    Ok(latency) => set.samples.push(latency),
                    Err(failure) => set.failures.push(failure.to_string()),
                }
                if set.failures.len() > config.samples / 10 + 100 {
                    return Err(format!(
                        "{}: too many failed probe calls: {:?}",
                        set.kind.name(),
                        &set.failures[..5]
                    )
                    .into());
                }
            }
        }
    }
    eprintln!("latency: {:.1} s", started.elapsed().as_secs_f64());
    for (kind, callee, _) in &rigs {
        eprintln!(
            "{}: callee answered {} INVITEs",
            kind.name(),
            callee.answered()
        );
    }
    Ok(sets)
}

/// Quantile `q` of sorted `xs` with a distribution-free 95% confidence interval:
/// the ranks n·q ± 1.96·√(n·q·(1−q)) of the order statistics (normal approximation
/// of the binomial).
fn quantile_with_ci(xs: &[Duration], q: f64) -> (Duration, Duration, Duration) {
    let n = xs.len();
    if n == 0 {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    #[allow(clippy::cast_precision_loss)]
    let nf = n as f64;
    let spread = 1.96 * (nf * q * (1.0 - q)).sqrt();
    let rank = |r: f64| -> usize {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let r = r.max(1.0).min(nf) as usize;
        r.saturating_sub(1).min(n - 1)
    };
    (
        xs[rank((nf * q).ceil())],
        xs[rank((nf * q - spread).floor())],
        xs[rank((nf * q + spread).ceil())],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn print_report(config: &Config, throughput: &[ThroughputRow], latency: &[LatencySet]) {
    println!(
        "## Completed calls (sipp uac.xml -> proxy -> uas.xml, {} s of calls per rate)",
        config.seconds
    );
    println!();
    println!(
        "| rate (calls/s) | proxy | completed | failed | completed share | caller run (s) | proxy CPU (s) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for row in throughput {
        #[allow(clippy::cast_precision_loss)]
        let share = 100.0 * row.successful as f64 / row.calls.max(1) as f64;
        println!(
            "| {} | {} | {}/{} | {} | {:.2} % | {:.1} | {:.1} |",
            row.rate,
            row.kind.name(),
            row.successful,
            row.calls,
            row.failed,
            share,
            row.wall.as_secs_f64(),
            row.proxy_cpu
        );
    }
    println!();
    println!("Completed share per round, by rate:");
    println!();
    println!("| rate (calls/s) | kamailio | sip-server |");
    println!("|---:|---|---|");
    for &rate in &config.rates {
        let shares = |kind: ProxyKind| -> String {
            throughput
                .iter()
                .filter(|r| r.rate == rate && r.kind == kind)
                .map(|r| {
                    #[allow(clippy::cast_precision_loss)]
                    let share = 100.0 * r.successful as f64 / r.calls.max(1) as f64;
                    format!("{share:.2} %")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {rate} | {} | {} |",
            shares(ProxyKind::Kamailio),
            shares(ProxyKind::SipServer)
        );
    }
    for row in throughput.iter().filter(|r| r.successful < r.calls) {
        println!(
            "\n{} at {}/s: sipp created {} calls; sipp's error log by kind: {}",
            row.kind.name(),
            row.rate,
            row.created,
            row.error_kinds
        );
    }
    println!();
    println!("## INVITE -> 200 latency (Rust probe, sequential calls, loopback)");
    println!();
    println!(
        "| proxy | samples | failed calls | p50 ms [95% CI] | p99 ms [95% CI] | mean ms | max ms |"
    );
    println!("|---|---:|---:|---|---|---:|---:|");
    let mut quantiles = Vec::new();
    for set in latency {
        let mut xs = set.samples.clone();
        xs.sort_unstable();
        let p50 = quantile_with_ci(&xs, 0.50);
        let p99 = quantile_with_ci(&xs, 0.99);
        let mean = xs.iter().sum::<Duration>() / u32::try_from(xs.len().max(1)).unwrap_or(u32::MAX);
        println!(
            "| {} | {} | {} | {} [{}, {}] | {} [{}, {}] | {} | {} |",
            set.kind.name(),
            xs.len(),
            set.failures.len(),
            ms(p50.0),
            ms(p50.1),
            ms(p50.2),
            ms(p99.0),
            ms(p99.1),
            ms(p99.2),
            ms(mean),
            ms(xs.last().copied().unwrap_or_default())
        );
        quantiles.push((set.kind, p50, p99));
    }
    if let [(_, k50, k99), (_, s50, s99)] = quantiles[..] {
        let ratio =
            |ours: Duration, theirs: Duration| ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9);
        for (name, k, s) in [("p50", k50, s50), ("p99", k99, s99)] {
            let verdict = if ratio(s.0, k.0) <= 1.2
                || s.0.saturating_sub(k.0) <= Duration::from_micros(100)
            {
                "within goal (<= 1.2x or <= +0.1 ms)"
            } else {
                "OUTSIDE goal (> 1.2x and > +0.1 ms)"
            };
            println!(
                "\n{name}: sip-server / kamailio = {:.2}x (CI bounds {:.2}x .. {:.2}x), difference {:+.3} ms: {verdict}",
                ratio(s.0, k.0),
                ratio(s.1, k.2),
                ratio(s.2, k.1),
                (s.0.as_secs_f64() - k.0.as_secs_f64()) * 1000.0
            );
        }
    }
    for set in latency.iter().filter(|s| !s.failures.is_empty()) {
        println!(
            "\n{} probe failures (first 5): {:?}",
            set.kind.name(),
            &set.failures[..set.failures.len().min(5)]
        );
    }
}
