//! The matcher's HTTPS: the flags that choose plain HTTP are refused off loopback, a client
//! that never finishes its handshake holds up no one, SIGHUP serves a new certificate and a
//! bad new pair leaves the old one serving, and plain HTTP works only as the loopback exception.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testbed::{Process, TestPki};

fn matcher() -> Command {
    Command::new(testbed::workspace_binary("matcher"))
}

/// Runs the matcher with `args` and returns its exit code and its stderr (it must stop).
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let out = matcher().arg("--db").arg(&db).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plain_http_is_refused_off_loopback_and_without_the_flag() {
    let (code, stderr) = refused(&["--insecure-http", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("loopback") && stderr.contains("0.0.0.0:0"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (code, stderr) = refused(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    let (code, stderr) = refused(&[
        "--tls-cert",
        "/nonexistent/m.crt",
        "--tls-key",
        "/nonexistent/m.key",
    ]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("/nonexistent/m.crt"), "{stderr}");
}

fn start(pki: &TestPki, certificate: &Path, key: &Path) -> (Process, String) {
    let db = format!("sqlite:{}", pki.dir().join("m.db").display());
    let (process, ready) = testbed::start_matcher(
        testbed::matcher_spawn()
            .args(["--db", &db, "--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(certificate)
            .arg("--tls-key")
            .arg(key),
    )
    .unwrap();
    assert!(ready.url.starts_with("https://127.0.0.1:"), "{ready:?}");
    (process, ready.url)
}

async fn health(client: &reqwest::Client, url: &str) -> Result<u16, String> {
    client
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_handshake_holds_up_no_one_and_sighup_swaps_the_certificate() {
    let pki = TestPki::new();
    let certificate = pki.dir().join("served.crt");
    let key = pki.dir().join("served.key");
    std::fs::copy(&pki.matcher_certificate, &certificate).unwrap();
    std::fs::copy(&pki.matcher_key, &key).unwrap();
    let (matcher, url) = start(&pki, &certificate, &key);

    // A peer that connects and says nothing; another one is served meanwhile.
    let address = url.trim_start_matches("https://");
    let _silent = std::net::TcpStream::connect(address).unwrap();
    let mut half = std::net::TcpStream::connect(address).unwrap();
    half.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let client = pki.client();
    assert_eq!(health(&client, &url).await, Ok(200), "{}", matcher.log());

    // A client of another CA is refused, in words.
    let stranger = TestPki::new();
    let e = health(&stranger.client(), &url).await.unwrap_err();
    assert!(e.contains("does not trust"), "{e}");

    // A bad new pair: one log line, the old certificate keeps serving.
    std::fs::write(&certificate, "not a certificate\n").unwrap();
    hangup(&matcher);
    testbed::wait_until("the refusal logged", Duration::from_secs(10), || {
        matcher
            .log()
            .contains("new certificate refused")
            .then_some(())
    })
    .unwrap();
    assert_eq!(health(&pki.client(), &url).await, Ok(200));

    // A pair from another CA: after SIGHUP new connections get it.
    let (new_certificate, new_key) = stranger
        .ca
        .issue_files(
            "next",
            splitdial_tls::pki::Usage::Server,
            &["127.0.0.1".into()],
        )
        .unwrap();
    std::fs::copy(&new_certificate, &certificate).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    hangup(&matcher);
    testbed::wait_until("the reload logged", Duration::from_secs(10), || {
        matcher.log().contains("certificate reloaded").then_some(())
    })
    .unwrap();
    assert_eq!(health(&stranger.client(), &url).await, Ok(200));
    let e = health(&pki.client(), &url).await.unwrap_err();
    assert!(e.contains("does not trust"), "{e}");
}

/// The loopback exception: plain HTTP on 127.0.0.1 with --insecure-http, said loudly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_http_on_loopback_serves_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let (process, ready) = testbed::start_matcher(testbed::matcher_spawn().args([
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--insecure-http",
    ]))
    .unwrap();
    let log = process.log();
    assert!(log.contains("PLAINTEXT HTTP"), "{log}");
    let url = ready.url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let client = splitdial_tls::client_builder().no_proxy().build().unwrap();
    assert_eq!(health(&client, &url).await, Ok(200));
}

fn hangup(process: &Process) {
    let sent = Command::new("kill")
        .args(["-HUP", &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}
