//! The admin command line as an operator runs it: the real `matcher` binary
//! on a fresh SQLite file, adding a third-party SIP phone as a user's talker.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::process::Output;

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
