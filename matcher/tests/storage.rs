//! The registry's storage, the same scenarios against both engines: an SQLite
//! file and a real PostgreSQL server started by the test (Unix socket only).

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use matcher::registry::{
    ContactTarget, ControllerTrust, Media, Server, TalkerKind, TalkerSoftware, Transport,
};
use matcher::storage::{
    AccountReport, CallRecord, NewAccount, NewSipPhone, NewTalker, StorageError, Store,
    TokenSelector,
};
use splitdial_api::CallState;

fn server(domain: &str, cost: u32) -> Server {
    Server {
        domain: domain.into(),
        proxy: "127.0.0.1:5060".into(),
        transport: Transport::Tcp,
        cost,
        trust: ControllerTrust::Address,
    }
}

fn talker(id: &str, owner: i64, accounts: &[(&str, &str)]) -> NewTalker {
    NewTalker {
        id: id.into(),
        owner,
        name: format!("{id} name"),
        kind: TalkerKind::Tv,
        media: Media::Video,
        public_key: "AAAA".into(),
        instance: Some(format!("urn:uuid:{id}")),
        credential_hash: format!("hash-{id}"),
        accounts: accounts
            .iter()
            .map(|(aor, server)| NewAccount {
                aor: (*aor).into(),
                server: (*server).into(),
            })
            .collect(),
    }
}

async fn exercise(store: &Store) {
    // Users, unique names.
    let alice = store.add_user("alice", "Alice").await.unwrap();
    let bob = store.add_user("bob", "Bob").await.unwrap();
    assert!(matches!(
        store.add_user("alice", "Again").await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(store.require_user("bob").await.unwrap(), bob);
    assert_eq!(store.users().await.unwrap().len(), 2);

    // Tokens are found by hash only; enrollment tokens work once, unexpired.
    store
        .add_api_token(alice.id, "h-alice", "cli")
        .await
        .unwrap();
    assert_eq!(
        store.user_for_api_token("h-alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_for_api_token("h-nobody").await.unwrap(), None);

    // Revoking: by fingerprint (the hash's first digits), by label, or all; only that user's.
    for (hash, label) in [
        ("aaaaaaaaaaaa-laptop", "laptop"),
        ("bbbbbbbbbbbb-phone", "phone"),
        ("cccccccccccc-phone2", "phone"),
    ] {
        store.add_api_token(alice.id, hash, label).await.unwrap();
    }
    store
        .add_api_token(bob.id, "dddddddddddd-bob", "phone")
        .await
        .unwrap();
    let listed: Vec<(String, String)> = store
        .api_tokens(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.fingerprint, t.label))
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        listed.contains(&("aaaaaaaaaaaa".into(), "laptop".into())),
        "{listed:?}"
    );
    let revoke = |which| store.revoke_api_tokens(alice.id, which);
    assert_eq!(
        revoke(TokenSelector::Fingerprint("AAAAAAAAAAAA"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .user_for_api_token("aaaaaaaaaaaa-laptop")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        revoke(TokenSelector::Fingerprint("dddddddddddd"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(revoke(TokenSelector::Label("phone")).await.unwrap(), 2);
    assert_eq!(
        store
            .user_for_api_token("bbbbbbbbbbbb-phone")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.user_for_api_token("dddddddddddd-bob").await.unwrap(),
        Some(bob.clone()),
        "another user's token with the same label stays"
    );
    assert_eq!(revoke(TokenSelector::All).await.unwrap(), 1);
    assert_eq!(store.user_for_api_token("h-alice").await.unwrap(), None);
    assert!(store.api_tokens(alice.id).await.unwrap().is_empty());
    store
        .add_api_token(alice.id, "h-alice", "cli")
        .await
        .unwrap();
    let far = matcher::storage::now_secs() + 3600;
    store
        .add_enrollment_token(alice.id, "e1", far)
        .await
        .unwrap();
    store
        .add_enrollment_token(alice.id, "e-old", 1)
        .await
        .unwrap();
    assert_eq!(
        store.take_enrollment_token("e1").await.unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        store.take_enrollment_token("e1").await.unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        store.take_enrollment_token("e-old").await.unwrap(),
        None,
        "expired"
    );

    // Servers and talkers with accounts; an unknown server is refused whole.
    store
        .add_server(&server("family.example", 1))
        .await
        .unwrap();
    store.add_server(&server("work.example", 5)).await.unwrap();
    assert!(matches!(
        store.add_server(&server("work.example", 2)).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(store.servers().await.unwrap()[1].cost, 5);
    store
        .enroll_talker(&talker(
            "tv",
            alice.id,
            &[
                ("sip:alice-tv@family.example", "family.example"),
                ("sip:alice-tv@work.example", "work.example"),
            ],
        ))
        .await
        .unwrap();
    assert!(matches!(
        store
            .enroll_talker(&talker(
                "pc",
                alice.id,
                &[("sip:x@nowhere.example", "nowhere.example")]
            ))
            .await,
        Err(StorageError::NotFound(_))
    ));
    assert!(store.talker("pc").await.unwrap().is_none(), "rolled back");
    assert!(matches!(
        store.enroll_talker(&talker("tv", bob.id, &[])).await,
        Err(StorageError::Conflict(_))
    ));
    store
        .enroll_talker(&talker(
            "bob-phone",
            bob.id,
            &[("sip:bob@family.example", "family.example")],
        ))
        .await
        .unwrap();
    let with = store.talkers_with_accounts(alice.id).await.unwrap();
    assert_eq!(with.len(), 1);
    assert_eq!(with[0].1.len(), 2);
    assert_eq!(
        with[0].1[0].aor, "sip:alice-tv@family.example",
        "own order kept"
    );
    assert!(!with[0].1[0].registered);
    assert_eq!(
        store
            .talker_by_credential("hash-tv")
            .await
            .unwrap()
            .unwrap()
            .id,
        "tv"
    );

    // Heartbeats mark the talker seen and accounts registered, with GRUU.
    store
        .record_heartbeat(
            "tv",
            "busy",
            &[AccountReport {
                aor: "sip:alice-tv@family.example".into(),
                registered: true,
                gruu: Some("sip:alice-tv@family.example;gr=urn:uuid:tv".into()),
            }],
        )
        .await
        .unwrap();
    let accounts = store.accounts_of("tv").await.unwrap();
    assert!(accounts[0].registered && !accounts[1].registered);
    assert!(accounts[0].gruu.as_deref().unwrap().contains(";gr="));
    assert!(
        store
            .talker("tv")
            .await
            .unwrap()
            .unwrap()
            .last_seen
            .is_some()
    );
    assert!(matches!(
        store.record_heartbeat("ghost", "idle", &[]).await,
        Err(StorageError::NotFound(_))
    ));

    // A SIP phone: no key, its probes are its heartbeat; agents' accounts on
    // the same AOR are never touched by a probe.
    let phone = store
        .add_sip_phone(&NewSipPhone {
            id: "desk".into(),
            owner: alice.id,
            name: "Desk phone".into(),
            kind: TalkerKind::Phone,
            media: Media::Audio,
            accounts: vec![NewAccount {
                aor: "sip:alice-desk@family.example".into(),
                server: "family.example".into(),
            }],
        })
        .await
        .unwrap();
    assert_eq!(phone.software, TalkerSoftware::SipPhone);
    assert!(phone.public_key.is_empty() && phone.last_seen.is_none());
    assert_eq!(
        store.talker("tv").await.unwrap().unwrap().software,
        TalkerSoftware::Agent
    );
    assert_eq!(
        store.sip_phone_accounts().await.unwrap(),
        [(
            "sip:alice-desk@family.example".to_owned(),
            "family.example".to_owned()
        )]
    );
    store
        .record_sip_phone_probe("sip:alice-desk@family.example", true)
        .await
        .unwrap();
    let desk = store.talker("desk").await.unwrap().unwrap();
    assert!(desk.last_seen.is_some());
    assert!(store.accounts_of("desk").await.unwrap()[0].registered);
    store
        .record_sip_phone_probe("sip:alice-desk@family.example", false)
        .await
        .unwrap();
    assert!(!store.accounts_of("desk").await.unwrap()[0].registered);
    store
        .record_sip_phone_probe("sip:alice-tv@family.example", false)
        .await
        .unwrap();
    assert!(
        store.accounts_of("tv").await.unwrap()[0].registered,
        "a probe never touches an agent's account"
    );
    assert!(matches!(
        store
            .add_sip_phone(&NewSipPhone {
                id: "desk".into(),
                owner: alice.id,
                name: "Again".into(),
                kind: TalkerKind::Phone,
                media: Media::Audio,
                accounts: Vec::new(),
            })
            .await,
        Err(StorageError::Conflict(_))
    ));

    // Contacts: a user contact is accepted only once both added each other.
    store
        .add_contact(alice.id, "bob", &ContactTarget::User { user: bob.id })
        .await
        .unwrap();
    store
        .add_contact(
            alice.id,
            "office",
            &ContactTarget::Address {
                aor: "sip:desk@work.example".into(),
                server: "work.example".into(),
            },
        )
        .await
        .unwrap();
    let view = store
        .contact_by_name(alice.id, "bob")
        .await
        .unwrap()
        .unwrap();
    assert!(!view.accepted, "bob has not added alice yet");
    assert!(
        store
            .contact_by_name(alice.id, "office")
            .await
            .unwrap()
            .unwrap()
            .accepted
    );
    store
        .add_contact(bob.id, "alice", &ContactTarget::User { user: alice.id })
        .await
        .unwrap();
    assert!(
        store
            .contact_by_name(alice.id, "bob")
            .await
            .unwrap()
            .unwrap()
            .accepted
    );
    // A route query's inputs in one statement: alice's talkers first (oldest
    // first, accounts in their order), then bob's, and the servers of them
    // all; an address contact brings its own server.
    let inputs = store.route_inputs(alice.id, "bob").await.unwrap().unwrap();
    assert!(inputs.contact.accepted);
    let mut expected = store.talkers_with_accounts(alice.id).await.unwrap();
    expected.extend(store.talkers_with_accounts(bob.id).await.unwrap());
    assert_eq!(inputs.talkers, expected, "the same rows, in the same order");
    let ids: Vec<&str> = inputs.talkers.iter().map(|(t, _)| t.id.as_str()).collect();
    assert_eq!(ids.last(), Some(&"bob-phone"));
    let domains: Vec<&str> = inputs.servers.iter().map(|s| s.domain.as_str()).collect();
    assert_eq!(domains, ["family.example", "work.example"]);
    let office = store
        .route_inputs(alice.id, "office")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(office.talkers.len(), 2, "only alice's side");
    assert!(office.servers.iter().any(|s| s.domain == "work.example"));
    assert!(
        store
            .route_inputs(alice.id, "nobody")
            .await
            .unwrap()
            .is_none()
    );
    let back = store.route_inputs(bob.id, "alice").await.unwrap().unwrap();
    assert_eq!(back.talkers[0].0.id, "bob-phone", "the caller's side first");
    assert_eq!(back.talkers.len(), 3);
    let names: Vec<String> = store
        .contacts_of(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.contact.name)
        .collect();
    assert_eq!(names, ["bob", "office"]);

    // Calls and their event log; unfinished calls are found after a restart.
    let call = new_call("c1", alice.id, view.contact.id);
    store.insert_call(&call).await.unwrap();
    let mut second = call.clone();
    second.id = "c2".into();
    store.insert_call(&second).await.unwrap();
    let e1 = store
        .append_call_event("c1", CallState::DialingTalker, None, "{}")
        .await
        .unwrap();
    let e2 = store
        .append_call_event("c1", CallState::Connected, None, "{}")
        .await
        .unwrap();
    assert_eq!((e1.seq, e2.seq), (1, 2));
    assert_eq!(store.unfinished_calls("m1").await.unwrap(), ["c1", "c2"]);
    store
        .append_call_event("c1", CallState::Ended, Some("hung_up"), "{}")
        .await
        .unwrap();
    let c1 = store.call("c1").await.unwrap().unwrap();
    assert_eq!(
        (c1.state.as_str(), c1.reason.as_deref()),
        ("ended", Some("hung_up"))
    );
    assert!(c1.ended_at.is_some());
    assert_eq!(store.call_events("c1", 1).await.unwrap().len(), 2);
    assert_eq!(store.unfinished_calls("m1").await.unwrap(), ["c2"]);
    assert!(store.unfinished_calls("m2").await.unwrap().is_empty());

    // Signing keys: created, listed, rotated with overlap.
    store.add_signing_key("k1", &"11".repeat(32)).await.unwrap();
    store.add_signing_key("k2", &"22".repeat(32)).await.unwrap();
    store.retire_signing_keys_except("k2").await.unwrap();
    let keys = store.signing_keys(3600).await.unwrap();
    assert_eq!(keys.len(), 2, "retired key still published in the overlap");
    assert!(keys.iter().any(|k| k.kid == "k2" && k.retired_at.is_none()));
    assert_eq!(store.signing_keys(-10).await.unwrap().len(), 1);
}

/// A call `id` of `caller` to contact `contact_id`, just placed by matcher
/// instance `m1`.
fn new_call(id: &str, caller: i64, contact_id: i64) -> CallRecord {
    CallRecord {
        id: id.into(),
        caller,
        contact_id,
        route: "{}".into(),
        media: Media::Audio,
        state: CallState::Matching,
        reason: None,
        owner_instance: "m1".into(),
        created_at: 1,
        ended_at: None,
    }
}

/// Events of two calls appended from many tasks at once (a call's events
/// come in bursts, other calls and heartbeats write meanwhile): every append
/// succeeds and each call's sequence numbers are 1..=N without a gap. On
/// SQLite an append that read before it wrote once failed at once with
/// "database is locked" when another writer committed in between.
async fn concurrent_appends(store: &Store) {
    let alice = store.user_by_name("alice").await.unwrap().unwrap();
    let contact = store
        .contact_by_name(alice.id, "bob")
        .await
        .unwrap()
        .unwrap();
    for id in ["busy-1", "busy-2"] {
        store
            .insert_call(&new_call(id, alice.id, contact.contact.id))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let call = if task % 2 == 0 { "busy-1" } else { "busy-2" };
            for _ in 0..25 {
                store
                    .append_call_event(call, CallState::CalleeRinging, None, "{}")
                    .await
                    .unwrap_or_else(|e| panic!("append to {call}: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for call in ["busy-1", "busy-2"] {
        let seqs: Vec<i64> = store
            .call_events(call, 0)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<i64>>(), "{call}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_the_registry_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("sub/matcher.db").display());
    let store = Store::open(&url).await.unwrap();
    exercise(&store).await;
    concurrent_appends(&store).await;
    store.close().await;
    // Reopening runs no migration twice and finds everything.
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.users().await.unwrap().len(), 2);
    assert_eq!(
        again.call("c1").await.unwrap().unwrap().state,
        CallState::Ended
    );
}

/// The file holds the signing seeds: created 0600 in a 0700 directory, and
/// refused with one line naming it once its group or others can read it.
#[tokio::test]
async fn the_sqlite_file_is_private_or_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new/matcher.db");
    let url = format!("sqlite:{}", file.display());
    let store = Store::open(&url).await.unwrap();
    matcher::signing::KeyRing::load(&store).await.unwrap();
    store.close().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    for shared in [0o640, 0o604] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(shared)).unwrap();
        let e = Store::open(&url).await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "database file {}: readable by group or others (mode {shared:o}); it holds the signing keys: chmod 600 it",
                file.display()
            )
        );
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Store::open(&url).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: run scripts/test"]
async fn postgres_holds_the_same_registry() {
    // The server runs as the package's `postgres` user, which takes root to become.
    testbed::require_root();
    assert!(
        testbed::postgres_available(),
        "PostgreSQL is not installed: this test needs it (Debian package postgresql; \
         scripts/install-deps installs every test prerequisite)"
    );
    let pg = testbed::Postgres::start().unwrap();
    let url = pg.create_database("matcher_test").unwrap();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.engine(), matcher::storage::Engine::Postgres);
    exercise(&store).await;
    concurrent_appends(&store).await;
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.users().await.unwrap().len(), 2);
    again.close().await;
}

#[tokio::test]
async fn a_url_for_another_engine_is_a_clear_error() {
    let err = Store::open("mysql://x").await.unwrap_err();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}
