//! The agent binary registers its account with a real `sip-server` (digest,
//! `+sip.instance`, GRUU), and un-registers on SIGTERM.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use std::time::{Duration, Instant};
use testbed::Spawn;

const DOMAIN: &str = "home.example";

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    testbed::wait_until_async(what, Duration::from_secs(20), || {
        std::future::ready(check().then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_and_instance_then_unregisters_on_sigterm() {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users =
        Some(UserDirectory::parse("[users.alice]\npassword = \"alice-pw\"\n", DOMAIN).unwrap());
    let server = sip_server::start(config).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("tv.toml");
    testbed::write_private(
        &config_path,
        format!(
            r#"
name = "Living-room TV"
kind = "tv"
state_dir = "{state}"

[[accounts]]
server = "{DOMAIN}"
proxy = "{proxy}"
user = "alice"
password = "alice-pw"
expires = 300

[discovery]
enabled = false
"#,
            state = dir.path().join("state").display(),
            proxy = server.local_addr(),
        ),
    )
    .unwrap();
    let mut agent = Spawn::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(&config_path)
        .label("talker-agent")
        .start()
        .unwrap();
    agent
        .wait_for_output("talker-agent ready", Duration::from_secs(20))
        .unwrap();

    let location = &server.context().location;
    wait_until("the registration", || !location.lookup("alice").is_empty()).await;
    let binding = location.lookup("alice").remove(0);
    assert!(
        binding
            .instance
            .as_deref()
            .is_some_and(|i| i.starts_with("urn:uuid:")),
        "{binding:?}"
    );
    assert!(binding.remaining(Instant::now()) > 200);
    agent
        .wait_for_output("registered", Duration::from_secs(10))
        .unwrap();

    let status = agent.stop(Duration::from_secs(10)).unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status}\n{}",
        agent.log()
    );
    assert!(
        location.lookup("alice").is_empty(),
        "un-registered on shutdown:\n{}",
        agent.log()
    );
    server.shutdown().await;
}

/// An agent configuration with one account, alice on `DOMAIN`, sent to `proxy`.
fn agent_config(dir: &std::path::Path, proxy: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join("tv.toml");
    testbed::write_private(
        &path,
        format!(
            "name = \"TV\"\nkind = \"tv\"\nstate_dir = \"{}\"\n[[accounts]]\nserver = \"{DOMAIN}\"\nproxy = \"{proxy}\"\nuser = \"alice\"\npassword = \"alice-pw\"\nexpires = 300\n[discovery]\nenabled = false\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// A fake registrar on 127.0.0.1: answers each REGISTER with a 401 carrying
/// `challenges` (header values) and returns every request it received within
/// `listen`.
async fn challenged_registers(
    agent_dir: &std::path::Path,
    challenges: &[&str],
    listen: Duration,
) -> (Vec<String>, testbed::process::Process) {
    let registrar = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent = Spawn::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(agent_config(agent_dir, registrar.local_addr().unwrap()))
        .label("talker-agent")
        .start()
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut requests = Vec::new();
    let deadline = tokio::time::Instant::now() + listen;
    while let Ok(Ok((n, from))) =
        tokio::time::timeout_at(deadline, registrar.recv_from(&mut buf)).await
    {
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let echoed: String = request
            .lines()
            .filter(|l| {
                ["Via:", "From:", "Call-ID:", "CSeq:"]
                    .iter()
                    .any(|h| l.starts_with(h))
            })
            .map(|l| format!("{}\r\n", l.trim_end()))
            .collect();
        let to = request
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .trim_end()
            .to_owned();
        let offered: String = challenges
            .iter()
            .map(|c| format!("WWW-Authenticate: {c}\r\n"))
            .collect();
        let reply = format!(
            "SIP/2.0 401 Unauthorized\r\n{echoed}{to};tag=fake\r\n{offered}Content-Length: 0\r\n\r\n"
        );
        registrar.send_to(reply.as_bytes(), from).await.unwrap();
        requests.push(request);
    }
    (requests, agent)
}

/// A server that sends MD5 first and SHA-256 second (one that also serves
/// MD5-only phones) gets a SHA-256 answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_sha256_when_md5_is_offered_first() {
    let dir = tempfile::tempdir().unwrap();
    let (requests, mut agent) = challenged_registers(
        dir.path(),
        &[
            &format!("Digest realm=\"{DOMAIN}\", nonce=\"n1\", algorithm=MD5, qop=\"auth\""),
            &format!("Digest realm=\"{DOMAIN}\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\""),
        ],
        Duration::from_secs(3),
    )
    .await;
    agent.stop(Duration::from_secs(10)).unwrap();
    let answer = requests
        .iter()
        .flat_map(|r| r.lines())
        .find(|l| l.starts_with("Authorization:"))
        .unwrap_or_else(|| panic!("the challenge was not answered:\n{}", agent.log()));
    assert!(answer.contains("algorithm=SHA-256"), "{answer}");
}

/// A 401 whose challenge names another realm than the account's domain is not
/// answered (one log line), so the agent never sends credentials there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_from_another_realm_is_not_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (requests, mut agent) = challenged_registers(
        dir.path(),
        &["Digest realm=\"evil.example\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\""],
        Duration::from_secs(4),
    )
    .await;
    assert!(
        !requests.is_empty(),
        "no REGISTER arrived:\n{}",
        agent.log()
    );
    for r in &requests {
        assert!(
            !r.contains("Authorization:"),
            "credentials sent to another realm:\n{r}"
        );
    }
    agent
        .wait_for_output(
            "digest challenge from a realm other than the account's",
            Duration::from_secs(5),
        )
        .unwrap();
    agent.stop(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_bad_config_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("bad.toml");
    std::fs::write(&config_path, "name = \"x\"\nkind = \"toaster\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap();
    assert!(
        line.contains("bad.toml") && line.contains("kind"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_registers_after_a_server_restart() {
    let users = "[users.alice]\npassword = \"alice-pw\"\n";
    let start_server = |addr: std::net::SocketAddr| {
        let mut config = ServerConfig::new(addr, DOMAIN);
        config.users = Some(UserDirectory::parse(users, DOMAIN).unwrap());
        config.min_expires = 5;
        sip_server::start(config)
    };
    let server = start_server("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("tv.toml");
    testbed::write_private(
        &config_path,
        format!(
            "name = \"TV\"\nkind = \"tv\"\nstate_dir = \"{}\"\n[[accounts]]\nserver = \"{DOMAIN}\"\nproxy = \"{addr}\"\nuser = \"alice\"\npassword = \"alice-pw\"\nexpires = 10\n[discovery]\nenabled = false\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let mut agent = Spawn::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(&config_path)
        .start()
        .unwrap();
    agent
        .wait_for_output("talker-agent ready", Duration::from_secs(20))
        .unwrap();
    wait_until("the first registration", || {
        !server.context().location.lookup("alice").is_empty()
    })
    .await;

    // The server restarts on the same address with an empty location service.
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = start_server(addr).await.unwrap();
    assert!(restarted.context().location.lookup("alice").is_empty());
    let start = Instant::now();
    wait_until("re-registration", || {
        !restarted.context().location.lookup("alice").is_empty()
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    drop(agent);
    restarted.shutdown().await;
}
