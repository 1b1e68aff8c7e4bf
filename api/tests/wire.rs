//! Every body of both APIs against the exact JSON the matcher and the agent
//! sent before this crate existed (captured from their answers, or from the
//! `json!` builders that wrote them): serializing a value gives that JSON,
//! and reading that JSON gives the value back. A renamed field, a changed
//! word or a `null` that became absent fails here.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use splitdial_api::*;
use std::fmt::Debug;

/// `value` serializes to `json` (as JSON, key order aside) and `json` reads
/// back as `value`.
#[track_caller]
fn wire<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, json: &str) {
    let expected: Value = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_value(value).unwrap(), expected, "serialized");
    assert_eq!(
        &serde_json::from_str::<T>(json).unwrap(),
        value,
        "read back"
    );
}

fn route(reason: &str, media: Media) -> RouteView {
    RouteView {
        rank: 1,
        talker: "alice-tv".into(),
        talker_name: "alice-tv device".into(),
        account: "sip:alice@family.example".into(),
        server: "family.example".into(),
        cost: 1,
        media,
        talker_online: true,
        online: true,
        reason: reason.into(),
    }
}

fn key() -> MatcherKey {
    MatcherKey {
        kid: "m-4744ef1014406875".into(),
        public_key: "a3rv7NXy/O8/naPdOoV6Vhj/t6ISLUM/XVFP9F1layo=".into(),
    }
}

#[test]
fn me_talkers_and_contacts() {
    wire(
        &Me {
            id: 1,
            name: "alice".into(),
            display_name: Some("Alice".into()),
        },
        r#"{"display_name":"Alice","id":1,"name":"alice"}"#,
    );
    wire(
        &TalkerList {
            talkers: vec![RegisteredTalker {
                id: "alice-tv".into(),
                name: "alice-tv device".into(),
                kind: TalkerKind::Tv,
                media: Media::Video,
                public_key: "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=".into(),
                software: TalkerSoftware::Agent,
                online: true,
                last_seen: Some(1_796_662_510),
                accounts: vec![RegisteredAccount {
                    aor: "sip:alice@family.example".into(),
                    server: "family.example".into(),
                    registered: true,
                }],
            }],
        },
        r#"{"talkers":[{"accounts":[{"aor":"sip:alice@family.example","registered":true,"server":"family.example"}],"id":"alice-tv","kind":"tv","last_seen":1796662510,"media":"video","name":"alice-tv device","online":true,"public_key":"iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=","software":"agent"}]}"#,
    );
    let contact = |name: &str, kind, server: &str| Contact {
        name: name.into(),
        kind,
        accepted: true,
        servers: vec![server.into()],
    };
    wire(
        &ContactList {
            contacts: vec![
                contact("bob", ContactKind::User, "family.example"),
                contact("dave", ContactKind::User, "work.example"),
                contact("desk", ContactKind::Address, "work.example"),
            ],
        },
        r#"{"contacts":[{"accepted":true,"kind":"user","name":"bob","servers":["family.example"]},{"accepted":true,"kind":"user","name":"dave","servers":["work.example"]},{"accepted":true,"kind":"address","name":"desk","servers":["work.example"]}]}"#,
    );
}

#[test]
fn a_sip_phone_talker_and_a_software_this_reader_does_not_know() {
    let talker: RegisteredTalker = serde_json::from_str(
        r#"{"id":"desk","name":"Desk","kind":"phone","media":"audio","public_key":"","software":"sip_phone","online":false,"last_seen":null,"accounts":[]}"#,
    )
    .unwrap();
    assert_eq!(talker.software, TalkerSoftware::SipPhone);
    assert_eq!(
        serde_json::to_value(talker.software).unwrap(),
        Value::from("sip_phone")
    );
    let newer: RegisteredTalker = serde_json::from_str(
        r#"{"id":"x","name":"X","kind":"tv","media":"audio","public_key":"k","software":"toaster","online":true}"#,
    )
    .unwrap();
    assert_eq!(newer.software, TalkerSoftware::Unknown);
    assert_eq!(TalkerSoftware::parse("unknown"), None, "never stored");
}

#[test]
fn routes_and_route_errors() {
    wire(
        &Routes {
            callee: "bob".into(),
            media: Media::Video,
            routes: vec![route(
                "online · video on both · cost 1 · your 1st choice",
                Media::Video,
            )],
        },
        r#"{"callee":"bob","media":"video","routes":[{"account":"sip:alice@family.example","cost":1,"media":"video","online":true,"rank":1,"reason":"online · video on both · cost 1 · your 1st choice","server":"family.example","talker":"alice-tv","talker_name":"alice-tv device","talker_online":true}]}"#,
    );
    let mut no_shared = ErrorBody::new(
        "no_shared_server",
        "no shared server: your talkers are on [family.example], the callee is on [work.example]",
    );
    no_shared.error.caller_servers = Some(vec!["family.example".into()]);
    no_shared.error.callee_servers = Some(vec!["work.example".into()]);
    wire(
        &no_shared,
        r#"{"error":{"callee_servers":["work.example"],"caller_servers":["family.example"],"code":"no_shared_server","message":"no shared server: your talkers are on [family.example], the callee is on [work.example]"}}"#,
    );
    let mut no_usable = ErrorBody::new(
        "no_usable_server",
        "the shared servers [a.example] do not let the matcher place calls",
    );
    no_usable.error.shared_servers = Some(vec!["a.example".into()]);
    wire(
        &no_usable,
        r#"{"error":{"code":"no_usable_server","message":"the shared servers [a.example] do not let the matcher place calls","shared_servers":["a.example"]}}"#,
    );
    wire(
        &ErrorBody::new(
            "no_designated_talker",
            "none of the designated talkers is one of your talkers",
        ),
        r#"{"error":{"code":"no_designated_talker","message":"none of the designated talkers is one of your talkers"}}"#,
    );
}

#[test]
fn calls_as_placed_and_as_ended() {
    let placed = Call {
        call: "c_17013f85549dda0f2c5e2ca05b7cd7e8".into(),
        state: CallState::Matching,
        reason: None,
        media: Media::Audio,
        route: Some(route(
            "online · audio · cost 1 · your 1st choice",
            Media::Video,
        )),
        created_at: 1_796_662_510,
        ended_at: None,
        events: "/v1/calls/c_17013f85549dda0f2c5e2ca05b7cd7e8/events".into(),
    };
    wire(
        &placed,
        r#"{"call":"c_17013f85549dda0f2c5e2ca05b7cd7e8","created_at":1796662510,"ended_at":null,"events":"/v1/calls/c_17013f85549dda0f2c5e2ca05b7cd7e8/events","media":"audio","reason":null,"route":{"account":"sip:alice@family.example","cost":1,"media":"video","online":true,"rank":1,"reason":"online · audio · cost 1 · your 1st choice","server":"family.example","talker":"alice-tv","talker_name":"alice-tv device","talker_online":true},"state":"matching"}"#,
    );
    let ended = Call {
        state: CallState::Ended,
        reason: Some("talker_no_answer".into()),
        ended_at: Some(1_796_662_522),
        ..placed
    };
    wire(
        &ended,
        r#"{"call":"c_17013f85549dda0f2c5e2ca05b7cd7e8","created_at":1796662510,"ended_at":1796662522,"events":"/v1/calls/c_17013f85549dda0f2c5e2ca05b7cd7e8/events","media":"audio","reason":"talker_no_answer","route":{"account":"sip:alice@family.example","cost":1,"media":"video","online":true,"rank":1,"reason":"online · audio · cost 1 · your 1st choice","server":"family.example","talker":"alice-tv","talker_name":"alice-tv device","talker_online":true},"state":"ended"}"#,
    );
    wire(
        &NewCall {
            callee: "bob".into(),
            talkers: vec!["alice-tv".into()],
            media: Some(Media::Audio),
        },
        r#"{"callee":"bob","media":"audio","talkers":["alice-tv"]}"#,
    );
    wire(
        &NewParty {
            callee: "carol".into(),
        },
        r#"{"callee":"carol"}"#,
    );
    wire(
        &PartyAdded {
            call: "c_1".into(),
            party: 2,
        },
        r#"{"call":"c_1","party":2}"#,
    );
    wire(
        &ErrorBody::new("call_not_live", "the call is not live here"),
        r#"{"error":{"code":"call_not_live","message":"the call is not live here"}}"#,
    );
    // A request's unknown field is refused, not ignored.
    assert!(serde_json::from_str::<NewCall>(r#"{"callee":"bob","evil":1}"#).is_err());
    assert!(serde_json::from_str::<NewCall>(r#"{"callee":"bob","media":"smell"}"#).is_err());
}

#[test]
fn call_events_and_their_details() {
    let event = |seq, state, at: &str, detail| CallEvent {
        call: "c_cb25238a6edead9ae85b775fc55be2c9".into(),
        seq,
        state,
        at: at.into(),
        detail,
    };
    wire(
        &event(
            1,
            CallState::Matching,
            "2026-12-07T16:55:29.370Z",
            EventDetail {
                server: Some("family.example".into()),
                ..EventDetail::default()
            },
        ),
        r#"{"at":"2026-12-07T16:55:29.370Z","call":"c_cb25238a6edead9ae85b775fc55be2c9","detail":{"server":"family.example"},"seq":1,"state":"matching"}"#,
    );
    wire(
        &event(
            2,
            CallState::DialingTalker,
            "2026-12-07T16:55:29.374Z",
            EventDetail::default(),
        ),
        r#"{"at":"2026-12-07T16:55:29.374Z","call":"c_cb25238a6edead9ae85b775fc55be2c9","detail":{},"seq":2,"state":"dialing_talker"}"#,
    );
    let hung_up = event(
        3,
        CallState::Ended,
        "2026-12-07T16:55:40.379Z",
        EventDetail {
            reason: Some("hung_up".into()),
            ..EventDetail::default()
        },
    );
    wire(
        &hung_up,
        r#"{"at":"2026-12-07T16:55:40.379Z","call":"c_cb25238a6edead9ae85b775fc55be2c9","detail":{"reason":"hung_up"},"seq":3,"state":"ended"}"#,
    );
    assert_eq!(hung_up.reason(), Some("hung_up"));
    assert_eq!(hung_up.party(), 1);
    // The other details, as the matcher's builders wrote them.
    let detail = |json: &str, value: EventDetail| {
        assert_eq!(
            serde_json::to_value(&value).unwrap(),
            serde_json::from_str::<Value>(json).unwrap()
        );
        assert_eq!(serde_json::from_str::<EventDetail>(json).unwrap(), value);
    };
    detail(
        r#"{"party":2}"#,
        EventDetail {
            party: Some(2),
            ..EventDetail::default()
        },
    );
    detail(
        r#"{"party":2,"party_state":"failed","sip_code":486}"#,
        EventDetail {
            party: Some(2),
            party_state: Some(PartyState::Failed),
            sip_code: Some(486),
            ..EventDetail::default()
        },
    );
    detail(
        r#"{"party":1,"party_state":"ended"}"#,
        EventDetail {
            party: Some(1),
            party_state: Some(PartyState::Ended),
            ..EventDetail::default()
        },
    );
    detail(
        r#"{"reason":"callee_busy","sip_code":486}"#,
        EventDetail {
            reason: Some("callee_busy".into()),
            sip_code: Some(486),
            ..EventDetail::default()
        },
    );
    detail(
        r#"{"message":"no transport","reason":"error"}"#,
        EventDetail {
            reason: Some("error".into()),
            message: Some("no transport".into()),
            ..EventDetail::default()
        },
    );
    detail(
        r#"{"reason":"matcher_restarted"}"#,
        EventDetail {
            reason: Some("matcher_restarted".into()),
            ..EventDetail::default()
        },
    );
}

#[test]
fn call_states_are_their_words() {
    let words: Vec<&str> = CallState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        words,
        [
            "matching",
            "dialing_talker",
            "talker_answered",
            "callee_ringing",
            "connected",
            "handed_off",
            "lost_control",
            "ended"
        ]
    );
    for state in CallState::ALL {
        assert_eq!(
            serde_json::to_value(state).unwrap(),
            Value::from(state.as_str())
        );
        assert_eq!(state.as_str().parse::<CallState>().unwrap(), *state);
    }
    let finals: Vec<CallState> = CallState::ALL
        .iter()
        .copied()
        .filter(|s| s.is_final())
        .collect();
    assert_eq!(
        finals,
        [
            CallState::HandedOff,
            CallState::LostControl,
            CallState::Ended
        ]
    );
    let unknown = "ringing".parse::<CallState>().unwrap_err().to_string();
    assert!(
        unknown.contains("\"ringing\"") && unknown.contains("callee_ringing"),
        "{unknown}"
    );
}

#[test]
fn enrollment_and_heartbeats() {
    wire(
        &EnrollRequest {
            id: "tv-1".into(),
            public_key: "a2V5".into(),
            name: "Living room TV".into(),
            kind: TalkerKind::Tv,
            media: Media::Video,
            instance: Some("urn:uuid:1".into()),
            accounts: vec![EnrollAccount {
                aor: "sip:alice@home.example".into(),
                server: "home.example".into(),
            }],
        },
        r#"{"id":"tv-1","public_key":"a2V5","name":"Living room TV","kind":"tv","media":"video","instance":"urn:uuid:1","accounts":[{"aor":"sip:alice@home.example","server":"home.example"}]}"#,
    );
    wire(
        &EnrollReply {
            talker_id: "alice-tv".into(),
            owner: "alice".into(),
            credential: "sdt_1iJPyauky7UTVjwdNIlFuGnM0poDLdB9pLjwdRpRzmk".into(),
            keys: vec![key()],
            time: 1_796_662_510.118_404_2,
        },
        r#"{"credential":"sdt_1iJPyauky7UTVjwdNIlFuGnM0poDLdB9pLjwdRpRzmk","keys":[{"kid":"m-4744ef1014406875","public_key":"a3rv7NXy/O8/naPdOoV6Vhj/t6ISLUM/XVFP9F1layo="}],"owner":"alice","talker_id":"alice-tv","time":1796662510.1184042}"#,
    );
    wire(
        &Heartbeat {
            state: TalkerState::Busy,
            accounts: vec![
                HeartbeatAccount {
                    aor: "sip:a@h".into(),
                    registered: true,
                    gruu: Some("sip:a@h;gr=x".into()),
                },
                HeartbeatAccount {
                    aor: "sip:b@h".into(),
                    registered: false,
                    gruu: None,
                },
            ],
        },
        r#"{"state":"busy","accounts":[{"aor":"sip:a@h","registered":true,"gruu":"sip:a@h;gr=x"},{"aor":"sip:b@h","registered":false,"gruu":null}]}"#,
    );
    wire(
        &HeartbeatReply {
            time: 1_796_662_510.126_356_4,
            keys: vec![key()],
            revoked: vec![],
            interval_s: Some(30),
            signatures: vec![KeySetSignature {
                kid: "m-4744ef1014406875".into(),
                signature: "c2ln".into(),
            }],
        },
        r#"{"interval_s":30,"keys":[{"kid":"m-4744ef1014406875","public_key":"a3rv7NXy/O8/naPdOoV6Vhj/t6ISLUM/XVFP9F1layo="}],"signatures":[{"kid":"m-4744ef1014406875","signature":"c2ln"}],"time":1796662510.1263564}"#,
    );
    // A set that revokes a key names it; the list is left out when empty.
    wire(
        &HeartbeatReply {
            time: 1.5,
            keys: vec![key()],
            revoked: vec!["m-0123456789abcdef".into()],
            interval_s: None,
            signatures: vec![],
        },
        r#"{"interval_s":null,"keys":[{"kid":"m-4744ef1014406875","public_key":"a3rv7NXy/O8/naPdOoV6Vhj/t6ISLUM/XVFP9F1layo="}],"revoked":["m-0123456789abcdef"],"signatures":[],"time":1.5}"#,
    );
    let reply = EnrollReply {
        talker_id: "t".into(),
        owner: "o".into(),
        credential: "sdt_secret".into(),
        keys: vec![],
        time: 1.0,
    };
    assert!(!format!("{reply:?}").contains("sdt_secret"));
    assert!(serde_json::from_str::<Heartbeat>(r#"{"state":"asleep","accounts":[]}"#).is_err());
}

#[test]
fn owner_tokens_and_health() {
    wire(
        &OwnerTokenRequest {
            action: OwnerAction::Decline,
            sip_call_id: "abc@host".into(),
            call: None,
        },
        r#"{"action":"decline","sip_call_id":"abc@host"}"#,
    );
    let token = OwnerToken {
        token: "eyJhbGciOiJFZERTQSJ9.eyJhY3QiOiJhbnN3ZXIifQ.qTVTmUHRZ4z0bWlInUC1llxx".into(),
        expires_in: 20,
        talker: "alice-tv".into(),
    };
    wire(
        &token,
        r#"{"expires_in":20,"talker":"alice-tv","token":"eyJhbGciOiJFZERTQSJ9.eyJhY3QiOiJhbnN3ZXIifQ.qTVTmUHRZ4z0bWlInUC1llxx"}"#,
    );
    assert!(!format!("{token:?}").contains("eyJ"));
    assert!(
        serde_json::from_str::<OwnerTokenRequest>(r#"{"action":"control","sip_call_id":"x"}"#)
            .is_err(),
        "only the owner's actions"
    );
    wire(&Health::ok(), r#"{"status":"ok"}"#);
}

#[test]
fn a_talkers_status_challenge_and_owner_actions() {
    let call = |id, kind, state, sip_call_id: &str, peer: &str| TalkerCall::<Value> {
        id,
        kind,
        state,
        sip_call_id: sip_call_id.into(),
        peer: peer.into(),
        media: None,
        held: None,
        dtmf_received: String::new(),
    };
    wire(
        &TalkerStatus {
            id: "tv-1".into(),
            name: "Living room TV".into(),
            kind: TalkerKind::Tv,
            media: vec![Media::Audio, Media::Video],
            accounts: vec![],
            calls: vec![
                call(
                    1,
                    TalkerCallKind::Incoming,
                    TalkerCallState::Ringing,
                    "a84b4c76e66710",
                    "sip:bob@home.example",
                ),
                call(
                    2,
                    TalkerCallKind::Control,
                    TalkerCallState::Connected,
                    "ctl-1",
                    "sip:splitdial-matcher@home.example",
                ),
                call(
                    3,
                    TalkerCallKind::Referred,
                    TalkerCallState::Dialing,
                    "",
                    "sip:carol@home.example",
                ),
            ],
        },
        r#"{"id":"tv-1","name":"Living room TV","kind":"tv","media":["audio","video"],"accounts":[],"calls":[{"id":1,"kind":"incoming","state":"ringing","sip_call_id":"a84b4c76e66710","peer":"sip:bob@home.example","media":null,"held":null,"dtmf_received":""},{"id":2,"kind":"control","state":"connected","sip_call_id":"ctl-1","peer":"sip:splitdial-matcher@home.example","media":null,"held":null,"dtmf_received":""},{"id":3,"kind":"referred","state":"dialing","sip_call_id":"","peer":"sip:carol@home.example","media":null,"held":null,"dtmf_received":""}]}"#,
    );
    let account = |registration| StatusAccount {
        aor: "sip:alice@home.example".into(),
        registration,
    };
    for (registration, json) in [
        (
            AccountState::Registering,
            r#"{"aor":"sip:alice@home.example","state":"registering"}"#,
        ),
        (
            AccountState::Registered {
                expires: 600,
                gruu: Some("sip:g".into()),
            },
            r#"{"aor":"sip:alice@home.example","state":"registered","expires":600,"gruu":"sip:g"}"#,
        ),
        (
            AccountState::Registered {
                expires: 60,
                gruu: None,
            },
            r#"{"aor":"sip:alice@home.example","state":"registered","expires":60,"gruu":null}"#,
        ),
        (
            AccountState::Failed {
                reason: "503 Service Unavailable".into(),
            },
            r#"{"aor":"sip:alice@home.example","state":"failed","reason":"503 Service Unavailable"}"#,
        ),
        (
            AccountState::Unregistered,
            r#"{"aor":"sip:alice@home.example","state":"unregistered"}"#,
        ),
    ] {
        wire(&account(registration), json);
    }
    wire(
        &ChallengeRequest {
            nonce: "dialer-nonce-0123456789".into(),
        },
        r#"{"nonce":"dialer-nonce-0123456789"}"#,
    );
    // The address a dialer says it dialed no longer counts: refused, not ignored.
    assert!(
        serde_json::from_str::<ChallengeRequest>(
            r#"{"nonce":"dialer-nonce-0123456789","dialed":"127.0.0.1:8420"}"#
        )
        .is_err()
    );
    wire(
        &ChallengeAnswer {
            talker_id: "tv-1".into(),
            talker_nonce: "5a09a74983ece33d0f45af094f6d522d".into(),
            public_key: "BTm5mtdk5faFCjJiMRhFPnCIYn52q8jAEZ/wB9OzCMY=".into(),
            signature: "oTOMcPGzv2KJ3nSkPioO+u+AoAshrQHa6TZvEnZ6hCN6LH4R4ym3/JSY5oIdMyoT5Dktxz5AuHK+oxShLmNpBg==".into(),
        },
        r#"{"talker_id":"tv-1","talker_nonce":"5a09a74983ece33d0f45af094f6d522d","public_key":"BTm5mtdk5faFCjJiMRhFPnCIYn52q8jAEZ/wB9OzCMY=","signature":"oTOMcPGzv2KJ3nSkPioO+u+AoAshrQHa6TZvEnZ6hCN6LH4R4ym3/JSY5oIdMyoT5Dktxz5AuHK+oxShLmNpBg=="}"#,
    );
    wire(&OwnerActionRequest {}, "{}");
    assert!(serde_json::from_str::<OwnerActionRequest>(r#"{"x":1}"#).is_err());
    wire(
        &OwnerActionAccepted {
            call: 3,
            action: OwnerAction::Answer,
        },
        r#"{"action":"answer","call":3}"#,
    );
    wire(
        &ErrorBody::new(
            "missing_token",
            "send the owner token as Authorization: Bearer <token>",
        ),
        r#"{"error":{"code":"missing_token","message":"send the owner token as Authorization: Bearer <token>"}}"#,
    );
}

/// Statistics in the shape a reader knows: a closed set of codec words, as
/// the media worker's contract has.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct Counters {
    codec: CounterCodec,
    packets: u64,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
enum CounterCodec {
    Opus,
}

/// A status with one call whose `media` is `media` (`None`: no `media` field).
fn status_with_media(media: Option<&str>) -> String {
    let media = media.map_or(String::new(), |m| format!(r#","media":{m}"#));
    format!(
        r#"{{"id":"tv-1","name":"TV","kind":"tv","media":["audio"],"accounts":[],"calls":[{{"id":1,"kind":"referred","state":"connected","sip_call_id":"x","peer":"sip:bob@home.example"{media}}},{{"id":2,"kind":"control","state":"connected","sip_call_id":"ctl","peer":"sip:m@home.example","media":null}}]}}"#
    )
}

#[test]
fn call_statistics_a_reader_cannot_read_cost_the_statistics_not_the_status() {
    let read = |media| {
        let status: TalkerStatus<Counters> =
            serde_json::from_str(&status_with_media(media)).unwrap();
        assert_eq!(status.calls.len(), 2, "every call still lists");
        assert_eq!(status.calls[0].state, TalkerCallState::Connected);
        assert_eq!(status.calls[1].media, None);
        status.calls.into_iter().next().unwrap().media
    };
    assert_eq!(
        read(Some(r#"{"codec":"Opus","packets":12,"added_later":true}"#)),
        Some(Counters {
            codec: CounterCodec::Opus,
            packets: 12
        }),
        "a field the reader does not know is skipped"
    );
    assert_eq!(read(Some("null")), None);
    assert_eq!(read(None), None);
    for unreadable in [
        r#"{"codec":"G722","packets":12}"#,
        r#"{"codec":"Opus"}"#,
        r#"{"codec":"Opus","packets":-1}"#,
        r#""opus""#,
        "[1,2]",
        "7",
    ] {
        assert_eq!(read(Some(unreadable)), None, "{unreadable}");
    }
    // Only the statistics are read leniently: the call's own words stay a
    // closed set.
    let bad_state = status_with_media(Some("null")).replace("\"connected\"", "\"on_hold\"");
    assert!(serde_json::from_str::<TalkerStatus<Counters>>(&bad_state).is_err());
    // And what is sent does not change: statistics are written as they are.
    wire(
        &TalkerCall {
            id: 1,
            kind: TalkerCallKind::Referred,
            state: TalkerCallState::Connected,
            sip_call_id: "x".into(),
            peer: "sip:bob@home.example".into(),
            media: Some(serde_json::json!({"codec": "Opus", "packets": 12})),
            held: None,
            dtmf_received: String::new(),
        },
        r#"{"id":1,"kind":"referred","state":"connected","sip_call_id":"x","peer":"sip:bob@home.example","media":{"codec":"Opus","packets":12},"held":null,"dtmf_received":""}"#,
    );
}

#[test]
fn a_held_call_and_the_dtmf_it_received() {
    let call = |held, dtmf_received: &str| TalkerCall::<Value> {
        id: 4,
        kind: TalkerCallKind::Referred,
        state: TalkerCallState::Connected,
        sip_call_id: "x".into(),
        peer: "sip:bob@home.example".into(),
        media: None,
        held,
        dtmf_received: dtmf_received.into(),
    };
    let json = |held: &str, dtmf: &str| {
        format!(
            r#"{{"id":4,"kind":"referred","state":"connected","sip_call_id":"x","peer":"sip:bob@home.example","media":null,"held":{held},"dtmf_received":"{dtmf}"}}"#
        )
    };
    wire(
        &call(Some(Held::ByPeer), "12#"),
        &json(r#""by_peer""#, "12#"),
    );
    wire(&call(Some(Held::ByUs), ""), &json(r#""by_us""#, ""));
    wire(&call(None, "*0AD9"), &json("null", "*0AD9"));
    // An agent from before the fields: not held, nothing received.
    let older: TalkerCall<Value> = serde_json::from_str(
        r#"{"id":4,"kind":"referred","state":"connected","sip_call_id":"x","peer":"sip:bob@home.example","media":null}"#,
    )
    .unwrap();
    assert_eq!(older, call(None, ""));
    // The hold words are a closed set, like the call's state.
    assert!(serde_json::from_str::<TalkerCall<Value>>(&json(r#""by_both""#, "")).is_err());
    assert!(serde_json::from_str::<TalkerCall<Value>>(&json(r#""ByPeer""#, "")).is_err());
}

#[test]
fn kinds_and_media_are_their_words() {
    let kinds: Vec<&str> = TalkerKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, ["tv", "pc", "phone", "tablet", "speaker", "other"]);
    for kind in TalkerKind::ALL {
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            Value::from(kind.as_str())
        );
        assert_eq!(kind.to_string().parse::<TalkerKind>().unwrap(), *kind);
    }
    assert_eq!("video".parse::<Media>().unwrap(), Media::Video);
    assert!(
        "audio,video".parse::<Media>().is_err(),
        "a DNS-SD word only"
    );
    assert!(Media::Video.covers(Media::Audio) && !Media::Audio.covers(Media::Video));
    let fridge = "fridge".parse::<TalkerKind>().unwrap_err();
    assert_eq!(
        fridge.to_string(),
        "unknown kind \"fridge\": expected one of tv pc phone tablet speaker other"
    );
}
