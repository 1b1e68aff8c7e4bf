//! Namespaces are created, used and removed (needs root; the suite runs as root
//! inside a private network namespace).

use std::time::Duration;
use testbed::{Namespace, Spawn};

#[test]
#[ignore = "needs root: run scripts/test"]
fn a_namespace_hosts_processes_and_is_removed_with_them() {
    testbed::require_root();
    let ns = Namespace::create("tbns").expect("create namespace");
    let name = ns.name().to_owned();
    let links = ns.exec(&["ip", "-o", "link"]).unwrap();
    assert!(links.contains("lo"), "{links}");
    assert!(
        !links.contains("eth0"),
        "a fresh namespace has only loopback: {links}"
    );

    let mut inside = Spawn::new("sh")
        .args(["-c", "echo inside; exec sleep 60"])
        .in_netns(&name)
        .start()
        .unwrap();
    inside
        .wait_for_output("inside", Duration::from_secs(5))
        .unwrap();
    assert!(ns.pids().contains(&(inside.pid() as i32)));

    drop(ns);
    let listed = testbed::netns::ip(&["netns", "list"]).unwrap();
    assert!(!listed.contains(&name), "namespace still listed: {listed}");
    // The process inside was ended with the namespace.
    let exited = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        inside.try_wait().unwrap().is_some()
    });
    assert!(exited, "process inside the namespace survived its removal");
}
