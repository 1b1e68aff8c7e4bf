//! The admin command line as an operator runs it: the real `matcher` binary
//! on a fresh SQLite file, adding a third-party SIP phone as a user's talker.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::process::Output;

/// The test CA and the matcher certificate it issued, one for the whole test binary.
static PKI: std::sync::LazyLock<testbed::TestPki> = std::sync::LazyLock::new(testbed::TestPki::new);

/// HTTPS with the test PKI's matcher certificate.
fn https() -> matcher::http_listener::Transport {
    matcher::http_listener::Transport::Tls(std::sync::Arc::new(
        splitdial_tls::server::ReloadableCertificate::load(
            &PKI.matcher_certificate,
            &PKI.matcher_key,
        )
        .unwrap(),
    ))
}

fn matcher(db: &str, args: &[&str]) -> Output {
    std::process::Command::new(testbed::workspace_binary("matcher"))
        .args(["--db", db, "--json"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(db: &str, args: &[&str]) -> serde_json::Value {
    let out = matcher(db, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn refused(db: &str, args: &[&str]) -> String {
    let out = matcher(db, args);
    assert!(!out.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_sip_phone_is_added_as_a_users_talker_on_known_servers_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("registry.db").display());
    ok(&db, &["user", "add", "alice"]);
    ok(
        &db,
        &[
            "server",
            "add",
            "family.example",
            "--proxy",
            "127.0.0.1:5060",
        ],
    );
    let added = ok(
        &db,
        &[
            "talker",
            "add",
            "alice",
            "desk",
            "--name",
            "Desk phone",
            "--account",
            "sip:alice-desk@family.example",
        ],
    );
    assert_eq!(added["id"], "desk");
    assert_eq!(added["software"], "sip_phone");
    assert_eq!(added["kind"], "phone");
    assert_eq!(added["media"], "audio");
    assert_eq!(added["public_key"], "");

    let unknown = refused(
        &db,
        &[
            "talker",
            "add",
            "alice",
            "desk2",
            "--account",
            "sip:x@elsewhere.example",
        ],
    );
    assert!(
        unknown.contains("unknown server \"elsewhere.example\""),
        "{unknown}"
    );
    let malformed = refused(
        &db,
        &["talker", "add", "alice", "desk3", "--account", "alice-desk"],
    );
    assert!(malformed.contains("not sip:user@domain"), "{malformed}");
    let again = refused(
        &db,
        &[
            "talker",
            "add",
            "alice",
            "desk",
            "--account",
            "sip:y@family.example",
        ],
    );
    assert!(again.contains("desk"), "{again}");
    let nobody = refused(
        &db,
        &[
            "talker",
            "add",
            "mallory",
            "desk4",
            "--account",
            "sip:z@family.example",
        ],
    );
    assert!(nobody.contains("mallory"), "{nobody}");
}

/// A leaked token is revoked from the command line while the matcher serves: by
/// fingerprint or label it is refused from the next request on (401), and the
/// user's other tokens keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_revoked_from_the_command_line_is_refused_at_once() {
    use matcher::server::{MatcherConfig, RunningMatcher};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("registry.db").display());
    // The real binary, run while the matcher's tasks go on on the other worker.
    let admin = |args: &[&str]| tokio::task::block_in_place(|| ok(&db, args));
    let admin_refused = |args: &[&str]| tokio::task::block_in_place(|| refused(&db, args));
    admin(&["user", "add", "alice"]);
    let laptop = admin(&["user", "token", "alice", "--label", "laptop"]);
    let phone = admin(&["user", "token", "alice", "--label", "phone"]);
    let listed = admin(&["user", "tokens", "alice"]);
    let prints: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(prints.len(), 2, "{listed}");
    assert!(prints.contains(&laptop["fingerprint"].as_str().unwrap()));
    assert!(
        !listed
            .to_string()
            .contains(laptop["token"].as_str().unwrap())
    );

    let matcher = RunningMatcher::start(MatcherConfig {
        db: db.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: https(),
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "test".into(),
        api: matcher::api::ApiSettings::default(),
        timeouts: matcher::calls::CallTimeouts::default(),
    })
    .await
    .unwrap();
    let me = format!("{}/v1/me", matcher.base_url());
    let status = |token: &serde_json::Value| {
        let request = PKI
            .client()
            .get(&me)
            .bearer_auth(token["token"].as_str().unwrap())
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&laptop).await, 200);
    assert_eq!(status(&phone).await, 200);

    let print = laptop["fingerprint"].as_str().unwrap();
    let revoked = admin(&["user", "revoke-token", "alice", "--fingerprint", print]);
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(status(&laptop).await, 401, "the revoked token");
    assert_eq!(status(&phone).await, 200, "the other token");

    // Nothing left to match is an error, not a silent success.
    let none = admin_refused(&["user", "revoke-token", "alice", "--label", "laptop"]);
    assert!(none.contains("no API token of alice matches"), "{none}");
    let missing = admin_refused(&["user", "revoke-token", "alice"]);
    assert!(missing.contains("--label"), "{missing}");

    admin(&["user", "revoke-token", "alice", "--all"]);
    assert_eq!(status(&phone).await, 401);
    matcher.shutdown().await;
}
