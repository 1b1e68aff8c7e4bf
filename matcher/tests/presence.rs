//! Presence of a plain SIP phone (a contact with no talker agent): the matcher
//! asks through the real sip-server with OPTIONS, and route ranking marks the
//! route offline while the phone is not registered and online once it is.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use matcher::api::ApiSettings;
use matcher::auth::{SecretKind, new_secret, secret_hash};
use matcher::calls::CallTimeouts;
use matcher::registry::{ContactTarget, ControllerTrust, Server, Transport};
use matcher::server::{MatcherConfig, RunningMatcher};
use matcher::storage::Store;
use rsipstack::sip::SipMessage;
use serde_json::{Value, json};
use sip_server::ServerConfig;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The test CA and the matcher certificate it issued, one for the whole test binary.
static PKI: std::sync::LazyLock<testbed::TestPki> = std::sync::LazyLock::new(testbed::TestPki::new);

/// HTTPS with the test PKI's matcher certificate.
fn https() -> matcher::http_listener::Transport {
    matcher::http_listener::Transport::Tls(PKI.served_certificate())
}

const DOMAIN: &str = "family.example";

/// A desk phone: registers `desk` and answers every request 200.
async fn desk_phone(server: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-desk-reg;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:desk@{DOMAIN}>;tag=desk1\r\n\
         To: <sip:desk@{DOMAIN}>\r\n\
         Call-ID: desk-register@{local}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:desk@{local}>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(register.as_bytes(), server).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        // Bounded: the test ends long before.
        for _ in 0..1000 {
            let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_secs(60), socket.recv_from(&mut buf)).await
            else {
                return;
            };
            if let Ok(SipMessage::Request(request)) = SipMessage::try_from(&buf[..n]) {
                let ok = splitdial_sip::wire::response_to(&request, 200, "OK", vec![]);
                let _ = socket.send_to(&ok.to_bytes(), from).await;
            }
        }
    })
}

async fn routes_online(base: &str, token: &str) -> Option<bool> {
    let reply: Value = PKI
        .client()
        .get(format!("{base}/v1/routes?callee=desk"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["routes"][0]["online"].as_bool()
}

async fn wait_for(base: &str, token: &str, wanted: bool) {
    let what = format!("the route online={wanted}");
    testbed::wait_until_async(&what, Duration::from_secs(20), || async move {
        (routes_online(base, token).await == Some(wanted)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_phone_is_offline_until_it_registers() {
    // Open registration; the controller is trusted by address over TCP.
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.trusted = vec!["127.0.0.1".parse().unwrap()];
    let sip = sip_server::start(config).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("m.db").display());
    let store = Store::open(&db).await.unwrap();
    let alice = store.add_user("alice", "Alice").await.unwrap();
    store
        .add_server(&Server {
            domain: DOMAIN.into(),
            proxy: sip.local_addr().to_string(),
            transport: Transport::Tcp,
            cost: 1,
            trust: ControllerTrust::Address,
        })
        .await
        .unwrap();
    store
        .add_contact(
            alice.id,
            "desk",
            &ContactTarget::Address {
                aor: format!("sip:desk@{DOMAIN}"),
                server: DOMAIN.into(),
            },
        )
        .await
        .unwrap();
    let token = new_secret(SecretKind::UserToken);
    store
        .add_api_token(
            alice.id,
            &secret_hash(SecretKind::UserToken, &token).unwrap(),
            "t",
        )
        .await
        .unwrap();
    let enroll = new_secret(SecretKind::Enrollment);
    store
        .add_enrollment_token(
            alice.id,
            &secret_hash(SecretKind::Enrollment, &enroll).unwrap(),
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
            heartbeat_interval: Duration::from_secs(1),
            max_heartbeat_age: Duration::from_secs(60),
            ..ApiSettings::default()
        },
        timeouts: CallTimeouts::default(),
    })
    .await
    .unwrap();
    let base = matcher.base_url();
    let client = PKI.client();

    // Alice's talker, enrolled and online (its heartbeat says registered).
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let enrolled: Value = client
        .post(format!("{base}/v1/talkers"))
        .bearer_auth(&enroll)
        .json(&json!({
            "id": "alice-tv", "public_key": STANDARD.encode(key.verifying_key().as_bytes()),
            "name": "TV", "kind": "tv", "media": "audio",
            "accounts": [{"aor": format!("sip:alice@{DOMAIN}"), "server": DOMAIN}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = enrolled["credential"].as_str().unwrap().to_owned();
    let beat = client
        .post(format!("{base}/v1/talkers/alice-tv/heartbeat"))
        .bearer_auth(&credential)
        .json(&json!({"state": "idle", "accounts": [{"aor": format!("sip:alice@{DOMAIN}"), "registered": true}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), 200);

    // Not registered: the server answers the probe 480 -> the route is offline.
    wait_for(&base, &token, false).await;
    // The phone registers and answers OPTIONS -> online at the next round.
    let phone = desk_phone(sip.local_addr()).await;
    wait_for(&base, &token, true).await;

    phone.abort();
    matcher.shutdown().await;
    sip.shutdown().await;
}
