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
