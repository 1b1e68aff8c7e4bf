//! Enrollment and heartbeats. Most tests run against `ContractMatcher`: a
//! STAND-IN for the matcher that implements only the talker side of its HTTP
//! contract (notes/matcher-contract.md: `POST /v1/talkers`,
//! `POST /v1/talkers/{id}/heartbeat`) strictly — bearer checks, exact body
//! fields, one-time enrollment token — records what it received, and can be
//! told to rotate keys, move its clock or fail. The last test runs the same
//! flow against the real `matcher` binary (built by `cargo build --workspace`).
//! The SIP side is real: an in-process `sip-server`, and control INVITEs sent
//! over UDP.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsipstack::sip::SipMessage;
use serde::Deserialize;
use serde_json::{Value, json};
use sip_server::ServerConfig;
use sip_server::users::UserDirectory;
use splitdial_sip::call_token::{Action, Claims, Issuer, TokenKind, key_id, unix_now};
use splitdial_sip::headers;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::{Process, Spawn};
use tokio::net::UdpSocket;

const TOKEN: &str = "enroll-token-1";
const CREDENTIAL: &str = "talker-credential-1";
const OWNER: &str = "alice";
const DOMAIN: &str = "home.example";

// ---------------------------------------------------------------------------
// The stand-in matcher.

/// How the stand-in answers heartbeats right now.
#[derive(Clone)]
struct HeartbeatAnswer {
    keys: Vec<Value>,
    /// The kids whose keys sign the key set; `None`: every key of the set, as
    /// the matcher does.
    signed_by: Option<Vec<String>>,
    /// Added to the real time in the reply.
    clock_offset: f64,
    /// Answer 503 (with a key list in the body that must not be used).
    fail: bool,
}

struct ContractState {
    known_servers: Vec<String>,
    token_used: Mutex<bool>,
    enroll_keys: Vec<Value>,
    enrolled: Mutex<Option<Value>>,
    heartbeat: Mutex<HeartbeatAnswer>,
    heartbeats: Mutex<Vec<Value>>,
}

struct ContractMatcher {
    addr: SocketAddr,
    state: Arc<ContractState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ContractMatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Parsed to check the shape; the raw JSON is recorded.
struct EnrollBody {
    id: String,
    public_key: String,
    name: String,
    kind: String,
    media: String,
    instance: String,
    accounts: Vec<EnrollAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollAccount {
    aor: String,
    server: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HeartbeatBody {
    state: String,
    accounts: Vec<HeartbeatAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HeartbeatAccount {
    aor: String,
    registered: bool,
    gruu: Option<String>,
}

async fn enroll(State(s): State<Arc<ContractState>>, headers: HeaderMap, body: Bytes) -> Response {
    if bearer(&headers) != Some(TOKEN) || *s.token_used.lock().unwrap() {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "enrollment token unknown, used or expired",
        );
    }
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "JSON only",
        );
    }
    let parsed: EnrollBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &e.to_string(),
            );
        }
    };
    let key_ok = STANDARD
        .decode(&parsed.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
    let accounts_ok = !parsed.accounts.is_empty()
        && parsed.accounts.iter().all(|a| {
            s.known_servers.contains(&a.server)
                && a.aor.starts_with("sip:")
                && a.aor.ends_with(&format!("@{}", a.server))
        });
    if !key_ok
        || !accounts_ok
        || parsed.id.is_empty()
        || !["audio", "video"].contains(&parsed.media.as_str())
        || !parsed.instance.starts_with("urn:uuid:")
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "bad key, account or field",
        );
    }
    *s.token_used.lock().unwrap() = true;
    *s.enrolled.lock().unwrap() = Some(serde_json::from_slice(&body).unwrap());
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "talker_id": parsed.id,
            "owner": OWNER,
            "credential": CREDENTIAL,
            "keys": s.enroll_keys,
            "time": unix_seconds(),
        })),
    )
        .into_response()
}

async fn heartbeat(
    State(s): State<Arc<ContractState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let enrolled_id = s
        .enrolled
        .lock()
        .unwrap()
        .as_ref()
        .map(|e| e["id"].as_str().unwrap().to_owned());
    if enrolled_id.as_deref() != Some(id.as_str()) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such talker");
    }
    if bearer(&headers) != Some(CREDENTIAL) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "bad credential");
    }
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "JSON only",
        );
    }
    let parsed: HeartbeatBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &e.to_string(),
            );
        }
    };
    if !["idle", "busy"].contains(&parsed.state.as_str()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "state");
    }
    s.heartbeats
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    let answer = s.heartbeat.lock().unwrap().clone();
    if answer.fail {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "error": {"code": "unavailable", "message": "try later"},
                "keys": answer.keys, "time": unix_seconds() + 5000.0, "interval_s": 1,
            })),
        )
            .into_response();
    }
    // Whole milliseconds, as the matcher sends them.
    let time = ((unix_seconds() + answer.clock_offset) * 1000.0).round() / 1000.0;
    axum::Json(json!({
        "time": time,
        "keys": answer.keys,
        "interval_s": 1,
        "signatures": sign_key_set(&id, time, &answer),
    }))
    .into_response()
}

/// Every key made by [`matcher_key`], by kid: the stand-in signs with them.
static SIGNING_KEYS: Mutex<Vec<(String, ed25519_dalek::SigningKey)>> = Mutex::new(Vec::new());

/// The signatures of a heartbeat reply's key set, as `docs/talker-agent.md`
/// ("Trust") defines them.
fn sign_key_set(talker: &str, time: f64, answer: &HeartbeatAnswer) -> Vec<Value> {
    use ed25519_dalek::Signer;
    let keys: Vec<splitdial_api::MatcherKey> = answer
        .keys
        .iter()
        .map(|k| serde_json::from_value(k.clone()).unwrap())
        .collect();
    let kids = answer
        .signed_by
        .clone()
        .unwrap_or_else(|| keys.iter().map(|k| k.kid.clone()).collect());
    let input =
        splitdial_api::key_set_signing_input(talker, splitdial_api::time_ms(time).unwrap(), &keys);
    let signing = SIGNING_KEYS.lock().unwrap();
    kids.iter()
        .filter_map(|kid| signing.iter().find(|(k, _)| k == kid))
        .map(|(kid, key)| {
            json!({"kid": kid, "signature": STANDARD.encode(key.sign(&input).to_bytes())})
        })
        .collect()
}

impl ContractMatcher {
    async fn start(enroll_keys: Vec<Value>) -> Self {
        let state = Arc::new(ContractState {
            known_servers: vec![DOMAIN.into(), "pbx.example".into()],
            token_used: Mutex::new(false),
            heartbeat: Mutex::new(HeartbeatAnswer {
                keys: enroll_keys.clone(),
                signed_by: None,
                clock_offset: 0.0,
                fail: false,
            }),
            enroll_keys,
            enrolled: Mutex::new(None),
            heartbeats: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/v1/talkers", post(enroll))
            .route("/v1/talkers/{id}/heartbeat", post(heartbeat))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heartbeats(&self) -> Vec<Value> {
        self.state.heartbeats.lock().unwrap().clone()
    }

    fn answer_heartbeats(&self, answer: HeartbeatAnswer) {
        *self.state.heartbeat.lock().unwrap() = answer;
    }
}

// ---------------------------------------------------------------------------
// Keys, config, processes.

fn matcher_key() -> (Issuer, Value) {
    let seed: [u8; 32] = rand::random();
    let probe = Issuer::new(seed, "x");
    let kid = key_id(&probe.verifying_key());
    SIGNING_KEYS
        .lock()
        .unwrap()
        .push((kid.clone(), ed25519_dalek::SigningKey::from_bytes(&seed)));
    let issuer = Issuer::new(seed, kid.clone());
    let public = STANDARD.encode(issuer.verifying_key().to_bytes());
    (issuer, json!({"kid": kid, "public_key": public}))
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// A config with `accounts` as (server, proxy, user, password).
fn setup(matcher_url: Option<&str>, id: Option<&str>, accounts: &[(&str, String, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "name = \"Living-room TV\"\nkind = \"tv\"\nmedia = [\"audio\", \"video\"]\nstate_dir = \"{}\"\n",
        dir.path().join("state").display()
    );
    if let Some(url) = matcher_url {
        text.push_str(&format!("matcher_url = \"{url}\"\n"));
    }
    if let Some(id) = id {
        text.push_str(&format!("id = \"{id}\"\n"));
    }
    for (server, proxy, user) in accounts {
        text.push_str(&format!(
            "[[accounts]]\nserver = \"{server}\"\nproxy = \"{proxy}\"\nuser = \"{user}\"\npassword = \"{user}-pw\"\nexpires = 300\n"
        ));
    }
    text.push_str("[discovery]\nenabled = false\n[audio]\nsource = \"none\"\nsink = \"none\"\n");
    let config = dir.path().join("tv.toml");
    testbed::write_private(&config, text).unwrap();
    Setup { dir, config }
}

async fn run_enroll(config: &Path, token: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("enroll")
        .arg("--config")
        .arg(config)
        .arg("--token")
        .arg(token)
        .env_remove("SPLITDIAL_ENROLL_TOKEN")
        .output()
        .await
        .unwrap()
}

fn start_agent(config: &Path) -> (Process, SocketAddr, String) {
    let mut agent = Spawn::new(env!("CARGO_BIN_EXE_talker-agent"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,rsipstack=warn,talker_agent=debug")
        .label("talker-agent")
        .start()
        .unwrap();
    agent
        .wait_for_output("talker-agent ready", Duration::from_secs(20))
        .unwrap();
    let line = agent
        .log()
        .lines()
        .find(|l| l.starts_with("talker-agent ready"))
        .unwrap()
        .to_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = words[words.iter().position(|w| *w == "id").unwrap() + 1].to_owned();
    let sip: SocketAddr = words[words.iter().position(|w| *w == "sip").unwrap() + 1]
        .parse()
        .unwrap();
    (agent, sip, id)
}

async fn wait_until(what: &str, log: impl Fn() -> String, mut check: impl FnMut() -> bool) {
    testbed::wait_until_async(what, Duration::from_secs(30), || {
        std::future::ready(check().then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", log()));
}

// ---------------------------------------------------------------------------
// Tests.

/// The one line that gives the reason of a failure: the last on stderr, and
/// the only one from the program itself (the others are log lines).
fn reason_line(stderr: &str) -> String {
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("talker-agent:"))
        .collect();
    assert_eq!(own.len(), 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().last(), Some(own[0]), "{stderr}");
    own[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_writes_a_private_enrollment_and_sends_key_and_accounts() {
    let (_issuer, key) = matcher_key();
    let matcher = ContractMatcher::start(vec![key.clone()]).await;
    let s = setup(
        Some(&format!("{}/", matcher.url())),
        None,
        &[
            (DOMAIN, "127.0.0.1:9".into(), "alice-tv"),
            ("pbx.example", "127.0.0.1:9".into(), "tv"),
        ],
    );
    let out = run_enroll(&s.config, TOKEN).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // What reached the matcher: our id, our public key, our accounts.
    let sent = matcher.state.enrolled.lock().unwrap().clone().unwrap();
    let seed: [u8; 32] = std::fs::read(s.state_dir().join("talker.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(sent["public_key"], STANDARD.encode(public.to_bytes()));
    let id = sent["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("t-") && id.len() == 18, "{id}");
    assert_eq!(sent["name"], "Living-room TV");
    assert_eq!(sent["kind"], "tv");
    assert_eq!(sent["media"], "video");
    assert_eq!(
        sent["accounts"],
        json!([
            {"aor": "sip:alice-tv@home.example", "server": "home.example"},
            {"aor": "sip:tv@pbx.example", "server": "pbx.example"},
        ])
    );
    assert_eq!(
        stdout.trim(),
        format!("enrolled talker {id} with {} as {OWNER}", matcher.url())
    );

    // What we kept: 0600, exactly the contract's fields, no temporary file.
    let path = s.state_dir().join("enrollment.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let kept: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        kept,
        json!({"matcher_url": matcher.url(), "talker_id": id, "credential": CREDENTIAL, "keys": [key], "tls_pins": []})
    );
    let mut names: Vec<String> = std::fs::read_dir(s.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["enrollment.json", "talker.key"]);
    assert!(!stderr.contains(CREDENTIAL), "{stderr}");

    // The token was one-time: a second enrollment is refused, the file stays.
    let again = run_enroll(&s.config, TOKEN).await;
    assert_eq!(again.status.code(), Some(1));
    let still: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(still, kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_unreachable_enrollment_is_one_line_and_exit_1() {
    let (_issuer, key) = matcher_key();
    let matcher = ContractMatcher::start(vec![key]).await;
    let account = [(DOMAIN, "127.0.0.1:9".to_owned(), "alice-tv")];

    let s = setup(Some(&matcher.url()), None, &account);
    let out = run_enroll(&s.config, "wrong-token").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = reason_line(&stderr);
    assert!(
        reason.contains("401")
            && stderr.contains("unauthorized")
            && reason.contains("enrollment token unknown, used or expired"),
        "{stderr}"
    );
    assert!(!s.state_dir().join("enrollment.json").exists());
    assert!(out.stdout.is_empty());

    // An account on a server the matcher does not know: 422 with its message.
    let s = setup(
        Some(&matcher.url()),
        None,
        &[("elsewhere.example", "127.0.0.1:9".to_owned(), "x")],
    );
    let out = run_enroll(&s.config, TOKEN).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("422 invalid_request"), "{stderr}");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = setup(Some(&closed_url), None, &account);
    let out = run_enroll(&s.config, TOKEN).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(reason_line(&stderr).contains(&closed_url), "{stderr}");

    // Configuration problems stay exit 2: no matcher_url, or plain http:// to a
    // host that is not loopback (TLS is required there).
    let s = setup(None, None, &account);
    let out = run_enroll(&s.config, TOKEN).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matcher_url"));
    let s = setup(Some("http://192.0.2.7:8740"), None, &account);
    let out = run_enroll(&s.config, TOKEN).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("loopback") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_report_the_registration_and_gruu() {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    config.users = Some(
        UserDirectory::parse("[users.alice-tv]\npassword = \"alice-tv-pw\"\n", DOMAIN).unwrap(),
    );
    let server = sip_server::start(config).await.unwrap();
    let (_issuer, key) = matcher_key();
    let matcher = ContractMatcher::start(vec![key]).await;
    let s = setup(
        Some(&matcher.url()),
        None,
        &[(DOMAIN, server.local_addr().to_string(), "alice-tv")],
    );
    assert!(run_enroll(&s.config, TOKEN).await.status.success());
    let (mut agent, _sip, id) = start_agent(&s.config);
    let log = || agent.log();

    let registered = |hb: &Value| {
        hb["accounts"][0]["registered"] == json!(true)
            && hb["accounts"][0]["gruu"]
                .as_str()
                .is_some_and(|g| g.contains(";gr=urn:uuid:"))
    };
    wait_until("a heartbeat with the account registered", log, || {
        matcher.heartbeats().iter().any(registered)
    })
    .await;
    let beats = matcher.heartbeats();
    let first = &beats[0];
    assert_eq!(first["state"], "idle");
    assert_eq!(first["accounts"][0]["aor"], "sip:alice-tv@home.example");
    assert_eq!(first["accounts"].as_array().unwrap().len(), 1);
    let binding = server.context().location.lookup("alice-tv").remove(0);
    let gruu = beats.iter().find(|b| registered(b)).unwrap()["accounts"][0]["gruu"].clone();
    assert_eq!(
        gruu.as_str().unwrap(),
        format!("sip:alice-tv@{DOMAIN};gr={}", binding.instance.unwrap())
    );
    // Heartbeats keep coming at the interval the matcher asked for (1 s).
    let count = matcher.heartbeats().len();
    wait_until(
        "two more heartbeats",
        || agent.log(),
        || matcher.heartbeats().len() >= count + 2,
    )
    .await;
    assert!(!agent.log().contains(CREDENTIAL));
    assert!(agent.log().contains(&id));

    // Shutdown: un-register, then a last heartbeat saying so.
    let status = agent.stop(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{}", agent.log());
    let last = matcher.heartbeats().pop().unwrap();
    assert_eq!(
        last["accounts"][0]["registered"],
        json!(false),
        "{}",
        agent.log()
    );
    server.shutdown().await;
}

// --- Control INVITEs (as in tests/control_leg.rs). ---

const OFFER: &str = "v=0\r\no=ctl 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n";

struct Controller {
    socket: UdpSocket,
    agent: SocketAddr,
    talker: String,
}

impl Controller {
    fn token(&self, issuer: &Issuer, call_id: &str, clock_offset: i64) -> String {
        let now = unix_now().saturating_add_signed(clock_offset);
        issuer.issue(
            TokenKind::Call,
            &Claims {
                aud: self.talker.clone(),
                jti: format!("j{}", rand::random::<u64>()),
                iat: now,
                exp: now + 20,
                call: "call-1".into(),
                dlg: call_id.into(),
                act: Action::Control,
                target: None,
            },
        )
    }

    /// Sends a control INVITE with `token`; the final status (ACKed).
    async fn invite(&self, call_id: &str, token: &str) -> u16 {
        let me = self.socket.local_addr().unwrap();
        let invite = format!(
            "INVITE sip:talker@{agent} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{r}\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=ctl\r\nTo: <sip:alice-tv@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:controller@{me}>\r\nSplitdial-Token: {token}\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{OFFER}",
            agent = self.agent,
            r = rand::random::<u32>(),
            len = OFFER.len(),
        );
        self.socket
            .send_to(invite.as_bytes(), self.agent)
            .await
            .unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(20), self.socket.recv_from(&mut buf))
                    .await
                    .expect("an answer to the INVITE")
                    .unwrap();
            let SipMessage::Response(r) = SipMessage::try_from(&buf[..n]).unwrap() else {
                continue;
            };
            let code = r.status_code.code();
            if headers::first(&r.headers, "Call-ID") != Some(call_id) || code < 200 {
                continue;
            }
            let h = |n: &str| headers::first(&r.headers, n).unwrap_or_default().to_owned();
            // ACK (hop-by-hop for a failure; a new transaction for the 200).
            let via = if code >= 300 {
                h("Via")
            } else {
                format!("SIP/2.0/UDP {me};branch=z9hG4bK{}", rand::random::<u32>())
            };
            let ack = format!(
                "ACK sip:talker@{agent} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                agent = self.agent,
                from = h("From"),
                to = h("To"),
            );
            self.socket
                .send_to(ack.as_bytes(), self.agent)
                .await
                .unwrap();
            return code;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_clock_come_from_signed_heartbeat_replies() {
    let (old_issuer, old_key) = matcher_key();
    let (new_issuer, new_key) = matcher_key();
    let (rogue_issuer, rogue_key) = matcher_key();
    let kid = |key: &Value| key["kid"].as_str().unwrap().to_owned();
    let matcher = ContractMatcher::start(vec![old_key.clone()]).await;
    // No matcher_key in the config: every key comes from the matcher.
    let s = setup(
        Some(&matcher.url()),
        Some("tv-1"),
        &[(DOMAIN, "127.0.0.1:9".into(), "alice-tv")],
    );
    assert!(run_enroll(&s.config, TOKEN).await.status.success());
    let (agent, sip, id) = start_agent(&s.config);
    assert_eq!(id, "tv-1");
    let ctl = Controller {
        socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        agent: sip,
        talker: id,
    };
    let log = || agent.log();
    let stand_in = &matcher;
    let beats = |n: usize| {
        let seen = stand_in.heartbeats().len();
        move || stand_in.heartbeats().len() >= seen + n
    };
    wait_until("the first heartbeat", log, beats(1)).await;

    // The enrolled key works.
    let t = ctl.token(&old_issuer, "c-enrolled", 0);
    assert_eq!(ctl.invite("c-enrolled", &t).await, 200, "{}", agent.log());

    // A rogue key set, signed only by itself or unsigned, is not taken (the
    // first refusal is the one warned about).
    for signed_by in [vec![kid(&rogue_key)], vec![]] {
        matcher.answer_heartbeats(HeartbeatAnswer {
            keys: vec![rogue_key.clone()],
            signed_by: Some(signed_by),
            clock_offset: 0.0,
            fail: false,
        });
        wait_until("two heartbeats with a rogue key", log, beats(2)).await;
    }
    let t = ctl.token(&rogue_issuer, "c-rogue-signed", 0);
    assert_eq!(
        ctl.invite("c-rogue-signed", &t).await,
        403,
        "unsigned rogue key"
    );
    assert!(
        agent
            .log()
            .contains("no signature on the key set checks with a matcher key this talker holds"),
        "{}",
        agent.log()
    );

    // Rotation: the new key set signed by the old key, and a clock 50 s ahead.
    matcher.answer_heartbeats(HeartbeatAnswer {
        keys: vec![new_key.clone()],
        signed_by: Some(vec![kid(&old_key)]),
        clock_offset: 50.0,
        fail: false,
    });
    wait_until("two heartbeats with the new keys", log, beats(2)).await;
    let t = ctl.token(&new_issuer, "c-new", 50);
    assert_eq!(ctl.invite("c-new", &t).await, 200, "{}", agent.log());
    let t = ctl.token(&old_issuer, "c-retired", 50);
    assert_eq!(ctl.invite("c-retired", &t).await, 403, "retired key");
    // On the matcher's clock a token stamped with our (50 s slow) time is stale.
    let t = ctl.token(&new_issuer, "c-stale", 0);
    assert_eq!(
        ctl.invite("c-stale", &t).await,
        403,
        "stale on the matcher's clock"
    );
    let kept: Value =
        serde_json::from_slice(&std::fs::read(s.state_dir().join("enrollment.json")).unwrap())
            .unwrap();
    assert_eq!(kept["keys"], json!([new_key]), "the new key set is kept");

    // A clock jump of more than a minute is refused, the offset kept.
    matcher.answer_heartbeats(HeartbeatAnswer {
        keys: vec![new_key.clone()],
        signed_by: None,
        clock_offset: 111.0,
        fail: false,
    });
    wait_until("two heartbeats with a clock jump", log, beats(2)).await;
    let t = ctl.token(&new_issuer, "c-after-jump", 50);
    assert_eq!(ctl.invite("c-after-jump", &t).await, 200, "{}", agent.log());
    assert!(
        agent.log().contains("would jump from 50 s to 111 s"),
        "{}",
        agent.log()
    );

    // A failed reply changes nothing, whatever its body says.
    matcher.answer_heartbeats(HeartbeatAnswer {
        keys: vec![rogue_key],
        signed_by: None,
        clock_offset: 0.0,
        fail: true,
    });
    wait_until("two failed heartbeats", log, beats(2)).await;
    let t = ctl.token(&rogue_issuer, "c-rogue", 50);
    assert_eq!(
        ctl.invite("c-rogue", &t).await,
        403,
        "key from a failed reply"
    );
    let t = ctl.token(&new_issuer, "c-still", 50);
    assert_eq!(ctl.invite("c-still", &t).await, 200, "{}", agent.log());
    drop(agent);
}

// --- The real matcher (built by `cargo build --workspace`). ---

fn matcher_admin(db: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(testbed::workspace_binary("matcher"))
        .arg("--db")
        .arg(db)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "matcher {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap()
}

async fn my_talkers(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(format!("{url}/v1/me/talkers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A real sip-server with alice-tv's account, and a matcher database that
/// knows OWNER and that server: what the real-matcher tests start from.
struct RealStore {
    server: sip_server::RunningServer,
    _dir: tempfile::TempDir,
    db_file: PathBuf,
    db: String,
    proxy: String,
}

impl RealStore {
    async fn start() -> Self {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
        config.users = Some(
            UserDirectory::parse("[users.alice-tv]\npassword = \"alice-tv-pw\"\n", DOMAIN).unwrap(),
        );
        let server = sip_server::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db_file = dir.path().join("matcher.db");
        let db = format!("sqlite:{}", db_file.display());
        matcher_admin(&db, &["user", "add", OWNER]);
        let proxy = server.local_addr().to_string();
        matcher_admin(&db, &["server", "add", DOMAIN, "--proxy", &proxy]);
        Self {
            server,
            _dir: dir,
            db_file,
            db,
            proxy,
        }
    }

    /// The matcher binary on this store over HTTPS with the given pair,
    /// heartbeats every second.
    fn start_matcher(&self, certificate: &Path, key: &Path) -> (Process, testbed::MatcherReady) {
        testbed::start_matcher(
            testbed::matcher_spawn()
                .args([
                    "--db",
                    &self.db,
                    "--listen",
                    "127.0.0.1:0",
                    "--heartbeat-interval",
                    "1",
                ])
                .arg("--tls-cert")
                .arg(certificate)
                .arg("--tls-key")
                .arg(key),
        )
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_matcher_enrolls_the_talker_and_sees_it_registered() {
    let store = RealStore::start().await;
    let (db, proxy) = (store.db.clone(), store.proxy.clone());
    let enroll_token = matcher_admin(&db, &["enroll-token", OWNER])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_token = matcher_admin(&db, &["user", "token", OWNER])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let pki = testbed::TestPki::new();
    // The matcher reads its pair from these paths again on SIGHUP.
    let served_certificate = pki.dir().join("served.crt");
    let served_key = pki.dir().join("served.key");
    std::fs::copy(&pki.matcher_certificate, &served_certificate).unwrap();
    std::fs::copy(&pki.matcher_key, &served_key).unwrap();
    let (matcher, ready) = store.start_matcher(&served_certificate, &served_key);
    let url = format!("https://{}", ready.http);
    assert_eq!(ready.url, url);

    let s = setup(Some(&url), None, &[(DOMAIN, proxy, "alice-tv")]);
    trust_ca(&s.config, &pki.ca_certificate);
    let out = run_enroll(&s.config, "not-a-token").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(reason_line(&String::from_utf8_lossy(&out.stderr)).contains("401 unauthorized"));
    let out = run_enroll(&s.config, &enroll_token).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim().ends_with(&format!("with {url} as {OWNER}")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Enrollment stored the pins of the chain it verified: the matcher's key and the CA's.
    let enrolled: Value =
        serde_json::from_slice(&std::fs::read(s.state_dir().join("enrollment.json")).unwrap())
            .unwrap();
    let pins: Vec<String> = enrolled["tls_pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let ca_pem = std::fs::read(&pki.ca_certificate).unwrap();
    let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(&ca_pem).unwrap();
    assert_eq!(pins.len(), 2, "{enrolled}");
    assert_eq!(
        pins[1],
        splitdial_tls::SpkiPin::of_certificate(&ca_der)
            .unwrap()
            .to_string()
    );

    let (mut agent, _sip, id) = start_agent(&s.config);
    let http = pki.client();
    let seen = testbed::wait_until_async(
        "the matcher seeing the talker online with its account registered",
        Duration::from_secs(30),
        || async {
            let talkers = my_talkers(&http, &url, &user_token).await;
            let online = talkers["talkers"].as_array().unwrap().iter().any(|t| {
                t["id"] == json!(id)
                    && t["online"] == json!(true)
                    && t["accounts"][0]["registered"] == json!(true)
            });
            online.then_some(())
        },
    )
    .await;
    if let Err(e) = seen {
        let talkers = my_talkers(&http, &url, &user_token).await;
        panic!(
            "{e}: {talkers}\nagent:\n{}\nmatcher:\n{}",
            agent.log(),
            matcher.log()
        );
    }
    // The real matcher's signed key sets check.
    assert!(
        !agent.log().contains("trust update refused"),
        "{}",
        agent.log()
    );
    // Shutdown's last heartbeat tells the matcher the account is gone.
    assert!(agent.stop(Duration::from_secs(15)).unwrap().success());
    let talkers = my_talkers(&http, &url, &user_token).await;
    assert_eq!(
        talkers["talkers"][0]["accounts"][0]["registered"],
        json!(false),
        "{talkers}\n{}",
        agent.log()
    );

    // A renewal from the same CA, with a new key, served after SIGHUP: the
    // enrolled CA pin keeps the talker working (re-enrollment needs a new token).
    let renewed = pki
        .ca
        .issue(
            "renewed",
            splitdial_tls::pki::Usage::Server,
            &["127.0.0.1".into()],
        )
        .unwrap();
    serve_after_sighup(&matcher, &served_certificate, &served_key, &renewed);
    let out = run_enroll(&s.config, "not-a-token").await;
    let line = reason_line(&String::from_utf8_lossy(&out.stderr));
    assert!(
        line.contains("401 unauthorized"),
        "the renewed certificate was refused: {line}"
    );

    // A certificate from another CA, which the configuration now names: verified,
    // but not pinned at enrollment, so refused in one line naming the matcher.
    let elsewhere = testbed::TestPki::new();
    let pair = elsewhere
        .ca
        .issue(
            "elsewhere",
            splitdial_tls::pki::Usage::Server,
            &["127.0.0.1".into()],
        )
        .unwrap();
    serve_after_sighup(&matcher, &served_certificate, &served_key, &pair);
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        &pki.ca_certificate.display().to_string(),
        &elsewhere.ca_certificate.display().to_string(),
    );
    std::fs::write(&s.config, text).unwrap();
    let out = run_enroll(&s.config, &enroll_token).await;
    assert_eq!(out.status.code(), Some(1));
    let line = reason_line(&String::from_utf8_lossy(&out.stderr));
    assert!(
        line.contains(&url) && line.contains("pinned at enrollment"),
        "{line}"
    );
    drop(matcher);
    store.server.shutdown().await;
}

/// Names `ca` as the matcher's CA in the agent's configuration.
fn trust_ca(config: &Path, ca: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen(
        "matcher_url = ",
        &format!("matcher_ca = \"{}\"\nmatcher_url = ", ca.display()),
        1,
    );
    std::fs::write(config, text).unwrap();
}

/// Writes `pair` where the matcher reads its certificate, sends it SIGHUP, and
/// waits until a handshake gets the new certificate.
fn serve_after_sighup(
    matcher: &testbed::Process,
    certificate: &Path,
    key: &Path,
    pair: &splitdial_tls::pki::IssuedPair,
) {
    std::fs::write(certificate, &pair.certificate_pem).unwrap();
    std::fs::write(key, &pair.key_pem).unwrap();
    let reloads = matcher.log().matches("certificate reloaded").count();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &matcher.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    testbed::wait_until(
        "the matcher reloading its certificate",
        Duration::from_secs(10),
        || (matcher.log().matches("certificate reloaded").count() > reloads).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", matcher.log()));
}

/// The token-signing key `kid` as the real matcher stores it (read with the
/// sqlite3 program, as an attacker holding a leaked key would sign).
fn stored_issuer(db_file: &Path, kid: &str) -> Issuer {
    let sqlite3 = testbed::require_program("sqlite3", "sqlite3");
    let out = std::process::Command::new(sqlite3)
        .arg(db_file)
        .arg(format!("SELECT seed FROM signing_keys WHERE kid = '{kid}'"))
        .output()
        .unwrap();
    let seed = String::from_utf8(out.stdout).unwrap();
    let seed: [u8; 32] = hex_bytes(seed.trim()).try_into().unwrap();
    Issuer::new(seed, kid)
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The active key's kid, from `matcher key list`.
fn active_kid(db: &str) -> String {
    let keys = matcher_admin(db, &["key", "list"]);
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == json!("active"))
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Issue 17's test: a revoked key's tokens are refused before the next call.
/// The real matcher rotates (the talker learns the new key at a heartbeat,
/// signed by the old one), then revokes the old key while running; at its
/// next heartbeat the real agent drops it, and a token the old key signed
/// before, still unexpired, gets 403, while the new key's tokens pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_keys_tokens_are_refused_after_the_next_heartbeat() {
    let store = RealStore::start().await;
    let (db, db_file, proxy) = (store.db.clone(), store.db_file.clone(), store.proxy.clone());
    let enroll_token = matcher_admin(&db, &["enroll-token", OWNER])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let pki = testbed::TestPki::new();
    let (matcher, ready) = store.start_matcher(&pki.matcher_certificate, &pki.matcher_key);
    let s = setup(Some(&ready.url), None, &[(DOMAIN, proxy, "alice-tv")]);
    trust_ca(&s.config, &pki.ca_certificate);
    assert!(run_enroll(&s.config, &enroll_token).await.status.success());
    let (agent, sip, id) = start_agent(&s.config);
    let log = || format!("agent:\n{}\nmatcher:\n{}", agent.log(), matcher.log());
    let ctl = Controller {
        socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        agent: sip,
        talker: id,
    };
    wait_until("the first heartbeat", log, || {
        agent.log().contains("clock offset to the matcher")
    })
    .await;

    let old_kid = active_kid(&db);
    let old = stored_issuer(&db_file, &old_kid);
    let t = ctl.token(&old, "c-before", 0);
    assert_eq!(ctl.invite("c-before", &t).await, 200, "{}", log());

    matcher_admin(&db, &["key", "rotate"]);
    let new = stored_issuer(&db_file, &active_kid(&db));
    wait_until("the talker learning the new key", log, || {
        agent.log().contains("matcher keys changed")
    })
    .await;
    // Signed by the old key before its revocation, valid for 20 s more.
    let leaked = ctl.token(&old, "c-leaked", 0);
    matcher_admin(&db, &["key", "revoke", &old_kid]);
    wait_until("the talker dropping the revoked key", log, || {
        agent.log().contains("the matcher revoked keys")
    })
    .await;
    assert_eq!(ctl.invite("c-leaked", &leaked).await, 403, "{}", log());
    let fresh = ctl.token(&old, "c-fresh-old", 0);
    assert_eq!(ctl.invite("c-fresh-old", &fresh).await, 403, "{}", log());
    let t = ctl.token(&new, "c-new", 0);
    assert_eq!(ctl.invite("c-new", &t).await, 200, "{}", log());
    assert!(!agent.log().contains("trust update refused"), "{}", log());
    drop(agent);

    // The agent remembers the revocation across a restart, even with the old
    // key pinned in its configuration and no matcher to remind it.
    drop(matcher);
    let old_public = STANDARD.encode(old.verifying_key().to_bytes());
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, format!("matcher_key = \"{old_public}\"\n{text}")).unwrap();
    let (agent, sip, _) = start_agent(&s.config);
    let ctl = Controller { agent: sip, ..ctl };
    assert!(
        agent
            .log()
            .contains("matcher_key names a key the matcher revoked"),
        "{}",
        agent.log()
    );
    let t = ctl.token(&old, "c-after-restart", 0);
    assert_eq!(
        ctl.invite("c-after-restart", &t).await,
        403,
        "{}",
        agent.log()
    );
    let t = ctl.token(&new, "c-new-after-restart", 0);
    assert_eq!(
        ctl.invite("c-new-after-restart", &t).await,
        200,
        "{}",
        agent.log()
    );
    drop(agent);
    store.server.shutdown().await;
}
