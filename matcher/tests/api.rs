//! The HTTP API against a real matcher (in-process, SQLite file): the
//! authorization matrix — every endpoint with no token, a bad token, another
//! user's token and the right one — and bad bodies answered with JSON errors.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use matcher::api::ApiSettings;
use matcher::auth::{SecretKind, new_secret, secret_hash};
use matcher::calls::CallTimeouts;
use matcher::registry::{ContactTarget, ControllerTrust, Media, Server, Transport};
use matcher::server::{MatcherConfig, RunningMatcher};
use matcher::storage::{CallRecord, Store, TokenSelector};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use splitdial_api::CallState;
use std::time::Duration;

/// The test CA and the matcher certificate it issued, one for the whole test binary.
static PKI: std::sync::LazyLock<testbed::TestPki> = std::sync::LazyLock::new(testbed::TestPki::new);

/// HTTPS with the test PKI's matcher certificate.
fn https() -> matcher::http_listener::Transport {
    matcher::http_listener::Transport::Tls(PKI.served_certificate())
}

struct World {
    matcher: RunningMatcher,
    base: String,
    alice: String,
    bob: String,
    carol_enroll: String,
    _dir: tempfile::TempDir,
}

async fn token(store: &Store, user: i64, label: &str) -> String {
    let t = new_secret(SecretKind::UserToken);
    store
        .add_api_token(
            user,
            &secret_hash(SecretKind::UserToken, &t).unwrap(),
            label,
        )
        .await
        .unwrap();
    t
}

/// A matcher on an empty registry allowing `rate_per_second` per client.
async fn empty_matcher(rate_per_second: u32) -> (RunningMatcher, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let matcher = RunningMatcher::start(MatcherConfig {
        db,
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: https(),
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "test".into(),
        api: ApiSettings {
            rate_per_second,
            ..ApiSettings::default()
        },
        timeouts: CallTimeouts::default(),
    })
    .await
    .unwrap();
    (matcher, dir)
}

fn public_key() -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    STANDARD.encode(key.verifying_key().as_bytes())
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let store = Store::open(&db).await.unwrap();
    let alice = store.add_user("alice", "Alice").await.unwrap();
    let bob = store.add_user("bob", "Bob").await.unwrap();
    let carol = store.add_user("carol", "Carol").await.unwrap();
    store
        .add_server(&Server {
            domain: "family.example".into(),
            // Nothing listens there: calls fail fast, which is all this test needs.
            proxy: "127.0.0.1:9".into(),
            transport: Transport::Tcp,
            cost: 1,
            trust: ControllerTrust::Address,
        })
        .await
        .unwrap();
    store
        .add_contact(alice.id, "bob", &ContactTarget::User { user: bob.id })
        .await
        .unwrap();
    store
        .add_contact(bob.id, "alice", &ContactTarget::User { user: alice.id })
        .await
        .unwrap();
    store
        .add_contact(alice.id, "carol", &ContactTarget::User { user: carol.id })
        .await
        .unwrap();
    let alice_token = token(&store, alice.id, "test").await;
    let bob_token = token(&store, bob.id, "test").await;
    let carol_enroll = new_secret(SecretKind::Enrollment);
    store
        .add_enrollment_token(
            carol.id,
            &secret_hash(SecretKind::Enrollment, &carol_enroll).unwrap(),
            matcher::storage::now_secs() + 600,
        )
        .await
        .unwrap();
    store.close().await;
    let matcher = RunningMatcher::start(MatcherConfig {
        db,
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: https(),
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "test".into(),
        api: ApiSettings {
            rate_per_second: 1000,
            stream_recheck: Duration::from_millis(200),
            max_streams_per_user: 3,
            ..ApiSettings::default()
        },
        timeouts: CallTimeouts {
            talker_answer: Duration::from_secs(2),
            callee_answer: Duration::from_secs(2),
        },
    })
    .await
    .unwrap();
    let base = matcher.base_url();
    World {
        matcher,
        base,
        alice: alice_token,
        bob: bob_token,
        carol_enroll,
        _dir: dir,
    }
}

async fn call(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = PKI.client();
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn enrollment(id: &str, aor: &str) -> Value {
    json!({
        "id": id, "public_key": public_key(), "name": format!("{id} device"), "kind": "tv",
        "media": "video", "instance": format!("urn:uuid:{id}"),
        "accounts": [{"aor": aor, "server": "family.example"}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_authorizes_every_request() {
    let w = world().await;
    let b = w.base.as_str();

    // Enroll two talkers (alice's through a fresh token, bob's too) to have ids.
    let (status, body) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.carol_enroll),
        Some(enrollment("carol-tv", "sip:carol@family.example")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let carol_credential = body["credential"].as_str().unwrap().to_owned();
    assert!(body["keys"][0]["public_key"].is_string());
    assert!(body["time"].as_f64().unwrap() > 1.7e9);
    // The token is used up.
    let (status, body) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.carol_enroll),
        Some(enrollment("carol-pc", "sip:carol-pc@family.example")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    // A user's API token is no enrollment token.
    let (status, _) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.alice),
        Some(enrollment("x", "sip:x@family.example")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        b,
        Method::POST,
        "/v1/talkers",
        None,
        Some(enrollment("x", "sip:x@family.example")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Heartbeat: only the talker's own credential, only for itself.
    let beat = json!({"state": "idle", "accounts": [{"aor": "sip:carol@family.example", "registered": true}]});
    for (token, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("sdt_bogus"), StatusCode::UNAUTHORIZED),
        (Some(w.alice.as_str()), StatusCode::UNAUTHORIZED),
        (Some(carol_credential.as_str()), StatusCode::OK),
    ] {
        let (status, body) = call(
            b,
            Method::POST,
            "/v1/talkers/carol-tv/heartbeat",
            token,
            Some(beat.clone()),
        )
        .await;
        assert_eq!(status, expected, "heartbeat with {token:?}: {body}");
    }
    // The reply's key set is signed by every published key over carol-tv's id
    // and the reply's time.
    let (_, reply) = call(
        b,
        Method::POST,
        "/v1/talkers/carol-tv/heartbeat",
        Some(&carol_credential),
        Some(beat.clone()),
    )
    .await;
    let reply: splitdial_api::HeartbeatReply = serde_json::from_value(reply).unwrap();
    let time_ms = splitdial_api::time_ms(reply.time).unwrap();
    let input = splitdial_api::key_set_signing_input("carol-tv", time_ms, &reply.keys);
    assert_eq!(reply.signatures.len(), reply.keys.len());
    for (key, signature) in reply.keys.iter().zip(&reply.signatures) {
        use ed25519_dalek::Verifier;
        let public: [u8; 32] = STANDARD
            .decode(&key.public_key)
            .unwrap()
            .try_into()
            .unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        assert_eq!(signature.kid, key.kid);
        assert_eq!(key.kid, splitdial_sip::call_token::key_id(&public));
        let bytes: [u8; 64] = STANDARD
            .decode(&signature.signature)
            .unwrap()
            .try_into()
            .unwrap();
        public
            .verify(&input, &ed25519_dalek::Signature::from_bytes(&bytes))
            .expect("the key set signature checks");
        let other = splitdial_api::key_set_signing_input("other-tv", time_ms, &reply.keys);
        assert!(
            public
                .verify(&other, &ed25519_dalek::Signature::from_bytes(&bytes))
                .is_err()
        );
    }
    let (status, _) = call(
        b,
        Method::POST,
        "/v1/talkers/other-talker/heartbeat",
        Some(&carol_credential),
        Some(beat.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a talker reports only for itself"
    );

    // User endpoints: 401 without or with a bad token.
    let user_endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/me".into(), None),
        (Method::GET, "/v1/me/talkers".into(), None),
        (Method::GET, "/v1/me/contacts".into(), None),
        (Method::GET, "/v1/routes?callee=bob".into(), None),
        (
            Method::POST,
            "/v1/calls".into(),
            Some(json!({"callee": "bob"})),
        ),
        (Method::GET, "/v1/calls/c_x".into(), None),
        (Method::DELETE, "/v1/calls/c_x".into(), None),
        (Method::GET, "/v1/calls/c_x/events".into(), None),
        (
            Method::POST,
            "/v1/calls/c_x/parties".into(),
            Some(json!({"callee": "bob"})),
        ),
        (
            Method::POST,
            "/v1/talkers/carol-tv/owner-tokens".into(),
            Some(json!({"action": "answer", "sip_call_id": "x"})),
        ),
    ];
    for (method, path, body) in &user_endpoints {
        for token in [
            None,
            Some("sdu_not-a-token"),
            Some(carol_credential.as_str()),
        ] {
            let (status, reply) = call(b, method.clone(), path, token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(reply["error"]["code"], "unauthorized");
        }
    }

    // Right tokens.
    let (status, me) = call(b, Method::GET, "/v1/me", Some(&w.alice), None).await;
    assert_eq!(
        (status, me["name"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    let (_, contacts) = call(b, Method::GET, "/v1/me/contacts", Some(&w.alice), None).await;
    let carol = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "carol")
        .unwrap();
    assert_eq!(carol["accepted"], false);
    assert_eq!(
        carol["servers"],
        json!([]),
        "no servers of an unaccepted contact"
    );

    // Owner tokens only for one's own talker.
    let (status, _) = call(
        b,
        Method::POST,
        "/v1/talkers/carol-tv/owner-tokens",
        Some(&w.alice),
        Some(json!({"action": "answer", "sip_call_id": "x"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "alice does not own carol's talker"
    );

    // Routes and calls need the contact to have accepted, and a shared server.
    let (status, body) = call(
        b,
        Method::GET,
        "/v1/routes?callee=carol",
        Some(&w.alice),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("contact_not_accepted"))
    );
    let (status, body) = call(
        b,
        Method::GET,
        "/v1/routes?callee=dave",
        Some(&w.alice),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_contact"))
    );
    let (status, body) = call(
        b,
        Method::GET,
        "/v1/routes?callee=bob",
        Some(&w.alice),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("no_designated_talker")
        ),
        "alice has no talkers yet: {body}"
    );
    // Bob designating alice's talkers is refused (he owns none of them).
    let (status, _) = call(
        b,
        Method::GET,
        "/v1/routes?callee=alice&talkers=carol-tv",
        Some(&w.bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Calls of another user are invisible.
    for (method, path, body) in &user_endpoints[5..9] {
        let (status, _) = call(b, method.clone(), path, Some(&w.bob), body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }

    // Health and metrics need no token.
    let (status, _) = call(b, Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = PKI
        .client()
        .get(format!("{b}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("matcher_enrollments_total 1"), "{metrics}");
    assert!(metrics.contains("matcher_http_responses_total{class=\"4xx\"}"));
    w.matcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_json_errors_and_nothing_changes() {
    let w = world().await;
    let b = w.base.as_str();
    let client = PKI.client();
    // Malformed JSON, wrong types, unknown fields, oversize.
    for (body, expected) in [
        ("{", StatusCode::BAD_REQUEST),
        ("{\"callee\": 5}", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "{\"callee\": \"bob\", \"evil\": 1}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"callee\": \"bob\", \"media\": \"smell\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = client
            .post(format!("{b}/v1/calls"))
            .bearer_auth(&w.alice)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
    let huge = format!("{{\"callee\": \"{}\"}}", "x".repeat(200_000));
    let r = client
        .post(format!("{b}/v1/calls"))
        .bearer_auth(&w.alice)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Enrollment with bad fields does not burn the token.
    let mut bad = enrollment("carol-tv", "sip:carol@elsewhere.example");
    bad["accounts"][0]["server"] = json!("elsewhere.example");
    let (status, body) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.carol_enroll),
        Some(bad),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
    );
    let mut bad = enrollment("carol-tv", "sip:carol@family.example");
    bad["public_key"] = json!("not a key");
    let (status, _) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.carol_enroll),
        Some(bad),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = call(
        b,
        Method::POST,
        "/v1/talkers",
        Some(&w.carol_enroll),
        Some(enrollment("carol-tv", "sip:carol@family.example")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "token still good: {body}");
    // Unknown endpoint: JSON 404.
    let (status, body) = call(b, Method::GET, "/v2/nothing", Some(&w.alice), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    w.matcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429() {
    let (matcher, _dir) = empty_matcher(2).await;
    let base = matcher.base_url();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            call(&base, Method::GET, "/v1/me", Some("sdu_x"), None)
                .await
                .0,
        );
    }
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED));
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    matcher.shutdown().await;
}

/// Stores a call of alice's in progress, owned by another matcher instance so
/// that nothing here moves it on: its event stream stays open until something
/// ends it. Returns a second handle on the world's database.
async fn call_in_progress(w: &World, id: &str) -> Store {
    let db = format!("sqlite:{}", w._dir.path().join("m.db").display());
    let store = Store::open(&db).await.unwrap();
    let alice = store.require_user("alice").await.unwrap();
    let contact = store
        .contact_by_name(alice.id, "bob")
        .await
        .unwrap()
        .unwrap();
    store
        .insert_call(&CallRecord {
            id: id.into(),
            caller: alice.id,
            contact_id: contact.contact.id,
            route: "{}".into(),
            media: Media::Audio,
            state: CallState::Matching,
            reason: None,
            owner_instance: "elsewhere".into(),
            created_at: matcher::storage::now_secs(),
            ended_at: None,
        })
        .await
        .unwrap();
    store
        .append_call_event(id, CallState::Matching, None, "{}")
        .await
        .unwrap();
    store
}

/// Opens `GET /v1/calls/{call}/events` with `token`, on a connection of its own.
async fn open_events(base: &str, call: &str, token: &str) -> reqwest::Response {
    PKI.client()
        .get(format!("{base}/v1/calls/{call}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The `matcher_event_streams` gauge.
async fn open_streams(base: &str) -> u64 {
    let text = PKI
        .client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("matcher_event_streams "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gauge in {text}"))
}

/// Reads an event stream's body until it ends (`true`) or `within` passes with
/// it still open (`false`); what arrived is appended to `text`.
async fn stream_ends_within(
    response: &mut reqwest::Response,
    within: Duration,
    text: &mut String,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) | Ok(Err(_)) => return true,
        }
    }
}

/// An event stream is authorized when it opens and again every
/// `stream_recheck` (200 ms here): revoking its token ends it and its
/// reconnect is refused, while a stream on another token of the same user
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_ends_once_its_token_is_revoked() {
    let w = world().await;
    let store = call_in_progress(&w, "c_streamed").await;
    let alice = store.require_user("alice").await.unwrap();
    let streamer = token(&store, alice.id, "streamer").await;
    let mut revoked = open_events(&w.base, "c_streamed", &streamer).await;
    let mut kept = open_events(&w.base, "c_streamed", &w.alice).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(kept.status(), StatusCode::OK);
    let (mut revoked_text, mut kept_text) = (String::new(), String::new());
    // Several rechecks pass while the token is good.
    assert!(!stream_ends_within(&mut revoked, Duration::from_secs(1), &mut revoked_text).await);
    assert!(
        revoked_text.contains("\"state\":\"matching\""),
        "{revoked_text}"
    );

    let gone = store
        .revoke_api_tokens(alice.id, TokenSelector::Label("streamer"))
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert!(
        stream_ends_within(&mut revoked, Duration::from_secs(10), &mut revoked_text).await,
        "the revoked token's stream is still open"
    );
    assert!(
        !stream_ends_within(&mut kept, Duration::from_secs(1), &mut kept_text).await,
        "the other token's stream ended too"
    );
    assert!(kept_text.contains("\"state\":\"matching\""), "{kept_text}");
    assert_eq!(
        open_events(&w.base, "c_streamed", &streamer).await.status(),
        StatusCode::UNAUTHORIZED
    );
    drop(kept);
    store.close().await;
    w.matcher.shutdown().await;
}

/// A user holds at most `max_streams_per_user` (3 here) event streams open;
/// one more is a 429 with its own code, another user is not held back, and a
/// stream whose client went away frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_a_bounded_number_of_event_streams() {
    let w = world().await;
    let store = call_in_progress(&w, "c_watched").await;
    let open = || open_events(&w.base, "c_watched", &w.alice);
    let mut held = Vec::new();
    for _ in 0..3 {
        let response = open().await;
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    assert_eq!(open_streams(&w.base).await, 3);
    let refused = open().await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    // Bob's requests are his own: the call is not his, so a 404, not a 429.
    let (status, _) = call(
        &w.base,
        Method::GET,
        "/v1/calls/c_watched/events",
        Some(&w.bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A client that goes away gives its place back.
    held.pop();
    testbed::wait_until_async(
        "the dropped stream not counted",
        Duration::from_secs(10),
        || async { (open_streams(&w.base).await <= 2).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let again = open().await;
    assert_eq!(again.status(), StatusCode::OK);
    drop((held, again));
    store.close().await;
    w.matcher.shutdown().await;
}

/// Stopping the matcher ends the event streams it serves, also those of calls
/// another instance steers (their clients reconnect elsewhere), instead of
/// leaving them open on a server that no longer answers anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_matcher_ends_its_event_streams() {
    let w = world().await;
    let store = call_in_progress(&w, "c_elsewhere").await;
    store.close().await;
    let mut response = open_events(&w.base, "c_elsewhere", &w.alice).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    assert!(!stream_ends_within(&mut response, Duration::from_millis(500), &mut text).await);
    let stopping = tokio::spawn(w.matcher.shutdown());
    assert!(
        stream_ends_within(&mut response, Duration::from_secs(10), &mut text).await,
        "the stream outlived the matcher: {text}"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}

/// Anyone can make up a token, so a fresh one per request must not buy a fresh
/// budget: requests refused as unauthorized are counted per address, and an
/// address out of that budget gets 429 before its next token is looked up.
/// Another address is not held back, nor are requests without a token keyed
/// to one shared bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_are_limited_per_address() {
    let (matcher, _dir) = empty_matcher(2).await;
    let url = format!("{}/v1/me", matcher.base_url());
    let from = |address: &str| {
        splitdial_tls::verifying_client_builder(&PKI.trust())
            .unwrap()
            .0
            .local_address(address.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (first, second) = (from("127.0.0.1"), from("127.0.0.2"));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let made_up = new_secret(SecretKind::UserToken);
        let response = first.get(&url).bearer_auth(made_up).send().await.unwrap();
        statuses.push(response.status());
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    // A burst of 4 (twice the rate), and a little refill while the loop runs.
    assert!((4..=7).contains(&refused), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // Without a token the first address is held back as well; the second is
    // not, with or without one.
    assert_eq!(
        first.get(&url).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        second.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        second
            .get(&url)
            .bearer_auth(new_secret(SecretKind::UserToken))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    matcher.shutdown().await;
}
