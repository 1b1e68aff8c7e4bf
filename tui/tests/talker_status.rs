//! A talker's `GET /v1/status` read exactly as the agent sends it, media
//! statistics included: the answer below was captured from a real
//! `talker-agent` (the demo household on loopback, alice's TV in an audio call
//! with bob's phone), served byte for byte to the dialer's own client, read
//! with the media worker's statistics types and drawn in the call pane. Then
//! the same answer as an agent of another version could write it: what the
//! dialer tolerates, and what it gives up (docs/dialer.md, "Media statistics").

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod scenes;

use scenes::*;
use splitdial_tui::app::Action;
use splitdial_tui::model::{
    AccountState, Codec, Direction, MediaStats, RtpStats, SoundStats, TalkerCallKind,
    TalkerCallState, TalkerStatus,
};
use splitdial_tui::talker_client::TalkerClient;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The agent's answer's head, as captured (its `content-length` is the body's).
const AGENT_HEAD: &str = concat!(
    "HTTP/1.1 200 OK\r\n",
    "content-type: application/json\r\n",
    "cache-control: no-store\r\n",
    "x-content-type-options: nosniff\r\n",
    "content-length: 1076\r\n",
    "connection: close\r\n",
    "date: Mon, 07 Dec 2026 18:45:19 GMT\r\n",
    "\r\n",
);

/// The agent's answer's body, as captured: a control leg without media and
/// the referred call with its worker's statistics.
const AGENT_BODY: &str = r#"{"id":"tv","name":"Living-room TV","kind":"tv","media":["audio","video"],"accounts":[{"aor":"sip:alice-tv@family.example","state":"registered","expires":600,"gruu":"sip:alice-tv@family.example;gr=urn:uuid:afaa6571-c0a2-48da-88a8-15f918c897ed"},{"aor":"sip:alice-tv@work.example","state":"registered","expires":600,"gruu":"sip:alice-tv@work.example;gr=urn:uuid:afaa6571-c0a2-48da-88a8-15f918c897ed"}],"calls":[{"id":1,"kind":"control","state":"connected","sip_call_id":"2f72dec39a2011207b78b3acc4202519@splitdial.invalid","peer":"<sip:splitdial-matcher@family.example>;tag=BUeUuUjl","media":null},{"id":2,"kind":"referred","state":"connected","sip_call_id":"","peer":"sip:bob@family.example","media":{"audio":{"codec":"Opus","direction":"SendRecv","packets_sent":101,"packets_received":101,"packets_lost":0,"jitter_ms":0.08333333333333333},"video":null,"sound":{"level_dbfs":-13.50768998433582,"dominant_frequency_hz":880.0397796804974,"frequencies_hz":[880.0397796804974],"samples":96000,"sample_rate":48000,"onsets_past_second_ms":[841.270571]},"picture":null,"errors":[]}}]}"#;

/// The talker's identity key (its seed): the certificate carries it.
const TALKER_SEED: [u8; 32] = [7; 32];

/// The registry's form of the talker's key (standard base64).
fn registry_key() -> String {
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::from_bytes(&TALKER_SEED).verifying_key();
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// Serves `head` and `body` over the talker's TLS to every connection, once it
/// has read a request head.
async fn talker_answering(head: &'static str, body: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = tokio_rustls::TlsAcceptor::from(
        splitdial_tls::talker::server_config(&TALKER_SEED).unwrap(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = format!("{head}{body}");
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = tls.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                assert!(request.starts_with(b"GET /v1/status HTTP/1.1\r\n"));
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// What the captured call's worker reported.
fn captured_media() -> MediaStats {
    MediaStats {
        audio: Some(RtpStats {
            codec: Codec::Opus,
            direction: Direction::SendRecv,
            packets_sent: 101,
            packets_received: 101,
            packets_lost: 0,
            jitter_ms: 0.083_333_333_333_333_33,
        }),
        video: None,
        sound: Some(SoundStats {
            level_dbfs: -13.507_689_984_335_82,
            dominant_frequency_hz: Some(880.039_779_680_497_4),
            frequencies_hz: vec![880.039_779_680_497_4],
            samples: 96_000,
            sample_rate: 48_000,
            onsets_past_second_ms: vec![841.270_571],
        }),
        picture: None,
        errors: vec![],
    }
}

fn read(body: &str) -> TalkerStatus {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The referred call's statistics in `status` (after checking that both
/// calls and both accounts still read).
fn referred_media(status: &TalkerStatus) -> Option<&MediaStats> {
    assert_eq!(status.accounts.len(), 2, "{status:?}");
    assert_eq!(status.calls.len(), 2, "{status:?}");
    assert_eq!(status.calls[0].kind, TalkerCallKind::Control);
    assert_eq!(status.calls[0].media, None);
    let referred = &status.calls[1];
    assert_eq!(
        (referred.kind, referred.state),
        (TalkerCallKind::Referred, TalkerCallState::Connected)
    );
    referred.media.as_ref()
}

/// `AGENT_BODY` with each `(from, to)` replaced once (each must be there).
fn edited(edits: &[(&str, &str)]) -> String {
    edits
        .iter()
        .fold(AGENT_BODY.to_owned(), |body, (from, to)| {
            assert!(body.contains(from), "{from} is not in the agent's body");
            body.replacen(from, to, 1)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_status_reads_and_its_statistics_are_drawn() {
    assert_eq!(AGENT_BODY.len(), 1076, "the head's content-length");
    let addr = talker_answering(AGENT_HEAD, AGENT_BODY.to_owned()).await;
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        TalkerClient::new().unwrap().status(addr, &registry_key()),
    )
    .await
    .unwrap()
    .unwrap();

    assert_eq!(
        (status.id.as_str(), status.name.as_str()),
        ("tv", "Living-room TV")
    );
    assert!(matches!(
        status.accounts[0].registration,
        AccountState::Registered {
            expires: 600,
            gruu: Some(_)
        }
    ));
    assert_eq!(referred_media(&status), Some(&captured_media()));
    // The capture predates a call's `held` and `dtmf_received` (issue 15):
    // read as not held, nothing received.
    assert!(
        status
            .calls
            .iter()
            .all(|c| c.held.is_none() && c.dtmf_received.is_empty())
    );
    // Read with the agent's own types, nothing is lost: they write these
    // bytes back, with those two fields after each call's statistics.
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        AGENT_BODY
            .replace(
                r#""media":null}"#,
                r#""media":null,"held":null,"dtmf_received":""}"#
            )
            .replace(
                r#""errors":[]}}"#,
                r#""errors":[]},"held":null,"dtmf_received":""}"#
            )
    );

    // The call pane shows them for the call placed on the TV.
    let mut scene = Scene::calling();
    scene.apply([Action::CallPlaced(Ok(call_info()))]);
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status),
    }]);
    let screen = scene.render(80, 24);
    for shown in [
        "Media on Living-room TV",
        "audio opus   ↑101 ↓101 pkts",
        "lost 0 (0.0%)  jitter 0.1 ms",
        "level -13.5 dBFS · tone 880 Hz",
    ] {
        assert!(screen.contains(shown), "{shown:?} is not on\n{screen}");
    }
    assert!(!screen.contains("video"), "no video stream:\n{screen}");
}

#[test]
fn a_newer_agents_added_fields_are_skipped() {
    let status = read(&edited(&[
        (r#""jitter_ms":"#, r#""round_trip_ms":3.5,"jitter_ms":"#),
        (
            r#","errors":[]"#,
            r#","errors":[],"srtp":{"suite":"AES_CM_128"}"#,
        ),
        (r#""peer":"sip:bob"#, r#""encrypted":true,"peer":"sip:bob"#),
    ]));
    assert_eq!(referred_media(&status), Some(&captured_media()));
}

#[test]
fn a_held_call_and_its_keys_read_and_are_drawn() {
    let status = read(&edited(&[(
        r#""errors":[]}}"#,
        r#""errors":[]},"held":"by_peer","dtmf_received":"12#"}"#,
    )]));
    assert!(referred_media(&status).is_some());
    let mut scene = Scene::calling();
    scene.apply([Action::CallPlaced(Ok(call_info()))]);
    scene.apply([Action::TalkerStatus {
        talker_id: "tv".to_owned(),
        result: Ok(status),
    }]);
    let screen = scene.render(80, 24);
    for shown in ["held by Bob", "Living room TV  held", "keys 1 2 #"] {
        assert!(screen.contains(shown), "{shown:?} is not on\n{screen}");
    }
    // A hold word the dialer does not know is outside the contract, as an
    // unknown call state is.
    let unknown = edited(&[(r#""errors":[]}}"#, r#""errors":[]},"held":"by_both"}"#)]);
    assert!(serde_json::from_str::<TalkerStatus>(&unknown).is_err());
}

#[test]
fn counts_and_measurements_an_agent_lacks_read_as_nothing_counted() {
    let status = read(&edited(&[
        (r#""packets_sent":101,"#, ""),
        (r#","jitter_ms":0.08333333333333333"#, ""),
        (r#","frequencies_hz":[880.0397796804974]"#, ""),
        (r#","samples":96000,"sample_rate":48000"#, ""),
        (r#","onsets_past_second_ms":[841.270571]"#, ""),
        (r#","errors":[]"#, ""),
        (r#","video":null"#, ""),
    ]));
    let media = referred_media(&status).unwrap();
    let audio = media.audio.as_ref().unwrap();
    assert_eq!((audio.packets_sent, audio.packets_received), (0, 101));
    assert_eq!(audio.jitter_ms, 0.0);
    let sound = media.sound.as_ref().unwrap();
    assert_eq!(sound.dominant_frequency_hz, Some(880.039_779_680_497_4));
    assert!(sound.frequencies_hz.is_empty() && sound.onsets_past_second_ms.is_empty());
    assert_eq!((sound.samples, sound.sample_rate), (0, 0));
    assert!(media.errors.is_empty() && media.video.is_none());
}

#[test]
fn statistics_the_dialer_cannot_read_cost_only_the_statistics() {
    for (what, from, to) in [
        (
            "a codec word it does not know",
            r#""codec":"Opus""#,
            r#""codec":"G722""#,
        ),
        (
            "a direction it does not know",
            r#""direction":"SendRecv""#,
            r#""direction":"Paused""#,
        ),
        ("no codec", r#""codec":"Opus","#, ""),
        ("no direction", r#""direction":"SendRecv","#, ""),
        ("no level", r#""level_dbfs":-13.50768998433582,"#, ""),
        (
            "a count that is no count",
            r#""packets_lost":0"#,
            r#""packets_lost":"none""#,
        ),
    ] {
        let status = read(&edited(&[(from, to)]));
        assert_eq!(referred_media(&status), None, "{what}");
    }
}
