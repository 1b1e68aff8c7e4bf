//! Authentication, trust and routing-integrity rules of the SIP server.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod support;

use md5::{Digest, Md5};
use splitdial_sip::headers;
use support::{DOMAIN, Ua, header, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// alice and bob stand for MD5-only phones (`md5 = true`); carol is an
/// ordinary account, SHA-256 only.
const USERS: &str = "[users.alice]\npassword = \"alice-pw\"\nmd5 = true\n[users.bob]\npassword = \"bob-pw\"\nmd5 = true\n[users.carol]\npassword = \"carol-pw\"\n";

/// The `algorithm=` of each challenge `name` in `r`, in order.
fn challenge_algorithms(r: &rsipstack::sip::Response, name: &str) -> Vec<String> {
    headers::values(&r.headers, name)
        .map(|v| {
            v.split("algorithm=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect()
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Digest `Authorization` value answering `challenge` (MD5, qop=auth).
fn answer(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ha1 = md5_hex(&format!("{user}:{DOMAIN}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    )
}

fn md5_challenge(r: &rsipstack::sip::Response, name: &str) -> String {
    headers::values(&r.headers, name)
        .find(|v| v.contains("algorithm=MD5"))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn register_needs_the_right_password() {
    let server = server(Some(USERS)).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    bob.send(&bob.register_text("d1", 1, 300, "")).await;
    let r = bob.response().await;
    assert_eq!(r.status_code.code(), 401);
    let challenge = md5_challenge(&r, "WWW-Authenticate");

    let wrong = answer(
        &challenge,
        "bob",
        "nope",
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    bob.send(&bob.register_text("d1", 2, 300, &format!("Authorization: {wrong}\n")))
        .await;
    assert_eq!(bob.response().await.status_code.code(), 401);
    assert!(server.context().location.lookup("bob").is_empty());

    let right = answer(
        &challenge,
        "bob",
        "bob-pw",
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    bob.send(&bob.register_text("d1", 3, 300, &format!("Authorization: {right}\n")))
        .await;
    assert_eq!(bob.response().await.status_code.code(), 200);
    assert_eq!(server.context().location.lookup("bob").len(), 1);

    // Alice's credentials cannot register Bob.
    let alice_creds = answer(
        &challenge,
        "alice",
        "alice-pw",
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    bob.send(&bob.register_text("d1", 4, 300, &format!("Authorization: {alice_creds}\n")))
        .await;
    assert_eq!(bob.response().await.status_code.code(), 403);

    // Bob's accepted Authorization sent again (a captured REGISTER replayed): the nonce is
    // still alive, but its count was used, so it is challenged afresh as stale.
    bob.send(&bob.register_text("d1", 5, 300, &format!("Authorization: {right}\n")))
        .await;
    let replayed = bob.response().await;
    assert_eq!(replayed.status_code.code(), 401);
    assert!(
        headers::first(&replayed.headers, "WWW-Authenticate")
            .unwrap()
            .contains("stale=true"),
        "{replayed}"
    );
    server.shutdown().await;
}

/// Credentials made for another Request-URI (a captured answer moved to
/// another request) get 400, and nothing is registered.
#[tokio::test]
async fn a_digest_uri_other_than_the_request_uri_gets_400() {
    let server = server(Some(USERS)).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    bob.send(&bob.register_text("d1", 1, 300, "")).await;
    let challenge = md5_challenge(&bob.response().await, "WWW-Authenticate");
    let elsewhere = answer(
        &challenge,
        "bob",
        "bob-pw",
        "REGISTER",
        "sip:elsewhere.example",
    );
    bob.send(&bob.register_text("d1", 2, 300, &format!("Authorization: {elsewhere}\n")))
        .await;
    let r = bob.response().await;
    assert_eq!(r.status_code.code(), 400, "{r}");
    assert!(server.context().location.lookup("bob").is_empty());
    server.shutdown().await;
}

/// The proxy applies the same rule to its 407 answers: credentials made for
/// another callee's URI get 400 and the INVITE goes nowhere.
#[tokio::test]
async fn a_proxy_authorization_for_another_request_uri_gets_400() {
    let server = server(Some(USERS)).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    register_with_digest(&bob, "bob-pw").await;
    alice.send(&alice.invite_text("bob", "uri-1", "")).await;
    let r = alice.response().await;
    assert_eq!(r.status_code.code(), 407, "{r}");
    let challenge = md5_challenge(&r, "Proxy-Authenticate");
    alice.send(&format!("ACK sip:bob@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {};branch=z9hG4bKack2\nMax-Forwards: 70\nFrom: <sip:alice@{DOMAIN}>;tag=f{}\nTo: {}\nCall-ID: uri-1\nCSeq: 1 ACK\nContent-Length: 0\n\n", alice.local, alice.local.port(), header(&r.headers, "To").unwrap())).await;
    let elsewhere = answer(
        &challenge,
        "alice",
        "alice-pw",
        "INVITE",
        &format!("sip:carol@{DOMAIN}"),
    );
    let text = alice
        .invite_text(
            "bob",
            "uri-1",
            &format!("Proxy-Authorization: {elsewhere}\n"),
        )
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    alice.send(&text).await;
    let r = alice.response().await;
    assert_eq!(r.status_code.code(), 400, "{r}");
    assert!(
        bob.recv_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "the INVITE must not be forwarded"
    );
    server.shutdown().await;
}

/// A realm with an account marked `md5` sends MD5 first and SHA-256 second, to
/// every user alike: a marked one, an unmarked one, and one that does not exist.
#[tokio::test]
async fn one_challenge_set_md5_first_for_known_and_unknown_users() {
    let server = server(Some(USERS)).await;
    for user in ["alice", "carol", "nobody"] {
        let ua = Ua::new(user, server.local_addr()).await;
        ua.send(&ua.register_text("set-1", 1, 300, "")).await;
        let r = ua.response().await;
        assert_eq!(r.status_code.code(), 401, "{r}");
        assert_eq!(
            challenge_algorithms(&r, "WWW-Authenticate"),
            ["MD5", "SHA-256"],
            "{user}: {r}"
        );
        // The proxy's 407 carries the same set.
        ua.send(&ua.invite_text("bob", &format!("set-{user}"), ""))
            .await;
        let r = ua.response().await;
        assert_eq!(r.status_code.code(), 407, "{r}");
        assert_eq!(
            challenge_algorithms(&r, "Proxy-Authenticate"),
            ["MD5", "SHA-256"],
            "{user}: {r}"
        );
    }
    server.shutdown().await;
}

/// Without a marked account the realm offers SHA-256 alone, known user or not;
/// a realm whose file says `challenge = "md5"` (libre-based phones) offers MD5
/// alone, also to everyone.
#[tokio::test]
async fn a_realm_offers_its_one_set_alone_sha256_or_md5() {
    let realms = [
        ("[users.carol]\npassword = \"carol-pw\"\n", "SHA-256"),
        (
            "challenge = \"md5\"\n[users.carol]\npassword = \"carol-pw\"\nmd5 = true\n",
            "MD5",
        ),
    ];
    for (users, algorithm) in realms {
        let server = server(Some(users)).await;
        for user in ["carol", "nobody"] {
            let ua = Ua::new(user, server.local_addr()).await;
            ua.send(&ua.register_text("one-1", 1, 300, "")).await;
            let r = ua.response().await;
            assert_eq!(r.status_code.code(), 401, "{r}");
            assert_eq!(
                challenge_algorithms(&r, "WWW-Authenticate"),
                [algorithm],
                "{user}: {r}"
            );
        }
        server.shutdown().await;
    }
}

/// An MD5 answer, even with the right password, from an account not marked
/// `md5` gets 403 at the registrar and at the proxy, and registers nothing.
#[tokio::test]
async fn an_md5_answer_from_a_sha256_account_gets_403() {
    let server = server(Some(USERS)).await;
    let carol = Ua::new("carol", server.local_addr()).await;
    carol.send(&carol.register_text("c1", 1, 300, "")).await;
    let challenge = md5_challenge(&carol.response().await, "WWW-Authenticate");
    let creds = answer(
        &challenge,
        "carol",
        "carol-pw",
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    carol
        .send(&carol.register_text("c1", 2, 300, &format!("Authorization: {creds}\n")))
        .await;
    let r = carol.response().await;
    assert_eq!(r.status_code.code(), 403, "{r}");
    assert!(server.context().location.lookup("carol").is_empty());

    carol.send(&carol.invite_text("bob", "c2", "")).await;
    let r = carol.response().await;
    assert_eq!(r.status_code.code(), 407, "{r}");
    let challenge = md5_challenge(&r, "Proxy-Authenticate");
    let creds = answer(
        &challenge,
        "carol",
        "carol-pw",
        "INVITE",
        &format!("sip:bob@{DOMAIN}"),
    );
    let text = carol
        .invite_text("bob", "c2", &format!("Proxy-Authorization: {creds}\n"))
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    carol.send(&text).await;
    let r = carol.response().await;
    assert_eq!(r.status_code.code(), 403, "{r}");
    server.shutdown().await;
}

/// Registers `ua` with digest (users file in force).
async fn register_with_digest(ua: &Ua, password: &str) {
    let call_id = format!("reg-{}", ua.local.port());
    ua.send(&ua.register_text(&call_id, 1, 300, "")).await;
    let challenge = md5_challenge(&ua.response().await, "WWW-Authenticate");
    let creds = answer(
        &challenge,
        &ua.user,
        password,
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    );
    ua.send(&ua.register_text(&call_id, 2, 300, &format!("Authorization: {creds}\n")))
        .await;
    assert_eq!(ua.response().await.status_code.code(), 200);
}

#[tokio::test]
async fn calls_need_proxy_auth_and_get_an_asserted_identity_without_hints() {
    let server = server(Some(USERS)).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    register_with_digest(&bob, "bob-pw").await;

    // A UDP request from 127.0.0.1 (a --trusted address) is not trusted: 407.
    let hints = "Answer-Mode: Auto\nCall-Info: <sip:x@y>;answer-after=0\nP-Asserted-Identity: <sip:boss@home.example>\n";
    alice.send(&alice.invite_text("bob", "auth-1", hints)).await;
    let r = alice.response().await;
    assert_eq!(r.status_code.code(), 407);
    let challenge = md5_challenge(&r, "Proxy-Authenticate");
    alice.send(&format!("ACK sip:bob@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {};branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@{DOMAIN}>;tag=f{}\nTo: {}\nCall-ID: auth-1\nCSeq: 1 ACK\nContent-Length: 0\n\n", alice.local, alice.local.port(), header(&r.headers, "To").unwrap())).await;

    let creds = answer(
        &challenge,
        "alice",
        "alice-pw",
        "INVITE",
        &format!("sip:bob@{DOMAIN}"),
    );
    let text = alice
        .invite_text(
            "bob",
            "auth-1",
            &format!("{hints}Proxy-Authorization: {creds}\n"),
        )
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    alice.send(&text).await;
    let invite = bob.request().await;
    assert_eq!(invite.method.to_string(), "INVITE");
    assert_eq!(
        header(&invite.headers, "P-Asserted-Identity"),
        Some("<sip:alice@home.example>")
    );
    assert_eq!(
        header(&invite.headers, "Answer-Mode"),
        None,
        "hint stripped"
    );
    assert_eq!(header(&invite.headers, "Call-Info"), None, "hint stripped");
    assert_eq!(
        header(&invite.headers, "Proxy-Authorization"),
        None,
        "our credentials are consumed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn trusted_controller_over_tcp_keeps_its_hints() {
    let server = server(Some(USERS)).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    register_with_digest(&bob, "bob-pw").await;

    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let local = tcp.local_addr().unwrap();
    let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n";
    let text = format!(
        "INVITE sip:bob@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKctl1\r\nMax-Forwards: 70\r\nFrom: <sip:controller@{DOMAIN}>;tag=c1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: ctl-1\r\nCSeq: 1 INVITE\r\nContact: <sip:controller@{local};transport=tcp>\r\nCall-Info: <sip:controller@{DOMAIN}>;answer-after=0\r\nAnswer-Mode: Auto\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(text.as_bytes()).await.unwrap();
    let invite = bob.request().await;
    assert_eq!(header(&invite.headers, "Answer-Mode"), Some("Auto"));
    assert!(
        header(&invite.headers, "Call-Info")
            .unwrap()
            .contains("answer-after=0")
    );
    // Crossing from TCP to UDP: two Record-Route entries (RFC 5658).
    let rr = headers::list(&invite.headers, "Record-Route");
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].contains("transport=udp") && rr[1].contains("transport=tcp"),
        "{rr:?}"
    );
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 100"));
    server.shutdown().await;
}

#[tokio::test]
async fn forged_routes_are_refused() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let eve = Ua::new("eve", server.local_addr()).await;
    let addr = server.local_addr();
    // An in-dialog request with a Route naming us but not signed by us.
    for route in [
        format!("<sip:{addr};lr>"),
        format!("<sip:{addr};lr;sd=0123456789abcdef0123>"),
    ] {
        alice
            .send(&format!(
                "BYE sip:eve@{eve} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\nRoute: {route}\nFrom: <sip:alice@{DOMAIN}>;tag=x\nTo: <sip:eve@{DOMAIN}>;tag=y\nCall-ID: forged\nCSeq: 2 BYE\nContent-Length: 0\n\n",
                eve = eve.local, a = alice.local, br = alice.branch()
            ))
            .await;
        assert_eq!(alice.response().await.status_code.code(), 404);
    }
    // In-dialog without any Route of ours: not a dialog we route.
    alice
        .send(&format!(
            "BYE sip:eve@{eve} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\nFrom: <sip:alice@{DOMAIN}>;tag=x\nTo: <sip:eve@{DOMAIN}>;tag=y\nCall-ID: forged\nCSeq: 3 BYE\nContent-Length: 0\n\n",
            eve = eve.local, a = alice.local, br = alice.branch()
        ))
        .await;
    assert_eq!(alice.response().await.status_code.code(), 404);
    assert!(
        eve.recv_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "nothing relayed"
    );
    server.shutdown().await;
}

/// An unsigned Route naming us is popped (an outbound-proxy setting), but it
/// opens no relay: a Route to another host after it is still refused, out of a
/// dialog (403) and in one (404: it proves no dialog we record-routed).
#[tokio::test]
async fn preloaded_routes_naming_us_open_no_relay() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    let eve = Ua::new("eve", server.local_addr()).await;
    assert_eq!(bob.register().await.status_code.code(), 200);
    let addr = server.local_addr();
    for preloaded in [format!("<sip:{addr};lr>"), format!("<sip:{DOMAIN};lr>")] {
        let routes = format!("Route: {preloaded}\nRoute: <sip:{};lr>\n", eve.local);
        alice
            .send(&alice.invite_text("bob", "relay-1", &routes))
            .await;
        let r = alice.response().await;
        assert_eq!(r.status_code.code(), 403, "{r}");

        alice
            .send(&format!(
                "BYE sip:eve@{eve} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\n{routes}From: <sip:alice@{DOMAIN}>;tag=x\nTo: <sip:eve@{DOMAIN}>;tag=y\nCall-ID: relay-2\nCSeq: 2 BYE\nContent-Length: 0\n\n",
                eve = eve.local, a = alice.local, br = alice.branch()
            ))
            .await;
        assert_eq!(alice.response().await.status_code.code(), 404);
    }
    // A preloaded route naming us in front of a forged record-route: still 404.
    alice
        .send(&format!(
            "BYE sip:eve@{eve} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\nRoute: <sip:{addr};lr>\nRoute: <sip:{addr};lr;sd=0123456789abcdef0123>\nFrom: <sip:alice@{DOMAIN}>;tag=x\nTo: <sip:eve@{DOMAIN}>;tag=y\nCall-ID: relay-3\nCSeq: 3 BYE\nContent-Length: 0\n\n",
            eve = eve.local, a = alice.local, br = alice.branch()
        ))
        .await;
    let r = alice.response().await;
    assert_eq!(r.status_code.code(), 404);
    for ua in [&bob, &eve] {
        assert!(
            ua.recv_within(std::time::Duration::from_millis(300))
                .await
                .is_none(),
            "nothing relayed to {}",
            ua.user
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn gruu_reaches_exactly_one_device() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let tv = Ua::new("bob", server.local_addr()).await;
    let pc = Ua::new("bob", server.local_addr()).await;
    let instance = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    for (ua, inst) in [
        (&tv, instance),
        (&pc, "urn:uuid:11111111-2222-3333-4444-555555555555"),
    ] {
        let text = ua
            .register_text(
                &format!("g-{}", ua.local.port()),
                1,
                300,
                "Supported: gruu\n",
            )
            .replace(
                ";expires=300",
                &format!(";expires=300;+sip.instance=\"<{inst}>\""),
            );
        ua.send(&text).await;
        let r = ua.response().await;
        assert_eq!(r.status_code.code(), 200);
        assert!(
            headers::list(&r.headers, "Contact")
                .iter()
                .any(|c| c.contains("pub-gruu") && c.contains(inst)),
            "{r}"
        );
    }
    let text = alice.invite_text("bob", "gruu-1", "").replace(
        &format!("INVITE sip:bob@{DOMAIN}"),
        &format!("INVITE sip:bob@{DOMAIN};gr={instance}"),
    );
    alice.send(&text).await;
    let at_tv = tv.request().await;
    assert_eq!(at_tv.method.to_string(), "INVITE");
    assert!(
        pc.recv_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "only the TV rings"
    );

    // Re-registering the same instance from a new address replaces the binding.
    let tv2 = Ua::new("bob", server.local_addr()).await;
    let text = tv2.register_text("g-new", 1, 300, "").replace(
        ";expires=300",
        &format!(";expires=300;+sip.instance=\"<{instance}>\""),
    );
    tv2.send(&text).await;
    assert_eq!(tv2.response().await.status_code.code(), 200);
    assert_eq!(server.context().location.lookup("bob").len(), 2);
    server.shutdown().await;
}
