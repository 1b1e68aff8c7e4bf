//! The registrar and proxy, exercised with raw SIP over UDP on loopback.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod support;

use splitdial_sip::headers;
use std::time::Duration;
use support::{DOMAIN, Ua, header, server};

#[tokio::test]
async fn answers_options_to_itself() {
    let server = server(None).await;
    let ua = Ua::new("alice", server.local_addr()).await;
    ua.send(&format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {};branch={}\nMax-Forwards: 70\nFrom: <sip:alice@{DOMAIN}>;tag=1\nTo: <sip:{DOMAIN}>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
        ua.local, ua.branch()
    ))
    .await;
    let r = ua.response().await;
    assert_eq!(r.status_code.code(), 200);
    assert!(header(&r.headers, "Allow").unwrap().contains("INVITE"));
    server.shutdown().await;
}

#[tokio::test]
async fn call_is_record_routed_and_loose_routed_both_ways() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    assert_eq!(bob.register().await.status_code.code(), 200);

    alice.send(&alice.invite_text("bob", "call-1", "")).await;
    let invite = bob.request().await;
    assert_eq!(invite.method.to_string(), "INVITE");
    assert_eq!(
        headers::list(&invite.headers, "Via").len(),
        2,
        "proxy adds its Via"
    );
    let rr = headers::list(&invite.headers, "Record-Route");
    assert_eq!(rr.len(), 1);
    assert!(rr[0].contains(";lr") && rr[0].contains("sd="), "{rr:?}");
    assert_eq!(header(&invite.headers, "Max-Forwards"), Some("69"));

    bob.answer(&invite, 180, "Ringing", "b1").await;
    assert_eq!(alice.response().await.status_code.code(), 180);
    bob.answer(&invite, 200, "OK", "b1").await;
    let ok = alice.response().await;
    assert_eq!(ok.status_code.code(), 200);
    assert_eq!(
        headers::list(&ok.headers, "Via").len(),
        1,
        "proxy removed its Via"
    );

    // ACK and BYE from alice follow the Record-Route to bob.
    let route = &headers::list(&ok.headers, "Record-Route")[0];
    let to = header(&ok.headers, "To").unwrap();
    for (method, cseq) in [("ACK", "1 ACK"), ("BYE", "2 BYE")] {
        alice
            .send(&format!(
                "{method} sip:bob@{bob} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\nRoute: {route}\nFrom: <sip:alice@{DOMAIN}>;tag=f{ap}\nTo: {to}\nCall-ID: call-1\nCSeq: {cseq}\nContent-Length: 0\n\n",
                bob = bob.local, a = alice.local, br = alice.branch(), ap = alice.local.port()
            ))
            .await;
        let got = bob.request().await;
        assert_eq!(got.method.to_string(), method);
        assert!(
            headers::list(&got.headers, "Route").is_empty(),
            "our Route was popped"
        );
        if method == "BYE" {
            bob.answer(&got, 200, "OK", "").await;
            assert_eq!(alice.response().await.status_code.code(), 200);
        }
    }
    server.shutdown().await;
}

/// A phone configured with the server as its outbound proxy preloads an
/// unsigned `Route` naming the server (by address or by domain): RFC 3261 §16.4
/// has the proxy pop it, and the requests are handled as without it.
#[tokio::test]
async fn outbound_proxy_routes_naming_us_are_popped() {
    let server = server(None).await;
    let addr = server.local_addr();
    for (n, preloaded) in [
        format!("<sip:{addr};lr>"),
        format!("<sip:{DOMAIN};lr>"),
        format!("<sip:{addr};transport=udp;lr>"),
    ]
    .iter()
    .enumerate()
    {
        let alice = Ua::new("alice", addr).await;
        let bob = Ua::new("bob", addr).await;
        let route = format!("Route: {preloaded}\n");
        bob.send(&bob.register_text(&format!("ob-reg-{n}"), 1, 300, &route))
            .await;
        let r = bob.response().await;
        assert_eq!(r.status_code.code(), 200, "REGISTER via {preloaded}: {r}");

        let call_id = format!("ob-call-{n}");
        alice
            .send(&alice.invite_text("bob", &call_id, &route))
            .await;
        let invite = bob.request().await;
        assert_eq!(invite.method.to_string(), "INVITE", "via {preloaded}");
        assert!(
            headers::list(&invite.headers, "Route").is_empty(),
            "the preloaded Route was popped: {invite}"
        );
        assert_eq!(headers::list(&invite.headers, "Record-Route").len(), 1);
        bob.answer(&invite, 200, "OK", "b1").await;
        let ok = alice.response().await;
        assert_eq!(ok.status_code.code(), 200);

        // In the dialog the phone may still put its outbound proxy first: the
        // BYE follows the record-route to bob all the same.
        let rr = &headers::list(&ok.headers, "Record-Route")[0];
        let to = header(&ok.headers, "To").unwrap();
        alice
            .send(&format!(
                "BYE sip:bob@{bob} SIP/2.0\nVia: SIP/2.0/UDP {a};branch={br}\nMax-Forwards: 70\nRoute: {preloaded}\nRoute: {rr}\nFrom: <sip:alice@{DOMAIN}>;tag=f{ap}\nTo: {to}\nCall-ID: {call_id}\nCSeq: 2 BYE\nContent-Length: 0\n\n",
                bob = bob.local, a = alice.local, br = alice.branch(), ap = alice.local.port()
            ))
            .await;
        let bye = bob.request().await;
        assert_eq!(bye.method.to_string(), "BYE");
        assert!(headers::list(&bye.headers, "Route").is_empty(), "{bye}");
        bob.answer(&bye, 200, "OK", "").await;
        assert_eq!(alice.response().await.status_code.code(), 200);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_and_unregistered_users() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    alice.send(&alice.invite_text("nobody", "c404", "")).await;
    assert_eq!(alice.response().await.status_code.code(), 404);

    bob.register().await;
    let call_id = format!("reg-bob-{}", bob.local.port());
    bob.send(&bob.register_text(&call_id, 50, 0, "")).await;
    assert_eq!(bob.response().await.status_code.code(), 200);
    alice.send(&alice.invite_text("bob", "c480", "")).await;
    assert_eq!(alice.response().await.status_code.code(), 480);
    server.shutdown().await;
}

#[tokio::test]
async fn too_many_hops_and_foreign_domains() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    bob.register().await;
    let text = alice
        .invite_text("bob", "c483", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    alice.send(&text).await;
    assert_eq!(alice.response().await.status_code.code(), 483);

    let text = alice.invite_text("bob", "c403", "").replace(
        &format!("INVITE sip:bob@{DOMAIN}"),
        "INVITE sip:bob@example.com",
    );
    alice.send(&text).await;
    assert_eq!(alice.response().await.status_code.code(), 403);
    server.shutdown().await;
}

#[tokio::test]
async fn registration_limits_and_wildcard() {
    let server = server(None).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    bob.send(&bob.register_text("r1", 1, 10, "")).await;
    let r = bob.response().await;
    assert_eq!(r.status_code.code(), 423);
    assert_eq!(header(&r.headers, "Min-Expires"), Some("60"));

    bob.send(&bob.register_text("r1", 2, 100_000, "")).await;
    let r = bob.response().await;
    assert_eq!(r.status_code.code(), 200);
    assert!(
        header(&r.headers, "Contact")
            .unwrap()
            .contains("expires=3600"),
        "{r}"
    );

    // Second device of the same account.
    let bob2 = Ua::new("bob", server.local_addr()).await;
    assert_eq!(bob2.register().await.status_code.code(), 200);
    assert_eq!(server.context().location.lookup("bob").len(), 2);

    let wildcard = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {};branch={}\nMax-Forwards: 70\nFrom: <sip:bob@{DOMAIN}>;tag=w\nTo: <sip:bob@{DOMAIN}>\nCall-ID: r1\nCSeq: 3 REGISTER\nContact: *\nExpires: 0\nContent-Length: 0\n\n",
        bob.local,
        bob.branch()
    );
    bob.send(&wildcard).await;
    assert_eq!(bob.response().await.status_code.code(), 200);
    assert!(server.context().location.lookup("bob").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn forks_to_every_device_and_cancels_the_others() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let tv = Ua::new("bob", server.local_addr()).await;
    let pc = Ua::new("bob", server.local_addr()).await;
    tv.register().await;
    pc.register().await;

    alice.send(&alice.invite_text("bob", "fork-1", "")).await;
    let at_tv = tv.request().await;
    let at_pc = pc.request().await;
    tv.answer(&at_tv, 180, "Ringing", "tv").await;
    pc.answer(&at_pc, 180, "Ringing", "pc").await;
    assert_eq!(alice.response().await.status_code.code(), 180);
    assert_eq!(alice.response().await.status_code.code(), 180);

    tv.answer(&at_tv, 200, "OK", "tv").await;
    assert_eq!(alice.response().await.status_code.code(), 200);
    let cancel = pc.request().await;
    assert_eq!(cancel.method.to_string(), "CANCEL");
    assert!(
        header(&cancel.headers, "Reason")
            .unwrap()
            .contains("cause=200"),
        "RFC 3326 Reason"
    );
    pc.answer(&cancel, 200, "OK", "").await;
    pc.answer(&at_pc, 487, "Request Terminated", "pc").await;
    // The proxy ACKs the 487 itself (hop by hop).
    let ack = pc.request().await;
    assert_eq!(ack.method.to_string(), "ACK");
    // Alice never sees the 487.
    assert!(
        alice
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn caller_cancel_reaches_the_ringing_device() {
    let server = server(None).await;
    let alice = Ua::new("alice", server.local_addr()).await;
    let bob = Ua::new("bob", server.local_addr()).await;
    bob.register().await;
    let invite_text = alice.invite_text("bob", "cancel-1", "");
    alice.send(&invite_text).await;
    let invite = bob.request().await;
    bob.answer(&invite, 180, "Ringing", "b").await;
    assert_eq!(alice.response().await.status_code.code(), 180);

    // CANCEL: same branch, same Call-ID/From/To/CSeq number.
    let branch = invite_text
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    alice
        .send(&format!(
            "CANCEL sip:bob@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {};branch={branch};rport\nMax-Forwards: 70\nFrom: <sip:alice@{DOMAIN}>;tag=f{}\nTo: <sip:bob@{DOMAIN}>\nCall-ID: cancel-1\nCSeq: 1 CANCEL\nContent-Length: 0\n\n",
            alice.local, alice.local.port()
        ))
        .await;
    assert_eq!(
        alice.response().await.status_code.code(),
        200,
        "CANCEL answered"
    );
    let cancel = bob.request().await;
    assert_eq!(cancel.method.to_string(), "CANCEL");
    bob.answer(&cancel, 200, "OK", "").await;
    bob.answer(&invite, 487, "Request Terminated", "b").await;
    assert_eq!(alice.response().await.status_code.code(), 487);
    server.shutdown().await;
}
