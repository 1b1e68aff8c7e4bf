//! The admin command line as an operator runs it: the real `matcher` binary
//! on a fresh SQLite file, adding a third-party SIP phone as a user's talker.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::process::Output;

/// The test CA and the matcher certificate it issued, one for the whole test binary.
static PKI: std::sync::LazyLock<testbed::TestPki> = std::sync::LazyLock::new(testbed::TestPki::new);

/// HTTPS with the test PKI's matcher certificate.
fn https() -> matcher::http_listener::Transport {
    matcher::http_listener::Transport::Tls(PKI.served_certificate())
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
    let db = household(&dir);
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

// ---------------------------------------------------------------------------
// Revocation without a restart: talkers, credentials and signing keys.

/// A matcher serving HTTPS on the SQLite file `db`.
async fn serve(db: &str) -> matcher::server::RunningMatcher {
    use matcher::server::{MatcherConfig, RunningMatcher};
    RunningMatcher::start(MatcherConfig {
        db: db.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: https(),
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "test".into(),
        api: matcher::api::ApiSettings::default(),
        timeouts: matcher::calls::CallTimeouts::default(),
    })
    .await
    .unwrap()
}

/// Enrolls talker `id` of alice (on family.example) through `url`; its credential.
async fn enroll(db: &str, url: &str, id: &str) -> String {
    use base64::Engine;
    let token = tokio::task::block_in_place(|| ok(db, &["enroll-token", "alice"]));
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let body = serde_json::json!({
        "id": id, "name": id, "kind": "tv", "media": "audio",
        "public_key": base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes()),
        "accounts": [{"aor": format!("sip:{id}@family.example"), "server": "family.example"}],
    });
    let reply: serde_json::Value = PKI
        .client()
        .post(format!("{url}/v1/talkers"))
        .bearer_auth(token["token"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["credential"]
        .as_str()
        .unwrap_or_else(|| panic!("enrollment refused: {reply}"))
        .to_owned()
}

/// A heartbeat of talker `id` with `credential`: the status and the reply.
async fn heartbeat(url: &str, id: &str, credential: &str) -> (u16, serde_json::Value) {
    let response = PKI
        .client()
        .post(format!("{url}/v1/talkers/{id}/heartbeat"))
        .bearer_auth(credential)
        .json(&serde_json::json!({"state": "idle", "accounts": []}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A registry with alice and her server.
fn household(dir: &tempfile::TempDir) -> String {
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
    db
}

/// A rotated credential works and the old one is refused from the next
/// heartbeat on; a removed talker's heartbeat gets 401 and it leaves the
/// owner's list, while the matcher keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_credential_and_a_removed_talker_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = household(&dir);
    let admin = |args: &[&str]| tokio::task::block_in_place(|| ok(&db, args));
    let admin_refused = |args: &[&str]| tokio::task::block_in_place(|| refused(&db, args));
    let matcher = serve(&db).await;
    let url = matcher.base_url();
    let old = enroll(&db, &url, "tv").await;
    let other = enroll(&db, &url, "pc").await;
    assert_eq!(heartbeat(&url, "tv", &old).await.0, 200);

    let rotated = admin(&["talker", "rotate", "tv"]);
    let new = rotated["credential"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        heartbeat(&url, "tv", &old).await.0,
        401,
        "the old credential"
    );
    assert_eq!(
        heartbeat(&url, "tv", new).await.0,
        200,
        "the new credential"
    );

    admin(&["talker", "remove", "tv"]);
    assert_eq!(heartbeat(&url, "tv", new).await.0, 401, "a removed talker");
    assert_eq!(heartbeat(&url, "pc", &other).await.0, 200, "another talker");
    let user = admin(&["user", "token", "alice"]);
    let listed: serde_json::Value = PKI
        .client()
        .get(format!("{url}/v1/me/talkers"))
        .bearer_auth(user["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pc"], "{listed}");

    let gone = admin_refused(&["talker", "remove", "tv"]);
    assert!(gone.contains("no talker \"tv\""), "{gone}");
    let gone = admin_refused(&["talker", "rotate", "tv"]);
    assert!(gone.contains("no enrolled talker agent \"tv\""), "{gone}");
    matcher.shutdown().await;
}

/// The kids of a heartbeat reply's keys.
fn kids(reply: &serde_json::Value) -> Vec<String> {
    reply["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Two matcher instances on one store (each with its own connections and key
/// ring, as two processes have) publish the same set after `matcher key rotate
/// --revoke`, without a restart, within the reread interval: the revoked key is
/// gone from the keys, named as revoked, and the new key signs the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matchers_on_one_store_publish_the_same_set_after_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let db = household(&dir);
    let admin = |args: &[&str]| tokio::task::block_in_place(|| ok(&db, args));
    let (a, b) = (serve(&db).await, serve(&db).await);
    let (url_a, url_b) = (a.base_url(), b.base_url());
    let credential = enroll(&db, &url_a, "tv").await;
    let (_, before_a) = heartbeat(&url_a, "tv", &credential).await;
    let (_, before_b) = heartbeat(&url_b, "tv", &credential).await;
    let old = kids(&before_a);
    assert_eq!(old.len(), 1);
    assert_eq!(kids(&before_b), old);

    let started = std::time::Instant::now();
    let rotated = admin(&["key", "rotate", "--revoke", &old[0]]);
    let new = rotated["kid"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for url in [&url_a, &url_b] {
        let reply = testbed::wait_until_async(
            "the matcher publishing the new set",
            std::time::Duration::from_secs(10),
            || async {
                let (_, reply) = heartbeat(url, "tv", &credential).await;
                (kids(&reply) == [new.clone()]).then_some(reply)
            },
        )
        .await
        .unwrap();
        seen.push(started.elapsed());
        assert_eq!(reply["revoked"], serde_json::json!(old), "{reply}");
        assert_eq!(reply["signatures"][0]["kid"], serde_json::json!(new));
        let time_ms = splitdial_api::time_ms(reply["time"].as_f64().unwrap()).unwrap();
        let keys: Vec<splitdial_api::MatcherKey> =
            serde_json::from_value(reply["keys"].clone()).unwrap();
        let input = splitdial_api::revoking_key_set_signing_input("tv", time_ms, &keys, &old);
        assert!(verifies(
            &keys[0].public_key,
            &reply["signatures"][0]["signature"],
            &input
        ));
    }
    // The measured staleness (docs/matcher.md): the reread interval, plus a
    // heartbeat's round trip and the admin command's own run.
    let bound = matcher::signing::KEY_RELOAD_INTERVAL + std::time::Duration::from_secs(2);
    eprintln!("both matchers published the revocation after {seen:?}");
    assert!(seen.iter().all(|s| *s <= bound), "{seen:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Whether the base64 Ed25519 `signature` over `input` checks with `public`.
fn verifies(public: &str, signature: &serde_json::Value, input: &[u8]) -> bool {
    use base64::Engine;
    use ed25519_dalek::Verifier;
    let b64 = base64::engine::general_purpose::STANDARD;
    let public: [u8; 32] = b64.decode(public).unwrap().try_into().unwrap();
    let signature: [u8; 64] = b64
        .decode(signature.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(input, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok()
}

/// The only active key cannot be revoked (the line says how to replace it);
/// the old spelling `rotate-key` still rotates; a retired key can be revoked
/// once; `key list` shows each key's state and never a seed.
#[test]
fn revoking_the_last_active_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = household(&dir);
    let first = ok(&db, &["key", "rotate"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let last = refused(&db, &["key", "revoke", &first]);
    assert!(
        last.contains("only active key") && last.contains("key rotate --revoke"),
        "{last}"
    );
    let second = ok(&db, &["rotate-key"])["kid"].as_str().unwrap().to_owned();
    ok(&db, &["key", "revoke", &first]);
    let again = refused(&db, &["key", "revoke", &first]);
    assert!(again.contains("already revoked"), "{again}");
    let unknown = refused(&db, &["key", "rotate", "--revoke", "m-0000000000000000"]);
    assert!(
        unknown.contains("no signing key \"m-0000000000000000\""),
        "{unknown}"
    );
    let listed = ok(&db, &["key", "list"]);
    let mut states: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    states.sort_by_key(|(_, state)| state.clone());
    assert_eq!(
        states,
        [(second, "active".into()), (first, "revoked".into())],
        "the failed rotation added no key: {listed}"
    );
    assert!(!listed.to_string().contains("seed"), "{listed}");
}
