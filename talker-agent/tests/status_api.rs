//! The local status API over real HTTP on 127.0.0.1: the status shape (with an
//! account really registered at a `sip-server`), the signed challenge, owner
//! actions that need a valid, unused owner token for that action and call, and
//! the guards (Host, content type, body size, rate limit, no CORS).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use discovery::challenge::Challenge;
use ed25519_dalek::{Signature, VerifyingKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use splitdial_api::{AccountState, Held, TalkerCallKind, TalkerCallState};
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use talker_agent::calls::{CallEntry, Calls, OwnerAction};
use talker_agent::identity::Identity;
use talker_agent::registration::AccountHandle;
use talker_agent::status_api::{self, CHALLENGE_BURST, MAX_BODY_BYTES, StatusState};
use talker_agent::trust::Trust;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TALKER: &str = "tv-1";

struct Rig {
    addr: SocketAddr,
    client: reqwest::Client,
    calls: Calls,
    issuer: Issuer,
    identity: Arc<Identity>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn rig(accounts: Vec<AccountHandle>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let identity = Arc::new(Identity::load_or_create(&dir.path().join("state")).unwrap());
    let trust = Arc::new(Trust::new(TALKER));
    let seed: [u8; 32] = rand::random();
    let probe = Issuer::new(seed, "-");
    let kid = trust
        .pin_base64(&STANDARD.encode(probe.verifying_key().to_bytes()))
        .unwrap();
    assert_eq!(kid, key_id(&probe.verifying_key()));
    let issuer = Issuer::new(seed, kid);
    let calls = Calls::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let state = StatusState {
        talker_id: TALKER.into(),
        name: "Living room TV".into(),
        kind: splitdial_api::TalkerKind::Tv,
        media: vec![splitdial_api::Media::Audio, splitdial_api::Media::Video],
        accounts,
        calls: calls.clone(),
        trust,
        identity: identity.clone(),
    };
    let server = tokio::spawn(status_api::serve(listener, state, stop.clone()));
    Rig {
        addr,
        client: splitdial_tls::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        calls,
        issuer,
        identity,
        stop,
        server,
        _dir: dir,
    }
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn owner_token(&self, act: Action, dlg: &str) -> String {
        self.issuer.issue(TokenKind::Owner, &claims(act, dlg))
    }

    async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn act(&self, id: u64, action: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.post_json(&format!("/v1/calls/{id}/{action}"), token, &json!({}))
            .await
    }

    async fn stop(self) {
        self.stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("serve() did not return after shutdown");
        result.unwrap().unwrap();
    }
}

fn claims(act: Action, dlg: &str) -> Claims {
    let now = unix_now();
    Claims {
        aud: TALKER.into(),
        jti: format!("j{}", rand::random::<u64>()),
        iat: now,
        exp: now + 20,
        call: "call-1".into(),
        dlg: dlg.into(),
        act,
        target: None,
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// Sends one raw HTTP/1.1 request and reads the whole answer (status, text).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("no answer")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_identity_registered_accounts_and_calls_without_secrets() {
    // A real registration: sip-server in-process, our endpoint, registration::spawn.
    const PASSWORD: &str = "alice-very-secret-pw";
    let mut config = sip_server::ServerConfig::new("127.0.0.1:0".parse().unwrap(), "home.example");
    config.users = Some(
        sip_server::users::UserDirectory::parse(
            &format!("[users.alice]\npassword = \"{PASSWORD}\"\n"),
            "home.example",
        )
        .unwrap(),
    );
    let sip_server = sip_server::start(config).await.unwrap();
    let cancel = CancellationToken::new();
    let bound = splitdial_sip::endpoint::bind(splitdial_sip::endpoint::EndpointConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        user_agent: "status-api-test".into(),
        proxy: false,
        inspector: None,
        cancel: cancel.clone(),
        known_domains: vec![("home.example".into(), sip_server.local_addr())],
    })
    .await
    .unwrap();
    let inner = bound.endpoint.inner.clone();
    let endpoint = bound.endpoint;
    let endpoint_task = tokio::spawn(async move { endpoint.serve().await });
    let stop_registration = CancellationToken::new();
    let (account, registration) = talker_agent::registration::spawn(
        inner,
        bound.flows.clone(),
        talker_agent::registration::RegistrationPlan {
            domain: "home.example".into(),
            proxy: sip_server.local_addr(),
            tcp: false,
            user: "alice".into(),
            password: PASSWORD.into(),
            expires: 300,
            contact_addr: bound.local,
            instance: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
        },
        stop_registration.clone(),
    );
    testbed::wait_until_async("alice registered", Duration::from_secs(20), || {
        let registered = matches!(account.state(), AccountState::Registered { .. });
        std::future::ready(registered.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", account.state()));

    let rig = rig(vec![account]).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let call = rig.calls.add(
        TalkerCallKind::Incoming,
        TalkerCallState::Connected,
        "sip-call-1@x",
        "sip:bob@home.example",
        Some(tx),
    );
    // The media engine's statistics type, whatever it holds, as it starts out.
    call.set_media(Default::default());
    // Held by the far end, which pressed 1, 2, #.
    call.set_held(Some(Held::ByPeer));
    for digit in ['1', '2', '#'] {
        call.record_dtmf(digit);
    }

    let response = rig.client.get(rig.url("/v1/status")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        !headers
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    );
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD),
        "the status leaks the password: {text}"
    );
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["id"], TALKER);
    assert_eq!(status["name"], "Living room TV");
    assert_eq!(status["kind"], "tv");
    assert_eq!(status["media"], json!(["audio", "video"]));
    let account = &status["accounts"][0];
    assert_eq!(account["aor"], "sip:alice@home.example");
    assert_eq!(account["state"], "registered", "{status}");
    assert!(account["expires"].as_u64().unwrap() > 0);
    assert!(
        account["gruu"]
            .as_str()
            .is_some_and(|g| g.starts_with("sip:")),
        "sip-server hands out GRUUs: {account}"
    );
    let calls = status["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], call.id());
    assert_eq!(calls[0]["kind"], "incoming");
    assert_eq!(calls[0]["state"], "connected");
    assert_eq!(calls[0]["sip_call_id"], "sip-call-1@x");
    assert_eq!(calls[0]["peer"], "sip:bob@home.example");
    assert!(
        calls[0]["media"].is_object(),
        "media statistics: {}",
        calls[0]
    );
    assert_eq!(calls[0]["held"], "by_peer");
    assert_eq!(calls[0]["dtmf_received"], "12#");
    let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "unexpected fields: {keys:?}");
    // Resumed: not held any more; the digits stay with the call.
    call.set_held(None);
    let status: Value = rig
        .client
        .get(rig.url("/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["calls"][0]["held"], Value::Null, "{status}");
    assert_eq!(status["calls"][0]["dtmf_received"], "12#");
    drop(call);

    // Unknown endpoints and methods answer with the JSON error shape.
    let (code, body) = {
        let r = rig.client.get(rig.url("/v1/nothing")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = rig
        .client
        .get(rig.url("/v1/challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        error_code(&r.json::<Value>().await.unwrap()),
        "method_not_allowed"
    );

    rig.stop().await;
    stop_registration.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), registration).await;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint_task).await;
    sip_server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_is_signed_by_the_talker_key_and_binds_the_dialed_address() {
    let rig = rig(Vec::new()).await;
    let nonce = "dialer-nonce-0123456789abcdef";
    let dialed = rig.addr.to_string();
    let (code, body) = rig
        .post_json(
            "/v1/challenge",
            None,
            &json!({"nonce": nonce, "dialed": dialed}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["talker_id"], TALKER);
    let talker_nonce = body["talker_nonce"].as_str().unwrap();
    assert!(talker_nonce.len() >= 16);
    let key_bytes: [u8; 32] = STANDARD
        .decode(body["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&key_bytes).unwrap();
    assert_eq!(key, rig.identity.public_key());
    let signature_bytes: [u8; 64] = STANDARD
        .decode(body["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signature = Signature::from_bytes(&signature_bytes);
    let challenge = Challenge {
        talker_id: TALKER,
        dialer_nonce: nonce,
        talker_nonce,
        dialed: &dialed,
    };
    assert!(challenge.verify(&key, &signature));
    // The same signature is worthless for another address, nonce or talker.
    assert!(
        !Challenge {
            dialed: "10.0.0.9:8420",
            ..challenge.clone()
        }
        .verify(&key, &signature)
    );
    assert!(
        !Challenge {
            dialer_nonce: "dialer-nonce-0123456789abcdeX",
            ..challenge.clone()
        }
        .verify(&key, &signature)
    );
    assert!(
        !Challenge {
            talker_id: "tv-2",
            ..challenge.clone()
        }
        .verify(&key, &signature)
    );

    // A second challenge gets a fresh talker nonce.
    let (_, again) = rig
        .post_json(
            "/v1/challenge",
            None,
            &json!({"nonce": nonce, "dialed": dialed}),
        )
        .await;
    assert_ne!(again["talker_nonce"], body["talker_nonce"]);

    // Bad input: 400 with a reason, never a signature. (Bad requests use up
    // the rate limit too: let the bucket refill first.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (bad, expected) in [
        (json!({"nonce": "short", "dialed": dialed}), "bad_nonce"),
        (
            json!({"nonce": "x".repeat(200), "dialed": dialed}),
            "bad_nonce",
        ),
        (
            json!({"nonce": "a nonce with spaces!", "dialed": dialed}),
            "bad_nonce",
        ),
        (json!({"nonce": nonce, "dialed": "no-port"}), "bad_dialed"),
        (
            json!({"nonce": nonce, "dialed": "evil\u{0}:1"}),
            "bad_dialed",
        ),
        (json!({"nonce": nonce}), "bad_json"),
        (
            json!({"nonce": nonce, "dialed": dialed, "extra": 1}),
            "bad_json",
        ),
    ] {
        let (code, body) = rig.post_json("/v1/challenge", None, &bad).await;
        assert_eq!(
            (code, error_code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{bad}"
        );
        assert!(body.get("signature").is_none());
    }
    rig.stop().await;
}

/// A ringing incoming call whose owner actions land in the returned channel.
fn ringing(rig: &Rig, sip_call_id: &str) -> (CallEntry, mpsc::UnboundedReceiver<OwnerAction>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let entry = rig.calls.add(
        TalkerCallKind::Incoming,
        TalkerCallState::Ringing,
        sip_call_id,
        "sip:bob@home.example",
        Some(tx),
    );
    (entry, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_actions_need_a_valid_unused_owner_token_for_that_call_and_action() {
    let rig = rig(Vec::new()).await;
    let (call, mut actions) = ringing(&rig, "ring-1@x");
    let id = call.id();

    // Missing, malformed, forged, wrong kind, wrong call, wrong action: 401.
    let (code, body) = rig.act(id, "answer", None).await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "missing_token")
    );
    let r = rig
        .client
        .post(rig.url(&format!("/v1/calls/{id}/answer")))
        .header("Authorization", "Basic YWxpY2U6cHc=")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let forger = Issuer::new(rand::random(), rig.issuer.kid());
    let forged = forger.issue(TokenKind::Owner, &claims(Action::Answer, "ring-1@x"));
    let call_kind = rig
        .issuer
        .issue(TokenKind::Call, &claims(Action::Answer, "ring-1@x"));
    let other_call = rig.owner_token(Action::Answer, "another-call@x");
    let other_action = rig.owner_token(Action::Decline, "ring-1@x");
    let mut other_talker = claims(Action::Answer, "ring-1@x");
    other_talker.aud = "tv-2".into();
    let other_talker = rig.issuer.issue(TokenKind::Owner, &other_talker);
    let mut expired = claims(Action::Answer, "ring-1@x");
    expired.iat -= 120;
    expired.exp -= 120;
    let expired = rig.issuer.issue(TokenKind::Owner, &expired);
    for (what, token) in [
        ("garbage", "not.a.token"),
        ("forged", forged.as_str()),
        ("call token", call_kind.as_str()),
        ("other call", other_call.as_str()),
        ("other action", other_action.as_str()),
        ("other talker", other_talker.as_str()),
        ("expired", expired.as_str()),
    ] {
        let (code, body) = rig.act(id, "answer", Some(token)).await;
        assert_eq!(
            (code, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "bad_token"),
            "{what}"
        );
    }
    assert!(
        actions.try_recv().is_err(),
        "a refused token reached the call"
    );

    // A valid token, but not JSON: 415 and nothing happens.
    let valid = rig.owner_token(Action::Answer, "ring-1@x");
    let r = rig
        .client
        .post(rig.url(&format!("/v1/calls/{id}/answer")))
        .bearer_auth(&valid)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        error_code(&r.json().await.unwrap()),
        "unsupported_media_type"
    );
    assert!(actions.try_recv().is_err());

    // The valid token works once.
    let (code, body) = rig.act(id, "answer", Some(&valid)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(actions.try_recv().unwrap(), OwnerAction::Answer);
    let (code, body) = rig.act(id, "answer", Some(&valid)).await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "bad_token"),
        "replay"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replayed")
    );
    assert!(actions.try_recv().is_err());

    // Answered: answering again is a conflict; hanging up works.
    call.set_state(TalkerCallState::Connected);
    let (code, body) = rig
        .act(
            id,
            "answer",
            Some(&rig.owner_token(Action::Answer, "ring-1@x")),
        )
        .await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::CONFLICT, "action_not_applicable")
    );
    let (code, _) = rig
        .act(
            id,
            "hangup",
            Some(&rig.owner_token(Action::Hangup, "ring-1@x")),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(actions.try_recv().unwrap(), OwnerAction::Hangup);

    // Decline reaches a second ringing call.
    let (second, mut second_actions) = ringing(&rig, "ring-2@x");
    let (code, _) = rig
        .act(
            second.id(),
            "decline",
            Some(&rig.owner_token(Action::Decline, "ring-2@x")),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(second_actions.try_recv().unwrap(), OwnerAction::Decline);

    // A control leg takes no owner actions, even with a valid token: 409.
    let control = rig.calls.add(
        TalkerCallKind::Control,
        TalkerCallState::Connected,
        "ctl-1@x",
        "sip:ctl@x",
        None,
    );
    let (code, body) = rig
        .act(
            control.id(),
            "hangup",
            Some(&rig.owner_token(Action::Hangup, "ctl-1@x")),
        )
        .await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::CONFLICT, "action_not_applicable")
    );

    // Unknown calls and actions: 404.
    let token = rig.owner_token(Action::Hangup, "ring-1@x");
    let (code, body) = rig.act(9999, "hangup", Some(&token)).await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::NOT_FOUND, "no_such_call")
    );
    let (code, body) = rig
        .post_json("/v1/calls/not-a-number/hangup", Some(&token), &json!({}))
        .await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::NOT_FOUND, "no_such_call")
    );
    let (code, body) = rig
        .post_json(&format!("/v1/calls/{id}/explode"), Some(&token), &json!({}))
        .await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // A body that is not an empty object: 400.
    let (code, body) = rig
        .post_json(
            &format!("/v1/calls/{id}/hangup"),
            Some(&token),
            &json!({"x": 1}),
        )
        .await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_json")
    );
    assert!(actions.try_recv().is_err());
    drop((call, second, control));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_are_refused_and_no_cors_headers_are_sent() {
    let rig = rig(Vec::new()).await;
    let port = rig.addr.port();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        let r = rig
            .client
            .get(rig.url("/v1/status"))
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{host}");
        assert_eq!(error_code(&r.json().await.unwrap()), "host_not_allowed");
        let r = rig
            .client
            .post(rig.url("/v1/challenge"))
            .header("Host", &host)
            .json(&json!({"nonce": "dialer-nonce-0123456789", "dialed": "10.0.0.1:1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{host}");
    }
    for host in [
        format!("splitdial-tv-1.local:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let r = rig
            .client
            .get(rig.url("/v1/status"))
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }

    // Absolute-form request line naming a foreign host: refused too.
    let (code, _) = raw(
        rig.addr,
        b"GET http://evil.example/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 403);
    // No Host at all (HTTP/1.0): refused.
    let (code, text) = raw(rig.addr, b"GET /v1/status HTTP/1.0\r\n\r\n").await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("missing_host"), "{text}");

    // A CORS preflight from a web page gets no Access-Control header.
    let r = rig
        .client
        .request(reqwest::Method::OPTIONS, rig.url("/v1/challenge"))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(!r.status().is_success());
    assert!(
        !r.headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    );
    let r = rig
        .client
        .get(rig.url("/v1/status"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !r.headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused_declared_or_chunked() {
    let rig = rig(Vec::new()).await;
    let (call, mut actions) = ringing(&rig, "ring-1@x");
    let big = json!({"nonce": "dialer-nonce-0123456789", "dialed": "a".repeat(MAX_BODY_BYTES)});
    let (code, body) = rig.post_json("/v1/challenge", None, &big).await;
    assert_eq!(
        (code, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    let token = rig.owner_token(Action::Hangup, "ring-1@x");
    let (code, _) = rig
        .post_json(
            &format!("/v1/calls/{}/hangup", call.id()),
            Some(&token),
            &json!({"pad": "x".repeat(MAX_BODY_BYTES)}),
        )
        .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, so no Content-Length announces it: refused while reading.
    let chunk = "x".repeat(1000);
    let mut request = format!(
        "POST /v1/calls/{}/hangup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        call.id()
    );
    for _ in 0..6 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let (code, text) = raw(rig.addr, request.as_bytes()).await;
    assert_eq!(code, 413, "{text}");
    assert!(actions.try_recv().is_err(), "an oversize request acted");
    // The token was never looked at, so it still works with a proper body.
    let (code, _) = rig
        .post_json(
            &format!("/v1/calls/{}/hangup", call.id()),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(actions.try_recv().unwrap(), OwnerAction::Hangup);
    drop(call);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_are_rate_limited_then_served_again() {
    let rig = rig(Vec::new()).await;
    let body = json!({"nonce": "dialer-nonce-0123456789", "dialed": rig.addr.to_string()});
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..40 {
        let response = rig
            .client
            .post(rig.url("/v1/challenge"))
            .json(&body)
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert!(response.headers().contains_key("retry-after"));
                assert_eq!(error_code(&response.json().await.unwrap()), "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= CHALLENGE_BURST as usize, "only {ok} served");
    assert!(limited > 0, "40 challenges back to back were all served");
    // The status endpoint is not limited by the challenge bucket.
    let r = rig.client.get(rig.url("/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, _) = rig.post_json("/v1/challenge", None, &body).await;
    assert_eq!(code, StatusCode::OK, "the bucket did not refill");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_promptly_with_idle_and_stalled_connections_open() {
    let rig = rig(Vec::new()).await;
    // An idle keep-alive connection (the client's pool) ...
    let r = rig.client.get(rig.url("/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // ... and one that sent half a request head and stalls.
    let mut stalled = tokio::net::TcpStream::connect(rig.addr).await.unwrap();
    stalled
        .write_all(b"GET /v1/status HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let addr = rig.addr;
    let start = Instant::now();
    rig.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
