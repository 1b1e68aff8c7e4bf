//! Starting a [`HouseholdSpec`] as real processes, asking it things, and
//! ending it: servers, matcher, enrolled agents, optionally on a simulated LAN.
//! The start-up sequence itself is in `startup.rs`.

mod observe;
mod startup;

pub use observe::call_of_kind;

use crate::Error;
use crate::http::{self, Response};
use crate::spec::{DIALER_HOST, HouseholdSpec, TalkerSpec};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::{Lan, Process, Spawn};

/// Where the household's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Everything on 127.0.0.1 in the current network namespace; no mDNS.
    /// The servers trust 127.0.0.1 (the controller's TCP connections leave
    /// from it whatever its listen address), so there the agents' own TCP
    /// requests are trusted too: a test shortcut, not a deployment.
    Loopback,
    /// A simulated LAN (needs root): servers and matcher on host `cloud`,
    /// every talker on its own host (at-home talkers advertise over mDNS on
    /// `eth0`), and host `dialer` left free for the dialer.
    Lan,
}

/// How long an agent may take to end its calls and un-register on SIGTERM
/// (its own bound is 5 s for calls plus the un-registration).
const AGENT_STOP_GRACE: Duration = Duration::from_secs(10);
/// Per-request timeout of the household's own HTTP checks.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One running `sip-server`.
#[derive(Debug)]
pub struct RunningServer {
    /// The domain it serves.
    pub domain: String,
    /// Its UDP and TCP address.
    pub addr: SocketAddr,
    /// The process (its log is the server's output).
    pub process: Process,
}

/// One running talker agent.
#[derive(Debug)]
pub struct RunningTalker {
    /// What it was started from.
    pub spec: TalkerSpec,
    /// Its SIP endpoint.
    pub sip_addr: SocketAddr,
    /// Its local status API (`GET /v1/status`, challenge, owner actions);
    /// `None` for a baresip phone, which has none.
    pub status_addr: Option<SocketAddr>,
    /// The Ed25519 key its status API's certificate carries (from its ready
    /// line); `None` for a baresip phone.
    pub status_key: Option<[u8; 32]>,
    /// The LAN host it runs on (`None` on loopback).
    pub netns: Option<String>,
    /// The process (its log holds the `media summary` lines).
    pub process: Process,
}

/// A started household. Dropping it ends every process (agents with SIGTERM
/// first, then the matcher, then the servers) and removes the LAN.
#[derive(Debug)]
pub struct Household {
    spec: HouseholdSpec,
    placement: Placement,
    // Stopped in this order by `stop_all`; the LAN and the directory go last.
    talkers: Vec<RunningTalker>,
    matcher: Option<Process>,
    servers: Vec<RunningServer>,
    matcher_addr: SocketAddr,
    tokens: BTreeMap<String, String>,
    timings: Vec<(String, Duration)>,
    lan: Option<Lan>,
    /// The CA and the matcher's certificate; `None` when the matcher speaks plain HTTP.
    pki: Option<crate::pki::HouseholdPki>,
    dir: tempfile::TempDir,
}

impl Household {
    /// The spec it was started from.
    pub fn spec(&self) -> &HouseholdSpec {
        &self.spec
    }

    /// Where it runs.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The matcher's base URL: `https://IP:PORT`, or `http://127.0.0.1:PORT` with
    /// [`MatcherTransport::InsecureHttp`](crate::MatcherTransport::InsecureHttp).
    pub fn matcher_url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.matcher_addr)
    }

    /// The household CA's certificate, which the dialer and the talkers trust
    /// for the matcher; `None` when the matcher speaks plain HTTP (there is no CA).
    pub fn matcher_ca(&self) -> Option<&Path> {
        self.pki.as_ref().map(|pki| pki.ca_certificate.as_path())
    }

    /// How a client in the household trusts the matcher: its CA (the system's roots,
    /// as a dialer without a CA configured, when the matcher speaks plain HTTP and no
    /// certificate is ever seen).
    pub fn matcher_trust(&self) -> splitdial_tls::ServerTrust {
        match &self.pki {
            Some(pki) => splitdial_tls::ServerTrust {
                roots: splitdial_tls::TrustRoots::CaFile(pki.ca_certificate.clone()),
                pins: Vec::new(),
            },
            None => splitdial_tls::ServerTrust::system(),
        }
    }

    /// The matcher's HTTP address.
    pub fn matcher_addr(&self) -> SocketAddr {
        self.matcher_addr
    }

    /// `user`'s API bearer token.
    pub fn token(&self, user: &str) -> Option<&str> {
        self.tokens.get(user).map(String::as_str)
    }

    /// The running talker `id`.
    pub fn talker(&self, id: &str) -> Option<&RunningTalker> {
        self.talkers.iter().find(|t| t.spec.id == id)
    }

    /// Every running talker, in spec order.
    pub fn talkers(&self) -> &[RunningTalker] {
        &self.talkers
    }

    /// Every running SIP server, in spec order.
    pub fn servers(&self) -> &[RunningServer] {
        &self.servers
    }

    /// Every process with its label (`matcher`, `sip-server-DOMAIN`, talker
    /// ids), for reading logs.
    pub fn processes(&self) -> Vec<(String, &Process)> {
        let mut all: Vec<(String, &Process)> = Vec::new();
        if let Some(m) = &self.matcher {
            all.push(("matcher".into(), m));
        }
        for s in &self.servers {
            all.push((format!("sip-server-{}", s.domain), &s.process));
        }
        for t in &self.talkers {
            all.push((t.spec.id.clone(), &t.process));
        }
        all
    }

    /// Every process's output so far, labelled: for failure reports.
    pub fn logs(&self) -> String {
        self.processes()
            .iter()
            .map(|(label, p)| format!("----- {label} (pid {}):\n{}", p.pid(), p.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How long each start-up stage took.
    pub fn timings(&self) -> &[(String, Duration)] {
        &self.timings
    }

    /// A scratch directory that lives as long as the household.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The simulated LAN, when placed on one.
    pub fn lan(&self) -> Option<&Lan> {
        self.lan.as_ref()
    }

    /// The network namespace of the dialer's host (`None` on loopback).
    pub fn dialer_netns(&self) -> Option<&str> {
        self.lan.as_ref().map(|lan| lan.host(DIALER_HOST).netns())
    }

    /// The interface the dialer browses mDNS on: `eth0` on the LAN, `lo` on
    /// loopback (where nothing advertises).
    pub fn dialer_interface(&self) -> &str {
        match &self.lan {
            Some(lan) => lan.host(DIALER_HOST).interface(),
            None => "lo",
        }
    }

    /// A command that runs `program` on the dialer's host (through
    /// `ip netns exec` on the LAN).
    pub fn dialer_command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        match self.dialer_netns() {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => std::process::Command::new(program),
        }
    }

    /// The environment that points the dialer (`splitdial`) at this
    /// household as `user`: `SPLITDIAL_MATCHER_URL`, `SPLITDIAL_MATCHER_CA`
    /// (none for a plain-HTTP matcher), `SPLITDIAL_TOKEN` and
    /// `SPLITDIAL_INTERFACES` (docs/dialer.md, "Configuration").
    pub fn dialer_env(&self, user: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("SPLITDIAL_MATCHER_URL".to_owned(), self.matcher_url()),
            (
                "SPLITDIAL_INTERFACES".to_owned(),
                self.dialer_interface().to_owned(),
            ),
        ];
        if let Some(ca) = self.matcher_ca() {
            env.push(("SPLITDIAL_MATCHER_CA".to_owned(), ca.display().to_string()));
        }
        if let Some(token) = self.token(user) {
            env.push(("SPLITDIAL_TOKEN".to_owned(), token.to_owned()));
        }
        env
    }

    /// Starts a long-running program on the dialer's host.
    pub fn spawn_on_dialer(&self, spawn: Spawn) -> Result<Process, Error> {
        Ok(match self.dialer_netns() {
            Some(ns) => spawn.in_netns(ns).start()?,
            None => spawn.start()?,
        })
    }

    /// One HTTP request from the dialer's host (where the dialer would send it);
    /// HTTPS when it goes to the matcher, unless the matcher speaks plain HTTP.
    pub fn request_from_dialer(
        &self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        bearer: Option<&str>,
        json_body: Option<&str>,
    ) -> Result<Response, Error> {
        let tls = self
            .pki
            .as_ref()
            .filter(|_| addr == self.matcher_addr)
            .map(|pki| http::Tls {
                config: std::sync::Arc::clone(&pki.client),
                server_name: pki.server_name.clone(),
            });
        let method = method.to_owned();
        let path = path.to_owned();
        let bearer = bearer.map(str::to_owned);
        let body = json_body.map(str::to_owned);
        let send = move || {
            http::request(
                &method,
                addr,
                &path,
                bearer.as_deref(),
                body.as_deref(),
                HTTP_TIMEOUT,
                tls.as_ref(),
            )
        };
        Ok(match &self.lan {
            Some(lan) => lan.host(DIALER_HOST).run_in(send)??,
            None => send()?,
        })
    }

    /// One request to the matcher's API as `user`.
    pub fn matcher_request(
        &self,
        user: &str,
        method: &str,
        path: &str,
        json_body: Option<&str>,
    ) -> Result<Response, Error> {
        self.request_from_dialer(method, self.matcher_addr, path, self.token(user), json_body)
    }

    /// One HTTPS request from the dialer's host to talker `id`'s local API,
    /// accepting only the key its ready line named (as the dialer accepts only
    /// the registry's).
    ///
    /// # Errors
    /// When there is no such talker, it has no status API (baresip), or the
    /// request fails.
    pub fn talker_request(
        &self,
        id: &str,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        json_body: Option<&str>,
    ) -> Result<Response, Error> {
        let talker = self
            .talker(id)
            .ok_or_else(|| Error::Spec(format!("no talker {id:?}")))?;
        let (Some(addr), Some(key)) = (talker.status_addr, talker.status_key) else {
            return Err(Error::Spec(format!(
                "talker {id:?} has no status API (baresip)"
            )));
        };
        let method = method.to_owned();
        let path = path.to_owned();
        let bearer = bearer.map(str::to_owned);
        let body = json_body.map(str::to_owned);
        let send = move || {
            crate::talker_https::request(
                &method,
                addr,
                &key,
                &path,
                bearer.as_deref(),
                body.as_deref(),
                HTTP_TIMEOUT,
            )
        };
        Ok(match &self.lan {
            Some(lan) => lan.host(DIALER_HOST).run_in(send)??,
            None => send()?,
        })
    }

    /// Talker `id`'s `GET /v1/status`, as JSON.
    pub fn talker_status(&self, id: &str) -> Result<Value, Error> {
        let response = self.talker_request(id, "GET", "/v1/status", None, None)?;
        if response.status != 200 {
            return Err(Error::Output {
                what: format!("{id} /v1/status"),
                output: format!("{} {}", response.status, response.body),
            });
        }
        Ok(response.json())
    }

    /// Has baresip phone `id` run a menu command (`hold`, `resume`) on its current
    /// call, sent from the dialer's host to its `ctrl_tcp` socket.
    ///
    /// # Errors
    /// When there is no such talker, it is not a baresip phone, or the command fails.
    pub fn phone_command(&self, id: &str, command: &str) -> Result<String, Error> {
        let talker = self
            .talker(id)
            .ok_or_else(|| Error::Spec(format!("no talker {id:?}")))?;
        if talker.status_addr.is_some() {
            return Err(Error::Spec(format!("talker {id:?} is not a baresip phone")));
        }
        let control = SocketAddr::new(talker.sip_addr.ip(), crate::baresip::CONTROL_PORT);
        let command = command.to_owned();
        let send = move || crate::baresip::command(control, &command, HTTP_TIMEOUT);
        Ok(match &self.lan {
            Some(lan) => lan.host(DIALER_HOST).run_in(send)??,
            None => send()?,
        })
    }

    /// Stops talker `id` as its owner would (SIGTERM: it hangs up its calls
    /// and un-registers) and returns its exit status; it stays listed, with
    /// its log.
    ///
    /// # Errors
    /// When there is no such talker, or waiting for it fails.
    pub fn stop_talker(&mut self, id: &str) -> Result<std::process::ExitStatus, Error> {
        let talker = self
            .talkers
            .iter_mut()
            .find(|t| t.spec.id == id)
            .ok_or_else(|| Error::Spec(format!("no talker {id:?}")))?;
        Ok(talker.process.stop(AGENT_STOP_GRACE)?)
    }

    /// Ends every process (agents first, with SIGTERM so they hang up,
    /// un-register and say goodbye over mDNS), then removes the LAN.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for talker in &self.talkers {
            let _ = talker.process.signal(Signal::SIGTERM);
        }
        // One grace period for all of them: they were all signalled at once.
        let deadline = Instant::now() + AGENT_STOP_GRACE;
        for talker in &mut self.talkers {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(None) = talker.process.wait_exit(left) {
                tracing::warn!(talker = %talker.spec.id, "agent ignored SIGTERM; killing");
                let _ = talker.process.kill();
            }
        }
        if let Some(matcher) = &mut self.matcher {
            let _ = matcher.stop(Duration::from_secs(10));
        }
        for server in &mut self.servers {
            let _ = server.process.stop(Duration::from_secs(5));
        }
        self.talkers.clear();
        self.matcher = None;
        self.servers.clear();
        // The LAN (and every process left inside it) goes next.
        self.lan = None;
    }
}

impl Drop for Household {
    fn drop(&mut self) {
        self.stop_all();
    }
}
