//! The dialer's network clients against real counterparts: the matcher client
//! against a real matcher started in-process on 127.0.0.1 (SQLite in a temp
//! dir), the talker client's challenge check with real Ed25519 keys, and the
//! SSE resume against a server that breaks the stream mid-event.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use discovery::challenge::Challenge;
use ed25519_dalek::{Signer, SigningKey};
use matcher::api::ApiSettings;
use matcher::auth::{SecretKind, new_secret, secret_hash};
use matcher::calls::CallTimeouts;
use matcher::registry::{ContactTarget, ControllerTrust, Media, Server, TalkerKind, Transport};
use matcher::server::{MatcherConfig, RunningMatcher};
use matcher::storage::{AccountReport, NewAccount, NewTalker, Store};
use serde_json::{Value, json};
use splitdial_tui::app::OwnerAction;
use splitdial_tui::config::Secret;
use splitdial_tui::matcher_client::MatcherClient;
use splitdial_tui::model::{CallState, Problem};
use splitdial_tui::talker_client::{TalkerClient, VerifyError};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The test CA and the matcher certificate it issued, one for the whole test binary.
static PKI: std::sync::LazyLock<testbed::TestPki> = std::sync::LazyLock::new(testbed::TestPki::new);

/// HTTPS with the test PKI's matcher certificate.
fn https() -> matcher::http_listener::Transport {
    matcher::http_listener::Transport::Tls(PKI.served_certificate())
}

const LIMIT: Duration = Duration::from_secs(30);

struct World {
    matcher: RunningMatcher,
    base: String,
    alice: String,
    alice_key: SigningKey,
    _dir: tempfile::TempDir,
}

async fn token(store: &Store, user: i64) -> String {
    let t = new_secret(SecretKind::UserToken);
    store
        .add_api_token(
            user,
            &secret_hash(SecretKind::UserToken, &t).unwrap(),
            "test",
        )
        .await
        .unwrap();
    t
}

async fn talker(store: &Store, owner: i64, id: &str, key: &SigningKey, aor: &str, server: &str) {
    store
        .enroll_talker(&NewTalker {
            id: id.into(),
            owner,
            name: format!("{id} device"),
            kind: TalkerKind::Tv,
            media: Media::Video,
            public_key: STANDARD.encode(key.verifying_key().as_bytes()),
            instance: Some(format!("urn:uuid:{id}")),
            credential_hash: secret_hash(
                SecretKind::TalkerCredential,
                &new_secret(SecretKind::TalkerCredential),
            )
            .unwrap(),
            accounts: vec![NewAccount {
                aor: aor.into(),
                server: server.into(),
            }],
        })
        .await
        .unwrap();
    store
        .record_heartbeat(
            id,
            "idle",
            &[AccountReport {
                aor: aor.into(),
                registered: true,
                gruu: None,
            }],
        )
        .await
        .unwrap();
}

/// alice (talker alice-tv on family.example) has contacts bob (family.example,
/// accepted), dave (work.example only, accepted) and carol (not accepted).
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let store = Store::open(&db).await.unwrap();
    let alice = store.add_user("alice", "Alice").await.unwrap();
    let bob = store.add_user("bob", "Bob").await.unwrap();
    let carol = store.add_user("carol", "Carol").await.unwrap();
    let dave = store.add_user("dave", "Dave").await.unwrap();
    for (domain, cost) in [("family.example", 1), ("work.example", 2)] {
        store
            .add_server(&Server {
                domain: domain.into(),
                // Nothing listens there: a call fails fast, which is all this test needs.
                proxy: "127.0.0.1:9".into(),
                transport: Transport::Tcp,
                cost,
                trust: ControllerTrust::Address,
            })
            .await
            .unwrap();
    }
    let alice_key = SigningKey::from_bytes(&[1; 32]);
    talker(
        &store,
        alice.id,
        "alice-tv",
        &alice_key,
        "sip:alice@family.example",
        "family.example",
    )
    .await;
    talker(
        &store,
        bob.id,
        "bob-pc",
        &SigningKey::from_bytes(&[2; 32]),
        "sip:bob@family.example",
        "family.example",
    )
    .await;
    talker(
        &store,
        dave.id,
        "dave-pc",
        &SigningKey::from_bytes(&[3; 32]),
        "sip:dave@work.example",
        "work.example",
    )
    .await;
    for (owner, name, other) in [
        (alice.id, "bob", bob.id),
        (bob.id, "alice", alice.id),
        (alice.id, "dave", dave.id),
        (dave.id, "alice", alice.id),
        (alice.id, "carol", carol.id),
    ] {
        store
            .add_contact(owner, name, &ContactTarget::User { user: other })
            .await
            .unwrap();
    }
    let alice_token = token(&store, alice.id).await;
    store.close().await;
    let matcher = RunningMatcher::start(MatcherConfig {
        db,
        listen: "127.0.0.1:0".parse().unwrap(),
        transport: https(),
        sip_listen: "127.0.0.1:0".parse().unwrap(),
        instance: "test".into(),
        api: ApiSettings {
            rate_per_second: 1000,
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
        alice_key,
        _dir: dir,
    }
}

fn refused_code(problem: &Problem) -> (u16, &str) {
    match problem {
        Problem::Refused { status, code, .. } => (*status, code.as_str()),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matcher_client_reads_the_registry_and_maps_errors() {
    let w = world().await;
    let client = MatcherClient::new(&w.base, Secret::new(w.alice.clone()), &PKI.trust()).unwrap();
    // The token never shows in Debug.
    assert!(!format!("{client:?}").contains(&w.alice));

    let me = client.me().await.unwrap();
    assert_eq!(me.name, "alice");
    assert_eq!(me.display_name.as_deref(), Some("Alice"));

    let talkers = client.talkers().await.unwrap();
    assert_eq!(talkers.len(), 1);
    assert_eq!(talkers[0].id, "alice-tv");
    assert!(talkers[0].online);
    assert_eq!(
        talkers[0].public_key,
        STANDARD.encode(w.alice_key.verifying_key().as_bytes())
    );
    assert_eq!(talkers[0].accounts[0].server, "family.example");

    let contacts = client.contacts().await.unwrap();
    let by_name = |n: &str| contacts.iter().find(|c| c.name == n).unwrap();
    assert_eq!(by_name("bob").servers, ["family.example"]);
    assert!(by_name("bob").accepted);
    assert_eq!(by_name("dave").servers, ["work.example"]);
    assert!(!by_name("carol").accepted);

    let routes = client.routes("bob", &[], false).await.unwrap();
    assert_eq!(routes.callee, "bob");
    assert_eq!(routes.routes[0].talker, "alice-tv");
    assert_eq!(routes.routes[0].server, "family.example");
    assert_eq!(routes.routes[0].rank, 1);
    let routes = client
        .routes("bob", &["alice-tv".into()], true)
        .await
        .unwrap();
    assert_eq!(routes.media, Media::Video);

    // No shared server: 409 with both sides' servers, for routes and calls alike.
    for problem in [
        client.routes("dave", &[], false).await.unwrap_err(),
        client.place_call("dave", &[], false).await.unwrap_err(),
    ] {
        assert_eq!(
            problem,
            Problem::Refused {
                status: 409,
                code: "no_shared_server".into(),
                message: problem_message(&problem),
                caller_servers: vec!["family.example".into()],
                callee_servers: vec!["work.example".into()],
            }
        );
    }
    assert_eq!(
        refused_code(&client.routes("carol", &[], false).await.unwrap_err()),
        (403, "contact_not_accepted")
    );
    // Names with URL-special characters are encoded, not spliced in.
    assert_eq!(
        refused_code(
            &client
                .routes("nobody&callee=bob", &[], false)
                .await
                .unwrap_err()
        ),
        (404, "unknown_contact")
    );
    assert_eq!(
        refused_code(&client.call("../me").await.unwrap_err()),
        (404, "not_found")
    );
    assert_eq!(
        refused_code(
            &client
                .owner_token("bob-pc", OwnerAction::Answer, "abc@host")
                .await
                .unwrap_err()
        ),
        (404, "not_found")
    );
    let owner = client
        .owner_token("alice-tv", OwnerAction::Decline, "abc@host")
        .await
        .unwrap();
    assert!(
        owner.token.expose().split('.').count() == 3,
        "a compact JWS"
    );
    assert!(owner.expires_in > 0);

    // A wrong token is 401 unauthorized on every endpoint.
    let stranger =
        MatcherClient::new(&w.base, Secret::new("sdu_not-a-token"), &PKI.trust()).unwrap();
    assert_eq!(
        refused_code(&stranger.me().await.unwrap_err()),
        (401, "unauthorized")
    );
    assert_eq!(
        refused_code(&stranger.talkers().await.unwrap_err()),
        (401, "unauthorized")
    );
    assert_eq!(
        refused_code(&stranger.contacts().await.unwrap_err()),
        (401, "unauthorized")
    );

    // Nothing listening: unreachable, not a refusal.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], testbed::free_port().unwrap()));
    let dead =
        MatcherClient::new(&format!("http://{nowhere}"), Secret::new("t"), &PKI.trust()).unwrap();
    assert!(matches!(
        dead.me().await.unwrap_err(),
        Problem::Unreachable { what, .. } if what == "matcher"
    ));

    w.matcher.shutdown().await;
}

fn problem_message(problem: &Problem) -> String {
    match problem {
        Problem::Refused { message, .. } => message.clone(),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_followed_to_its_end_over_sse() {
    let w = world().await;
    let client = MatcherClient::new(&w.base, Secret::new(w.alice.clone()), &PKI.trust()).unwrap();
    let call = client
        .place_call("bob", &["alice-tv".into()], false)
        .await
        .unwrap();
    // The controller may already have sent the control INVITE when the
    // answer is written.
    assert!(
        matches!(call.state, CallState::Matching | CallState::DialingTalker),
        "{:?}",
        call.state
    );
    assert_eq!(call.media, Media::Audio);

    // The talker's proxy does not answer: the call ends soon, and the stream
    // stops after the final state.
    let mut events = client.follow_call(&call.call);
    let mut states = Vec::new();
    let followed = tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            assert_eq!(event.call, call.call);
            states.push(event.state);
        }
    })
    .await;
    assert!(followed.is_ok(), "the stream ended: {states:?}");
    assert_eq!(states.first(), Some(&CallState::Matching));
    assert_eq!(states.last(), Some(&CallState::Ended));
    assert!(
        states.windows(2).all(|w| w[0] <= w[1]),
        "in order: {states:?}"
    );

    let info = client.call(&call.call).await.unwrap();
    assert_eq!(info.state, CallState::Ended);
    assert!(info.reason.is_some());
    // Hanging up a call that is over answers its final state.
    assert!(client.hang_up(&call.call).await.unwrap().state.is_final());
    assert_eq!(
        refused_code(&client.add_party(&call.call, "bob").await.unwrap_err()),
        (409, "call_not_live")
    );

    // A second follower gets the whole history, then the end.
    let mut again = client.follow_call(&call.call);
    let first = again.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);

    // A bad token is refused for good: the stream gives up at once.
    let mut stranger = MatcherClient::new(&w.base, Secret::new("sdu_x"), &PKI.trust())
        .unwrap()
        .follow_call(&call.call);
    let refused = tokio::time::timeout(LIMIT, stranger.next()).await.unwrap();
    assert_eq!(
        refused_code(&refused.unwrap().unwrap_err()),
        (401, "unauthorized")
    );
    assert!(stranger.next().await.is_none());
    w.matcher.shutdown().await;
}

// ---------------------------------------------------------------------------
// A tiny HTTP server for the fakes: one request per connection.

struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request = Request {
        head,
        body: buf[head_end..].to_vec(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

async fn respond(stream: &mut (impl AsyncWrite + Unpin), status: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// How the fake talker answers a challenge.
#[derive(Clone, Copy)]
enum Talker {
    /// Signs honestly with its key, as `id`.
    Honest,
    /// Answers as another talker id (signing that id).
    OtherId,
    /// Signs the channel binding of another connection, not the one the
    /// challenge came on (what a relay gets from the real talker).
    OtherConnection,
}

/// Starts a fake talker on HTTPS with a certificate made from `key` (as the
/// agent's): `POST /v1/challenge` signed with `key` as `id`, `GET /v1/status`,
/// owner actions (recorded).
async fn fake_talker(
    key: SigningKey,
    id: &'static str,
    how: Talker,
) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let tls = tokio_rustls::TlsAcceptor::from(
        splitdial_tls::talker::server_config(&key.to_bytes()).unwrap(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut stream) = tls.accept(stream).await else {
                continue;
            };
            let binding = splitdial_tls::talker::channel_binding(stream.get_ref().1).unwrap();
            let Some(request) = read_request(&mut stream).await else {
                continue;
            };
            let line = request.head.lines().next().unwrap_or_default().to_owned();
            let (status, body) = if line.starts_with("POST /v1/challenge ") {
                let asked: Value = serde_json::from_slice(&request.body).unwrap();
                let talker_nonce = "00112233445566778899aabbccddeeff";
                let (answer_id, binding) = match how {
                    Talker::Honest => (id, binding),
                    Talker::OtherId => ("someone-else", binding),
                    Talker::OtherConnection => (id, [0x5a; 32]),
                };
                let message = Challenge {
                    talker_id: answer_id,
                    dialer_nonce: asked["nonce"].as_str().unwrap(),
                    talker_nonce,
                    channel_binding: &binding,
                }
                .message();
                let body = json!({
                    "talker_id": answer_id,
                    "talker_nonce": talker_nonce,
                    "public_key": STANDARD.encode(key.verifying_key().as_bytes()),
                    "signature": STANDARD.encode(key.sign(&message).to_bytes()),
                });
                ("200 OK", body.to_string())
            } else if line.starts_with("GET /v1/status ") {
                let body = json!({"id": id, "name": "TV", "kind": "tv", "media": ["audio"],
                    "accounts": [], "calls": [{"id": 3, "kind": "incoming", "state": "ringing",
                    "sip_call_id": "abc@host", "peer": "sip:bob@family.example", "media": null}]});
                ("200 OK", body.to_string())
            } else if line.starts_with("POST /v1/calls/3/") {
                ("202 Accepted", r#"{"call":3,"action":"answer"}"#.to_owned())
            } else {
                (
                    "404 Not Found",
                    r#"{"error":{"code":"not_found","message":"no"}}"#.to_owned(),
                )
            };
            // Logged before answering, so the test sees it once it has the answer.
            log.lock().unwrap().push(request);
            respond(&mut stream, status, &body).await;
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_registry_key_for_the_asked_id_on_this_connection_verifies() {
    let real = SigningKey::from_bytes(&[7; 32]);
    let registry_key = STANDARD.encode(real.verifying_key().as_bytes());
    let client = TalkerClient::new().unwrap();

    // The real talker, signing honestly: verified.
    let (addr, seen) = fake_talker(real.clone(), "tv-1", Talker::Honest).await;
    client.verify("tv-1", addr, &registry_key).await.unwrap();
    // It was asked with a fresh nonce and nothing else (the connection's
    // channel binding is read by each end, never sent).
    let first: Value = serde_json::from_slice(&seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(first.as_object().unwrap().len(), 1, "{first}");
    client.verify("tv-1", addr, &registry_key).await.unwrap();
    let second: Value = serde_json::from_slice(&seen.lock().unwrap()[1].body).unwrap();
    assert_ne!(first["nonce"], second["nonce"], "a fresh nonce each time");

    // An impostor with its own key (in its certificate and its answer):
    // refused at the TLS handshake, before any request is sent.
    let impostor = SigningKey::from_bytes(&[8; 32]);
    let (addr, seen) = fake_talker(impostor, "tv-1", Talker::Honest).await;
    let refused = client.verify("tv-1", addr, &registry_key).await;
    assert_eq!(
        refused,
        Err(VerifyError::NotTheTalker(
            "its certificate carries another key than the registry's for this talker".into()
        ))
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing sent to it");

    // The right key, but the answer speaks for another talker id.
    let (addr, _) = fake_talker(real.clone(), "tv-1", Talker::OtherId).await;
    assert!(matches!(
        client.verify("tv-1", addr, &registry_key).await,
        Err(VerifyError::WrongTalker { answered, .. }) if answered == "someone-else"
    ));

    // The right key and id, signed for another connection (what a relay
    // gets from the real talker): refused.
    let (addr, _) = fake_talker(real.clone(), "tv-1", Talker::OtherConnection).await;
    assert!(matches!(
        client.verify("tv-1", addr, &registry_key).await,
        Err(VerifyError::Signature(
            discovery::challenge::ChallengeError::Mismatch
        ))
    ));

    // Asking about a talker id the key does not belong to fails too.
    let (addr, _) = fake_talker(real.clone(), "tv-2", Talker::Honest).await;
    assert!(client.verify("tv-1", addr, &registry_key).await.is_err());

    // Nothing there: unreachable.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], testbed::free_port().unwrap()));
    assert!(matches!(
        client.verify("tv-1", nowhere, &registry_key).await,
        Err(VerifyError::Request(Problem::Unreachable { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_owner_actions_speak_the_talkers_contract() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let registry_key = STANDARD.encode(key.verifying_key().as_bytes());
    let (addr, seen) = fake_talker(key, "tv-1", Talker::Honest).await;
    let client = TalkerClient::new().unwrap();
    let status = client.status(addr, &registry_key).await.unwrap();
    assert_eq!(status.calls[0].sip_call_id, "abc@host");
    client
        .owner_action(
            addr,
            &registry_key,
            3,
            OwnerAction::Answer,
            &Secret::new("owner.jws.token"),
        )
        .await
        .unwrap();
    {
        let requests = seen.lock().unwrap();
        let action = requests.last().unwrap();
        assert!(
            action
                .head
                .starts_with("POST /v1/calls/3/answer HTTP/1.1\r\n"),
            "{}",
            action.head
        );
        assert_eq!(action.header("content-type"), Some("application/json"));
        assert_eq!(
            action.header("authorization"),
            Some("Bearer owner.jws.token")
        );
        assert_eq!(action.header("host"), Some(addr.to_string().as_str()));
        assert_eq!(action.body, b"{}");
    }
    // A refusal comes back as the talker's error code.
    let refused = client
        .owner_action(
            addr,
            &registry_key,
            4,
            OwnerAction::Decline,
            &Secret::new("t"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused_code(&refused), (404, "not_found"));
    // A talker whose key is not the registry's gets neither a status request
    // nor an owner token: the connection ends at the handshake.
    let other_key = STANDARD.encode(SigningKey::from_bytes(&[8; 32]).verifying_key().as_bytes());
    let asked = seen.lock().unwrap().len();
    let status = client.status(addr, &other_key).await.unwrap_err();
    assert_eq!(
        status.to_string(),
        format!(
            "talker at {addr} unreachable: not the registry's talker: \
             its certificate carries another key than the registry's for this talker"
        )
    );
    let action = client
        .owner_action(
            addr,
            &other_key,
            3,
            OwnerAction::Answer,
            &Secret::new("owner.jws.token"),
        )
        .await
        .unwrap_err();
    assert!(matches!(action, Problem::Unreachable { .. }), "{action}");
    assert_eq!(seen.lock().unwrap().len(), asked, "no request reached it");
}

/// An SSE server whose first connection breaks in the middle of event 3; the
/// client must come back with `Last-Event-ID: 2` and get 3 (final) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_event_stream_resumes_after_the_last_complete_event() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resumed_with = Arc::new(Mutex::new(Vec::new()));
    let log = resumed_with.clone();
    tokio::spawn(async move {
        let event = |seq: i64, state: &str| {
            format!(
                "event: state\nid: {seq}\ndata: {}\n\n",
                json!({"call": "c1", "seq": seq, "state": state, "at": "2026-01-01T00:00:00.000Z", "detail": {}})
            )
        };
        let mut connection = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let Some(request) = read_request(&mut stream).await else {
                continue;
            };
            log.lock()
                .unwrap()
                .push(request.header("last-event-id").map(str::to_owned));
            connection += 1;
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            let body = if connection == 1 {
                // Events 1 and 2 whole, event 3 cut off before its blank line.
                let third = event(3, "connected");
                format!(
                    ": hello\n\n{}{}{}",
                    event(1, "matching"),
                    event(2, "dialing_talker"),
                    &third[..third.len() - 1]
                )
            } else {
                // A replay of 2 (skipped by the client), then the rest.
                format!(
                    "{}{}{}",
                    event(2, "dialing_talker"),
                    event(3, "connected"),
                    event(4, "ended")
                )
            };
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    let client =
        MatcherClient::new(&format!("http://{addr}"), Secret::new("t"), &PKI.trust()).unwrap();
    let mut events = client.follow_call("c1");
    let mut seqs = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            seqs.push(event.unwrap().seq);
        }
    })
    .await
    .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(*resumed_with.lock().unwrap(), [None, Some("2".to_owned())]);
}

// ---------------------------------------------------------------------------
// The effect runner and the `talkers` merge, on the same real counterparts.

fn config_for(base: &str, token: &str) -> splitdial_tui::config::Config {
    splitdial_tui::config::Config {
        matcher_url: Some(base.to_owned()),
        matcher_ca: Some(PKI.ca_certificate.clone()),
        token: Some(Secret::new(token)),
        discovery: false,
        ..splitdial_tui::config::Config::default()
    }
}

async fn actions_of(
    network: &splitdial_tui::effects::Network,
    effect: splitdial_tui::app::Effect,
) -> Vec<splitdial_tui::app::Action> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::time::timeout(LIMIT, network.perform(effect, tx))
        .await
        .unwrap();
    let mut actions = Vec::new();
    while let Ok(action) = rx.try_recv() {
        actions.push(action);
    }
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_come_back_as_actions() {
    use splitdial_tui::app::{Action, Effect};
    use splitdial_tui::effects::Network;
    let w = world().await;
    let state = tempfile::tempdir().unwrap();
    let network = Network::new(&config_for(&w.base, &w.alice))
        .unwrap()
        .remember_calls_in(Some(state.path().to_owned()));

    let actions = actions_of(&network, Effect::LoadMe).await;
    assert!(matches!(&actions[..], [Action::Me(Ok(me))] if me.name == "alice"));
    let actions = actions_of(
        &network,
        Effect::LoadRoutes {
            callee: "dave".into(),
            talkers: vec![],
            video: false,
        },
    )
    .await;
    match &actions[..] {
        [
            Action::Routes {
                callee,
                result:
                    Err(Problem::Refused {
                        code,
                        callee_servers,
                        ..
                    }),
            },
        ] => {
            assert_eq!(callee, "dave");
            assert_eq!(code, "no_shared_server");
            assert_eq!(callee_servers, &["work.example"]);
        }
        other => panic!("{other:?}"),
    }

    // Place a call, follow it to its end: each event, in order, and no
    // "stream lost" after a final state. The call is remembered.
    let actions = actions_of(
        &network,
        Effect::PlaceCall {
            callee: "bob".into(),
            talkers: vec!["alice-tv".into()],
            video: false,
        },
    )
    .await;
    let [Action::CallPlaced(Ok(call))] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        splitdial_tui::effects::last_call(state.path()).as_deref(),
        Some(call.call.as_str())
    );
    let actions = actions_of(
        &network,
        Effect::FollowCall {
            call: call.call.clone(),
        },
    )
    .await;
    let seqs: Vec<i64> = actions
        .iter()
        .map(|a| match a {
            Action::CallEvent(e) => e.seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(matches!(actions.last(), Some(Action::CallEvent(e)) if e.state == CallState::Ended));
    let actions = actions_of(
        &network,
        Effect::HangUp {
            call: call.call.clone(),
        },
    )
    .await;
    assert!(matches!(&actions[..], [Action::HungUp(Ok(()))]));

    // Without a matcher URL every matcher effect says what is missing.
    let mut config = config_for(&w.base, &w.alice);
    config.matcher_url = None;
    let unconfigured = Network::new(&config).unwrap().remember_calls_in(None);
    let actions = actions_of(&unconfigured, Effect::LoadContacts).await;
    assert!(matches!(
        &actions[..],
        [Action::Contacts(Err(Problem::Refused { code, .. }))] if code == "not_configured"
    ));
    let actions = actions_of(&unconfigured, Effect::FollowCall { call: "c".into() }).await;
    assert!(matches!(&actions[..], [Action::CallStreamLost(_)]));
    w.matcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_talkers_listing_verifies_lan_and_manual_addresses_with_the_registry_key() {
    use discovery::{TalkerAd, TalkerId, TalkerState};
    use splitdial_tui::commands::talkers::merge;
    use splitdial_tui::config::ManualTalker;
    use splitdial_tui::model::RegisteredTalker;

    let tv_key = SigningKey::from_bytes(&[7; 32]);
    let registered = |id: &str, key: &SigningKey, online: bool| RegisteredTalker {
        id: id.into(),
        name: format!("{id} device"),
        kind: TalkerKind::Tv,
        media: Media::Audio,
        public_key: STANDARD.encode(key.verifying_key().as_bytes()),
        software: Default::default(),
        online,
        last_seen: None,
        accounts: vec![],
    };
    let (tv_addr, _) = fake_talker(tv_key.clone(), "tv", Talker::Honest).await;
    // "pc" is advertised on the LAN but answers with another device's key.
    let (pc_addr, _) = fake_talker(SigningKey::from_bytes(&[9; 32]), "pc", Talker::Honest).await;
    let ad = |id: &str, addr: SocketAddr| TalkerAd {
        id: TalkerId::new(id).unwrap(),
        instance: format!("{id} instance"),
        kind: discovery::TalkerKind::Tv,
        media: discovery::Media::Audio,
        servers: vec![],
        state: TalkerState::Idle,
        addresses: vec![addr.ip()],
        port: addr.port(),
    };
    let registry = vec![
        registered("tv", &tv_key, true),
        registered("pc", &SigningKey::from_bytes(&[10; 32]), true),
        registered("phone", &SigningKey::from_bytes(&[11; 32]), true),
        registered("old", &SigningKey::from_bytes(&[12; 32]), false),
        registered("manual-tv", &tv_key, true),
    ];
    let lan = vec![
        ad("tv", tv_addr),
        ad("pc", pc_addr),
        ad("stranger", pc_addr),
    ];
    let mut config = config_for("http://127.0.0.1:9", "t");
    // The manual entry points at the "tv" fake, which answers as "tv": not
    // the id asked, so not verified as "manual-tv".
    config.talkers = vec![ManualTalker {
        id: "manual-tv".into(),
        address: tv_addr,
    }];
    let rows = merge(&TalkerClient::new().unwrap(), &registry, &lan, &config).await;
    let row = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row("tv").status, "verified");
    assert_eq!(row("tv").address, Some(tv_addr));
    assert_eq!(row("tv").seen, Some("lan"));
    assert_eq!(row("pc").status, "unverified");
    assert!(
        row("pc").reason.as_deref().unwrap().contains("another key"),
        "{:?}",
        row("pc")
    );
    assert_eq!(row("phone").status, "not_on_lan");
    assert_eq!(row("old").status, "offline");
    assert_eq!(row("manual-tv").status, "unverified");
    assert_eq!(row("manual-tv").seen, Some("manual"));
    assert_eq!(row("stranger").status, "not_mine");
    assert_eq!(row("stranger").online, None);
    assert_eq!(rows.len(), 6);
    // The JSON shape the scripts read.
    let json = serde_json::to_value(row("tv")).unwrap();
    for key in [
        "id", "name", "kind", "media", "status", "online", "seen", "address", "state", "reason",
        "accounts",
    ] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
}
