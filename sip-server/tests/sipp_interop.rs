//! Interop with real sipp (Debian `sip-tester`) through the proxy under test:
//! REGISTER with and without digest, and bounded call runs sipp UAC -> proxy ->
//! sipp UAS in which every call must complete.
//!
//! The same stages run against Kamailio with `interop/kamailio.cfg`: that proves the
//! scenarios themselves (a failure only against sip-server is sip-server's), and
//! switching the server under test is the one [`ProxyKind`] parameter.
//!
//! Each test runs in its own network namespace (fixed ports, nothing else there;
//! sipp binds its control port on 0.0.0.0, which must never be the host's), so it
//! needs root, like the rest of the suite (`scripts/test`). Heavy stages run one at
//! a time (a lock), with generous timeouts for 2 busy cores.

#[path = "../interop/harness.rs"]
mod harness;

use harness::{Auth, CallCredentials, CallLoad, Proxy, ProxyKind, Sipp};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use testbed::Namespace;

const PROXY_PORT: u16 = 5060;
const UAS_PORT: u16 = 5070;
const UAC_PORT: u16 = 5080;
const REGISTER_PORT: u16 = 5090;

/// sipp load and proxies are heavy on 2 cores: one stage at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sip_server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sip-server"))
}

/// A namespace with the proxy under test on 127.0.0.1:5060.
struct Rig {
    proxy: Proxy,
    ns: Namespace,
}

impl Rig {
    fn start(kind: ProxyKind, auth: Auth) -> Self {
        testbed::require_root();
        testbed::require_program("sipp", "sip-tester");
        if kind == ProxyKind::Kamailio {
            testbed::require_program("kamailio", "kamailio");
        }
        let ns = Namespace::create("sdsipp").expect("create a network namespace");
        let proxy = Proxy::start(kind, auth, PROXY_PORT, Some(ns.name()), &sip_server_bin())
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        Self { proxy, ns }
    }

    fn sipp(&self, scenario: &str, local_port: u16) -> Sipp {
        Sipp::new(scenario, local_port, self.proxy.addr).in_netns(self.ns.name())
    }

    fn register(&self, user: &str, credentials: Option<(&str, &str)>) -> harness::SippOutcome {
        harness::register(
            user,
            credentials,
            REGISTER_PORT,
            self.proxy.addr,
            Some(self.ns.name()),
        )
        .expect("run sipp")
    }

    /// Checks that the proxy is still up; shows its log otherwise.
    fn assert_alive(&mut self) {
        assert!(
            self.proxy.is_running(),
            "{} exited; log:\n{}",
            self.proxy.kind.name(),
            self.proxy.log()
        );
    }
}

fn registration(kind: ProxyKind) {
    let _heavy = heavy();
    let started = Instant::now();
    {
        let mut rig = Rig::start(kind, Auth::Open);
        let open = rig.register("alice", None);
        assert!(open.succeeded(), "open REGISTER: {}", open.report());
        rig.assert_alive();
    }
    {
        let mut rig = Rig::start(kind, Auth::Digest);

        let good = rig.register("alice", Some(("alice", "alice-secret")));
        assert!(good.succeeded(), "REGISTER with digest: {}", good.report());

        let wrong = rig.register("alice", Some(("alice", "not-the-password")));
        assert!(
            !wrong.succeeded() && !wrong.timed_out,
            "REGISTER with a wrong password must be refused: {}",
            wrong.report()
        );
        assert!(
            wrong.errors.contains("SIP/2.0 401") || wrong.errors.contains("SIP/2.0 403"),
            "the refusal should be a 401 or 403: {}",
            wrong.report()
        );

        // register.xml expects 200 at once; the registrar must challenge instead.
        let bare = rig
            .sipp("register.xml", REGISTER_PORT)
            .service("bob")
            .calls(1);
        let bare = bare.run(Duration::from_secs(60)).expect("run sipp");
        assert!(
            !bare.succeeded() && bare.errors.contains("SIP/2.0 401"),
            "REGISTER without credentials must get 401: {}",
            bare.report()
        );

        // Credentials of one account cannot register another.
        let foreign = rig.register("bob", Some(("alice", "alice-secret")));
        assert!(
            !foreign.succeeded(),
            "alice's credentials must not register bob: {}",
            foreign.report()
        );
        rig.assert_alive();
    }
    eprintln!(
        "{}: registration stages took {:.1} s",
        kind.name(),
        started.elapsed().as_secs_f64()
    );
}

fn assert_every_call_completed(kind: ProxyKind, run: &harness::CallRun, calls: u64) {
    let uac = &run.uac;
    assert!(
        uac.succeeded(),
        "{}: the calling sipp reported failed calls: {}\ncallee: {}",
        kind.name(),
        uac.report(),
        run.uas.report()
    );
    let stats = uac.stats.expect("sipp statistics");
    assert_eq!(
        (stats.created, stats.successful, stats.failed),
        (calls, calls, 0),
        "{}: {}",
        kind.name(),
        uac.report()
    );
    assert!(
        run.uas.succeeded(),
        "{}: the answering sipp did not complete every call: {}",
        kind.name(),
        run.uas.report()
    );
}

fn calls(kind: ProxyKind) {
    let _heavy = heavy();
    let mut rig = Rig::start(kind, Auth::Open);
    let load = CallLoad {
        calls: 1000,
        rate: 100,
        auth: None,
        timeout: Duration::from_secs(180),
        uac_args: Vec::new(),
    };
    let started = Instant::now();
    let run = harness::run_calls(
        rig.proxy.addr,
        UAS_PORT,
        UAC_PORT,
        &load,
        Some(rig.ns.name()),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    eprintln!(
        "{}: 1000 calls at 100/s took {:.1} s",
        kind.name(),
        started.elapsed().as_secs_f64()
    );
    assert_every_call_completed(kind, &run, load.calls);
    rig.assert_alive();
}

fn authenticated_calls(kind: ProxyKind) {
    let _heavy = heavy();
    let mut rig = Rig::start(kind, Auth::Digest);
    let load = CallLoad {
        calls: 200,
        rate: 50,
        auth: Some(CallCredentials::from_users_file()),
        timeout: Duration::from_secs(120),
        uac_args: Vec::new(),
    };
    let run = harness::run_calls(
        rig.proxy.addr,
        UAS_PORT,
        UAC_PORT,
        &load,
        Some(rig.ns.name()),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    assert_every_call_completed(kind, &run, load.calls);
    rig.assert_alive();
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sip_server_registers_sipp_with_and_without_digest() {
    registration(ProxyKind::SipServer);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sip_server_completes_1000_sipp_calls_at_100_per_second() {
    calls(ProxyKind::SipServer);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn sip_server_completes_sipp_calls_with_proxy_authentication() {
    authenticated_calls(ProxyKind::SipServer);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kamailio_registers_sipp_with_and_without_digest() {
    registration(ProxyKind::Kamailio);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kamailio_completes_1000_sipp_calls_at_100_per_second() {
    calls(ProxyKind::Kamailio);
}

#[test]
#[ignore = "needs root: run scripts/test"]
fn kamailio_completes_sipp_calls_with_proxy_authentication() {
    authenticated_calls(ProxyKind::Kamailio);
}
