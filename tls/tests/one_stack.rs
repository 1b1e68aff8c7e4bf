//! One TLS stack in the whole workspace: `cargo tree` over every crate (this platform) finds no
//! aws-lc, no OpenSSL, no native-tls, and rustls built with ring as its only provider.
#![allow(clippy::expect_used)] // Test code: a panic is the failure report.

use std::process::Command;

fn cargo_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--workspace",
            "--offline",
            "--edges",
            "normal,build,dev",
        ])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn no_second_crypto_stack_in_the_graph() {
    let tree = cargo_tree(&["--prefix", "none"]);
    assert!(
        tree.contains("rustls v0.23"),
        "the graph was not read:\n{tree}"
    );
    for banned in [
        "aws-lc-rs",
        "aws-lc-sys",
        "aws-lc-fips-sys",
        "openssl-sys",
        "openssl v",
        "native-tls",
    ] {
        let hit = tree.lines().find(|line| line.starts_with(banned));
        assert!(
            hit.is_none(),
            "{banned} is in the dependency graph: {hit:?}"
        );
    }
}

#[test]
fn rustls_has_ring_and_no_other_provider() {
    let features = cargo_tree(&[
        "--prefix", "none", "--invert", "rustls", "--edges", "features", "--depth", "1",
    ]);
    assert!(
        features.contains("rustls feature \"ring\""),
        "ring is not on:\n{features}"
    );
    for other in ["aws-lc-rs", "aws_lc_rs", "fips"] {
        assert!(
            !features.contains(&format!("rustls feature \"{other}\"")),
            "rustls is built with {other}:\n{features}"
        );
    }
}
