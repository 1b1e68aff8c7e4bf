//! TLS handshakes per second: the matcher's HTTPS against haproxy 2.6 terminating TLS with the
//! same certificate and key, driven by the same client in the same run (issue 16's "Measure").
//!
//! Each request is a fresh TCP connection, a full TLS handshake (the client keeps no session
//! tickets, so nothing resumes), `GET /healthz` with `Connection: close`, and the answer read to
//! the end: the cost of a client that opens a connection per request, which is what handshakes
//! cost a server. `CLIENTS` connections run at once for `SECONDS` per round; the rounds alternate
//! between the two servers. Both servers may use both cores (the matcher's tokio runtime, haproxy
//! `nbthread 2`); the client runs in this process on the same two cores.
//!
//! Starts servers, so run it in a private network namespace (release binaries next to the
//! bench; haproxy from Debian's package):
//!
//! ```text
//! apt-get install haproxy
//! cargo build --release -p matcher --bin matcher
//! unshare --net -- sh -c 'ip link set lo up && cargo bench -p matcher --bench tls_handshakes'
//! ```
//!
//! `TLS_BENCH_CLIENTS` (8), `TLS_BENCH_SECONDS` (5) and `TLS_BENCH_ROUNDS` (3) change the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::{Process, Spawn, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one server did in one round.
struct Round {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    handshake_us: Vec<u64>,
}

impl Round {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn handshake_percentile(&mut self, p: f64) -> f64 {
        self.handshake_us.sort_unstable();
        let at = ((self.handshake_us.len() as f64 - 1.0) * p).round() as usize;
        self.handshake_us.get(at).copied().unwrap_or(0) as f64 / 1000.0
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    testbed::require_loopback_only_namespace();
    let haproxy = testbed::require_program("haproxy", "haproxy");
    splitdial_tls::install_provider();
    let clients = setting("TLS_BENCH_CLIENTS", 8) as usize;
    let seconds = setting("TLS_BENCH_SECONDS", 5);
    let rounds = setting("TLS_BENCH_ROUNDS", 3);

    let pki = TestPki::new();
    let (matcher, matcher_addr) = start_matcher(&pki);
    let (haproxy, haproxy_addr) = start_haproxy(&haproxy, &pki);
    let config = client_config(&pki);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{clients} clients, {seconds} s per round, {rounds} rounds each; a fresh connection, full \
         handshake and GET /healthz per request"
    );
    println!("| round | server | requests/s | handshake p50 | p90 | failures |");
    println!("|---|---|---|---|---|---|");
    let mut rates: Vec<(&str, f64)> = Vec::new();
    runtime.block_on(async {
        // One warm-up round each, not reported.
        for addr in [matcher_addr, haproxy_addr] {
            load(addr, &config, clients, Duration::from_secs(1)).await;
        }
        for round in 1..=rounds {
            for (name, addr) in [("matcher", matcher_addr), ("haproxy 2.6", haproxy_addr)] {
                let mut result = load(addr, &config, clients, Duration::from_secs(seconds)).await;
                println!(
                    "| {round} | {name} | {:.0} | {:.2} ms | {:.2} ms | {} |",
                    result.per_second(),
                    result.handshake_percentile(0.5),
                    result.handshake_percentile(0.9),
                    result.failures
                );
                rates.push((name, result.per_second()));
            }
        }
    });
    for name in ["matcher", "haproxy 2.6"] {
        let mut of: Vec<f64> = rates
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .collect();
        of.sort_by(f64::total_cmp);
        println!("{name}: median {:.0} requests/s", of[of.len() / 2]);
    }
    drop(matcher);
    drop(haproxy);
}

/// The matcher (release build) on HTTPS with the test CA's certificate.
fn start_matcher(pki: &TestPki) -> (Process, SocketAddr) {
    let db = format!("sqlite:{}", pki.dir().join("bench.db").display());
    let (process, ready) = testbed::start_matcher(
        testbed::matcher_spawn()
            .args(["--db", &db, "--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&pki.matcher_certificate)
            .arg("--tls-key")
            .arg(&pki.matcher_key)
            .env("RUST_LOG", "warn"),
    )
    .expect("the matcher starts and names its address");
    (process, ready.http)
}

/// haproxy terminating TLS with the matcher's certificate and key, answering every request
/// itself (no backend: the handshake and one small answer are what is measured).
fn start_haproxy(program: &Path, pki: &TestPki) -> (Process, SocketAddr) {
    let port = testbed::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let pem = pki.dir().join("haproxy.pem");
    let combined = std::fs::read_to_string(&pki.matcher_certificate).unwrap()
        + &std::fs::read_to_string(&pki.matcher_key).unwrap();
    testbed::write_private(&pem, &combined).unwrap();
    let config = pki.dir().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  nbthread 2\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend tls\n  bind {addr} ssl crt {} alpn http/1.1\n  \
             http-request return status 200 content-type text/plain string ok\n",
            pem.display()
        ),
    )
    .unwrap();
    let process = Spawn::new(program)
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .label("haproxy")
        .start()
        .unwrap();
    testbed::wait_until("haproxy listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).ok().map(|_| ())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log()));
    (process, addr)
}

/// A client that trusts the test CA and never resumes a session.
fn client_config(pki: &TestPki) -> Arc<rustls::ClientConfig> {
    let (mut config, _) = splitdial_tls::verifying_client_config(&pki.trust()).unwrap();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// `clients` loops of connect, handshake, one request, for `duration`.
async fn load(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    clients: usize,
    duration: Duration,
) -> Round {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            tokio::spawn(async move {
                let mut done = (0u64, 0u64, Vec::new());
                while Instant::now() < deadline {
                    match one_request(addr, &connector).await {
                        Ok(handshake) => {
                            done.0 += 1;
                            done.2.push(handshake.as_micros() as u64);
                        }
                        Err(_) => done.1 += 1,
                    }
                }
                done
            })
        })
        .collect();
    let mut round = Round {
        requests: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        handshake_us: Vec::new(),
    };
    for task in tasks {
        let (requests, failures, handshakes) = task.await.unwrap();
        round.requests += requests;
        round.failures += failures;
        round.handshake_us.extend(handshakes);
    }
    round.elapsed = started.elapsed();
    round
}

/// One connection: the handshake's time when the answer was a 200.
async fn one_request(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<Duration> {
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await?;
    let handshake = started.elapsed();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    // A peer that closes without close_notify still gave its whole answer here.
    let _ = tls.read_to_end(&mut answer).await;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(handshake)
    } else {
        Err(std::io::Error::other("not a 200"))
    }
}
