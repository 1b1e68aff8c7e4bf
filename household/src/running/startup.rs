//! The start-up sequence: LAN, SIP servers, registry (admin commands),
//! matcher, enrolled agents, then waiting until every talker is online.

use super::{Household, Placement, RunningServer, RunningTalker};
use crate::Error;
use crate::config_files::{AgentPlacement, Passwords, agent_config, users_file};
use crate::spec::{
    CLOUD_HOST, ContactSpec, DIALER_HOST, HouseholdSpec, MatcherTransport, ServerSoftware,
    ServerSpec, TalkerSoftware, TalkerSpec,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::write_private;
use testbed::{Lan, Process, Spawn};

/// How long one program may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a one-shot command (admin, enroll) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the matcher may take to see every talker online.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(90);
/// The matcher's HTTP port on the LAN (loopback picks a free one).
const LAN_MATCHER_PORT: u16 = 8740;
/// First SIP server port on the LAN (one more per server).
const LAN_SIP_PORT: u16 = 5060;
/// Talker agents' SIP and status ports on their LAN hosts.
const LAN_AGENT_SIP_PORT: u16 = 5070;
const LAN_AGENT_STATUS_PORT: u16 = 8420;

/// The programs a household runs (built in this workspace).
struct Binaries {
    sip_server: PathBuf,
    matcher: PathBuf,
    talker_agent: PathBuf,
}

impl Binaries {
    /// The three programs of this build ([`testbed::find_binary`]: next to
    /// the running executable), and the agent's media worker beside them. A
    /// missing one is an error naming it and how to build it.
    fn find() -> Result<Self, Error> {
        // The agent starts its media worker from its own directory: check it is there
        // now rather than fail at the first call.
        testbed::find_binary("talker-media")?;
        Ok(Self {
            sip_server: testbed::find_binary("sip-server")?,
            matcher: testbed::find_binary("matcher")?,
            talker_agent: testbed::find_binary("talker-agent")?,
        })
    }
}

/// `RUST_LOG` for the household's programs (`HOUSEHOLD_LOG` overrides it).
fn log_filter() -> String {
    std::env::var("HOUSEHOLD_LOG").unwrap_or_else(|_| "info,rsipstack=warn,sqlx=warn".into())
}

/// One of the household's own programs, logging at [`log_filter`] without colour.
fn household_program(binary: &Path) -> Spawn {
    Spawn::new(binary)
        .env("RUST_LOG", log_filter())
        .env("NO_COLOR", "1")
}

impl Household {
    /// Starts `spec` placed as `placement` and returns once the matcher
    /// reports every enrolled talker online with every account registered
    /// (and every plain SIP phone reports its accounts registered).
    ///
    /// `sip-server`, `matcher` and `talker-agent` are looked up next to the
    /// running executable ([`testbed::Error::MissingBinary`] when one is not
    /// built). A plain-HTTP matcher ([`MatcherTransport::InsecureHttp`]) anywhere
    /// but on loopback is [`Error::Spec`], before anything starts.
    pub fn start(spec: HouseholdSpec, placement: Placement) -> Result<Self, Error> {
        spec.validate().map_err(Error::Spec)?;
        refuse_plain_http_off_loopback(spec.matcher_transport, placement)?;
        let binaries = Binaries::find()?;
        let began = Instant::now();
        let dir = tempfile::Builder::new().prefix("household-").tempdir()?;
        let lan = match placement {
            Placement::Loopback => None,
            Placement::Lan => {
                let hosts = [CLOUD_HOST.to_owned(), DIALER_HOST.to_owned()]
                    .into_iter()
                    .chain(spec.talkers.iter().map(|t| t.id.clone()));
                Some(Lan::with_hosts(hosts)?)
            }
        };
        let matcher_ip = match &lan {
            Some(lan) => IpAddr::V4(lan.host(CLOUD_HOST).ip()),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let pki = match spec.matcher_transport {
            MatcherTransport::Https => {
                Some(crate::pki::HouseholdPki::make(dir.path(), matcher_ip)?)
            }
            MatcherTransport::InsecureHttp => None,
        };
        let mut home = Self {
            spec,
            placement,
            talkers: Vec::new(),
            matcher: None,
            servers: Vec::new(),
            matcher_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: BTreeMap::new(),
            timings: Vec::new(),
            lan,
            pki,
            dir,
        };
        home.mark("lan", began);
        let passwords = Passwords::generate(&home.spec);

        let step = Instant::now();
        home.start_servers(&binaries, &passwords)?;
        home.mark("sip servers ready", step);

        let step = Instant::now();
        let db = home.matcher_db();
        let enroll_tokens = home.fill_registry(&binaries, &db)?;
        home.mark("registry filled", step);

        let step = Instant::now();
        home.start_matcher(&binaries, &db)?;
        home.mark("matcher ready", step);

        let step = Instant::now();
        home.start_talkers(&binaries, &passwords, &enroll_tokens)?;
        home.mark("agents ready", step);

        let step = Instant::now();
        home.wait_all_online(ONLINE_TIMEOUT)?;
        home.mark("all talkers online", step);
        home.mark("household started", began);
        Ok(home)
    }

    fn mark(&mut self, what: &str, since: Instant) {
        let took = since.elapsed();
        tracing::info!(stage = what, took_ms = took.as_millis(), "household");
        self.timings.push((what.to_owned(), took));
    }

    /// The IP the servers and the matcher listen on.
    fn cloud_ip(&self) -> IpAddr {
        match &self.lan {
            Some(lan) => IpAddr::V4(lan.host(CLOUD_HOST).ip()),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// The source address of the matcher's call controller.
    fn controller_ip(&self) -> IpAddr {
        match &self.lan {
            Some(_) => self.cloud_ip(),
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    fn cloud_netns(&self) -> Option<String> {
        self.lan
            .as_ref()
            .map(|lan| lan.host(CLOUD_HOST).netns().to_owned())
    }

    /// Starts Kamailio for `domain` on the cloud host's `port` (the simulated
    /// LAN only: Kamailio cannot pick a free port itself); returns it and its
    /// address.
    fn start_kamailio(
        &self,
        domain: &str,
        port: u16,
        passwords: &Passwords,
    ) -> Result<(Process, SocketAddr), Error> {
        let Some(netns) = self.cloud_netns() else {
            return Err(Error::Spec(format!(
                "{domain}: Kamailio runs only on the simulated LAN"
            )));
        };
        let listen = SocketAddr::new(self.cloud_ip(), port);
        let text = crate::kamailio::config(
            &self.spec,
            domain,
            listen,
            self.controller_ip(),
            &crate::kamailio::relay_regex_for(self.cloud_ip()),
            passwords,
        );
        let run_dir = self.dir.path().join(format!("kamailio-{domain}"));
        std::fs::create_dir_all(&run_dir)?;
        let cfg = run_dir.join("kamailio.cfg");
        std::fs::write(&cfg, text)?;
        let process = testbed::kamailio(&cfg, &run_dir, testbed::KAMAILIO_MEMORY_MB)
            .label(format!("kamailio-{domain}"))
            .in_netns(netns)
            .start()?;
        Ok((process, listen))
    }

    fn start_servers(&mut self, binaries: &Binaries, passwords: &Passwords) -> Result<(), Error> {
        let cloud_netns = self.cloud_netns();
        let mut started = Vec::new();
        for (index, server) in self.spec.servers.iter().enumerate() {
            let port = match self.placement {
                Placement::Loopback => 0,
                Placement::Lan => LAN_SIP_PORT + u16::try_from(index).unwrap_or(0),
            };
            if server.software == ServerSoftware::Kamailio {
                let (process, addr) = self.start_kamailio(&server.domain, port, passwords)?;
                started.push((server.domain.clone(), process, Some(addr)));
                continue;
            }
            let users = self
                .dir
                .path()
                .join(format!("{}.users.toml", server.domain));
            write_private(&users, users_file(&self.spec, &server.domain, passwords))?;
            let mut spawn = household_program(&binaries.sip_server)
                .arg("--listen")
                .arg(SocketAddr::new(self.cloud_ip(), port).to_string())
                .arg("--domain")
                .arg(&server.domain)
                .arg("--users")
                .arg(&users)
                .arg("--trusted")
                .arg(self.controller_ip().to_string())
                .label(format!("sip-server-{}", server.domain));
            if let Some(ns) = &cloud_netns {
                spawn = spawn.in_netns(ns);
            }
            // sip-server names its address in its ready line (port 0 on loopback).
            started.push((server.domain.clone(), spawn.start()?, None));
        }
        for (domain, mut process, fixed_addr) in started {
            if let Some(addr) = fixed_addr {
                process.wait_for_output(crate::kamailio::READY, READY_TIMEOUT)?;
                self.servers.push(RunningServer {
                    domain,
                    addr,
                    process,
                });
                continue;
            }
            let line = ready_line(&mut process, "sip-server ready", READY_TIMEOUT)?;
            // `sip-server ready udp+tcp ADDR domain D`
            let addr = word_after(&line, "udp+tcp")
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| Error::Output {
                    what: format!("sip-server {domain} ready line"),
                    output: line.clone(),
                })?;
            self.servers.push(RunningServer {
                domain,
                addr,
                process,
            });
        }
        Ok(())
    }

    /// Fills the registry through the matcher's admin commands; returns the
    /// enrollment token of every enrolled talker, by talker id.
    fn fill_registry(
        &mut self,
        binaries: &Binaries,
        db: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let admin = MatcherAdmin {
            matcher: &binaries.matcher,
            db,
        };
        for user in &self.spec.users {
            admin.run(&[
                "user",
                "add",
                &user.name,
                "--display-name",
                &user.display_name,
            ])?;
        }
        for server in &self.spec.servers {
            let proxy = self
                .servers
                .iter()
                .find(|s| s.domain == server.domain)
                .map(|s| s.addr.to_string())
                .unwrap_or_default();
            admin.add_server(server, &proxy)?;
        }
        for user in &self.spec.users {
            for contact in &user.contacts {
                admin.add_contact(&user.name, contact)?;
            }
            let token = admin.run(&["user", "token", &user.name, "--label", "household"])?;
            self.tokens
                .insert(user.name.clone(), json_string(&token, "token")?);
        }
        let mut enroll = BTreeMap::new();
        for talker in &self.spec.talkers {
            let Some(owner) = &talker.owner else {
                continue;
            };
            if talker.software == TalkerSoftware::Baresip {
                admin.add_sip_phone(owner, talker)?;
                continue;
            }
            let token = admin.run(&["enroll-token", owner])?;
            enroll.insert(talker.id.clone(), json_string(&token, "token")?);
        }
        Ok(enroll)
    }

    fn start_matcher(&mut self, binaries: &Binaries, db: &str) -> Result<(), Error> {
        let port = match self.placement {
            Placement::Loopback => 0,
            Placement::Lan => LAN_MATCHER_PORT,
        };
        self.spawn_matcher(binaries, db, SocketAddr::new(self.cloud_ip(), port))
    }

    /// The registry's database URL (a SQLite file in the household's directory).
    fn matcher_db(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("matcher.db").display())
    }

    /// Kills the matcher at once (SIGKILL, as a crash would) and starts it
    /// again on the same database and HTTP address, which the enrolled agents
    /// know; returns once it is ready, with everything the crashed one wrote.
    ///
    /// # Errors
    /// When the new matcher does not start or print its ready line.
    pub fn restart_matcher_after_crash(&mut self) -> Result<String, Error> {
        let binaries = Binaries::find()?;
        let mut old_log = String::new();
        if let Some(mut crashed) = self.matcher.take() {
            crashed.kill()?;
            old_log = crashed.log();
        }
        let db = self.matcher_db();
        self.spawn_matcher(&binaries, &db, self.matcher_addr)?;
        Ok(old_log)
    }

    /// Starts the matcher listening on `listen` and waits for its ready line.
    fn spawn_matcher(
        &mut self,
        binaries: &Binaries,
        db: &str,
        listen: SocketAddr,
    ) -> Result<(), Error> {
        let mut spawn = household_program(&binaries.matcher)
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--sip-listen")
            .arg(SocketAddr::new(self.controller_ip(), 0).to_string())
            .arg("--heartbeat-interval")
            .arg(self.spec.heartbeat_interval_s.max(1).to_string())
            .label("matcher");
        spawn = match &self.pki {
            Some(pki) => spawn
                .arg("--tls-cert")
                .arg(&pki.matcher_certificate)
                .arg("--tls-key")
                .arg(&pki.matcher_key),
            // Loopback only (checked at start; the matcher refuses it elsewhere too), and the
            // matcher logs its PLAINTEXT HTTP warning.
            None => spawn.arg("--insecure-http"),
        };
        if let Some(ns) = self.cloud_netns() {
            spawn = spawn.in_netns(ns);
        }
        let mut process = spawn.start()?;
        let line = ready_line(&mut process, "matcher ready", READY_TIMEOUT);
        self.matcher = Some(process);
        let line = line?;
        // `matcher ready http ADDR sip ADDR`
        self.matcher_addr = word_after(&line, "http")
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| Error::Output {
                what: "matcher ready line".into(),
                output: line.clone(),
            })?;
        Ok(())
    }

    fn agent_placement(&self, talker: &TalkerSpec) -> AgentPlacement {
        match &self.lan {
            Some(lan) => {
                let host = lan.host(&talker.id);
                let ip = IpAddr::V4(host.ip());
                AgentPlacement {
                    sip_listen: SocketAddr::new(ip, LAN_AGENT_SIP_PORT),
                    status_listen: SocketAddr::new(ip, LAN_AGENT_STATUS_PORT),
                    mdns_interface: talker.at_home.then(|| host.interface().to_owned()),
                }
            }
            None => AgentPlacement {
                sip_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                status_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                mdns_interface: None,
            },
        }
    }

    /// Starts every talker: the agents (enrolled first when they have an
    /// owner), then waits for each agent's ready line; the baresip phones
    /// have none.
    fn start_talkers(
        &mut self,
        binaries: &Binaries,
        passwords: &Passwords,
        enroll_tokens: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let proxies: BTreeMap<String, SocketAddr> = self
            .servers
            .iter()
            .map(|s| (s.domain.clone(), s.addr))
            .collect();
        let mut started = Vec::new();
        let mut phones = Vec::new();
        for talker in &self.spec.talkers {
            if talker.software == TalkerSoftware::Baresip {
                phones.push(self.start_baresip(talker, &proxies, passwords)?);
                continue;
            }
            let enroll_token = enroll_tokens.get(&talker.id).map(String::as_str);
            started.push(self.start_agent(binaries, talker, &proxies, passwords, enroll_token)?);
        }
        // Collect every ready line before failing, so all processes are owned
        // (and ended) even when one does not come up.
        let mut first_error = None;
        for agent in started {
            match agent.ready() {
                Ok(talker) => self.talkers.push(talker),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.talkers.extend(phones);
        first_error.map_or(Ok(()), Err)
    }

    /// Writes talker agent `talker`'s configuration, enrolls it with
    /// `enroll_token` (when it has an owner) and starts it.
    fn start_agent(
        &self,
        binaries: &Binaries,
        talker: &TalkerSpec,
        proxies: &BTreeMap<String, SocketAddr>,
        passwords: &Passwords,
        enroll_token: Option<&str>,
    ) -> Result<StartingAgent, Error> {
        let state_dir = self.dir.path().join(format!("{}-state", talker.id));
        let config_path = self.dir.path().join(format!("{}.toml", talker.id));
        let text = agent_config(
            &self.spec,
            talker,
            &self.agent_placement(talker),
            proxies,
            passwords,
            &state_dir,
            &crate::config_files::MatcherAccess {
                url: &self.matcher_url(),
                ca: self.matcher_ca(),
            },
        );
        write_private(&config_path, text)?;
        let netns = self
            .lan
            .as_ref()
            .map(|lan| lan.host(&talker.id).netns().to_owned());
        let in_place = |spawn: Spawn| match &netns {
            Some(ns) => spawn.in_netns(ns),
            None => spawn,
        };
        if let Some(token) = enroll_token {
            // The token goes through the environment, never the command line.
            let enroll = household_program(&binaries.talker_agent)
                .arg("enroll")
                .arg("--config")
                .arg(&config_path)
                .env("SPLITDIAL_ENROLL_TOKEN", token)
                .label(format!("enroll-{}", talker.id));
            run_to_end(
                in_place(enroll),
                &format!("talker-agent enroll {}", talker.id),
            )?;
        }
        let agent = household_program(&binaries.talker_agent)
            .arg("--config")
            .arg(&config_path)
            .label(talker.id.clone());
        let process = in_place(agent).start()?;
        Ok(StartingAgent {
            spec: talker.clone(),
            netns,
            process,
        })
    }

    /// Starts baresip as phone `talker` on its LAN host (its registration is
    /// waited for with the rest, in [`Household::wait_all_online`]: through
    /// the matcher's probes when it has an owner). It has no status API.
    fn start_baresip(
        &self,
        talker: &TalkerSpec,
        proxies: &BTreeMap<String, SocketAddr>,
        passwords: &Passwords,
    ) -> Result<RunningTalker, Error> {
        let (Some(lan), [account]) = (&self.lan, talker.accounts.as_slice()) else {
            return Err(Error::Spec(format!(
                "{}: baresip runs only on the simulated LAN, with one account",
                talker.id
            )));
        };
        let proxy = proxies
            .get(&account.server)
            .copied()
            .ok_or_else(|| Error::Spec(format!("{}: no server {}", talker.id, account.server)))?;
        let host = lan.host(&talker.id);
        let ip = IpAddr::V4(host.ip());
        let sip_addr = SocketAddr::new(ip, LAN_AGENT_SIP_PORT);
        let dir = self.dir.path().join(format!("{}-baresip", talker.id));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("config"),
            crate::baresip::config(sip_addr, talker.tone_hz),
        )?;
        std::fs::write(
            dir.join("accounts"),
            crate::baresip::accounts(
                &account.user,
                &account.server,
                passwords.of(&account.server, &account.user),
                proxy,
            ),
        )?;
        let process = Spawn::new("baresip")
            .arg("-f")
            .arg(&dir)
            .label(talker.id.clone())
            .in_netns(host.netns())
            .start()?;
        Ok(RunningTalker {
            spec: talker.clone(),
            sip_addr,
            status_addr: None,
            status_key: None,
            netns: Some(host.netns().to_owned()),
            process,
        })
    }

    /// Waits until the matcher lists every enrolled talker online with every
    /// account registered, and every plain SIP phone reports its accounts
    /// registered.
    pub fn wait_all_online(&self, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut owners: Vec<&str> = self
            .spec
            .talkers
            .iter()
            .filter_map(|t| t.owner.as_deref())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        for owner in owners {
            let ids: Vec<&str> = self
                .spec
                .talkers
                .iter()
                .filter(|t| t.owner.as_deref() == Some(owner))
                .map(|t| t.id.as_str())
                .collect();
            self.wait_owner_online(owner, &ids, left())
                .map_err(|e| of_whole_wait(e, within))?;
        }
        for talker in self.talkers.iter().filter(|t| t.spec.owner.is_none()) {
            let registered = if talker.spec.software == TalkerSoftware::Baresip {
                self.wait_baresip_registered(talker, left())
            } else {
                self.wait_accounts_registered(&talker.spec.id, left())
            };
            registered.map_err(|e| of_whole_wait(e, within))?;
        }
        Ok(())
    }

    /// Waits until the matcher lists `owner`'s talkers `ids` online with every
    /// account registered; returns that listing (`GET /v1/me/talkers`).
    ///
    /// # Errors
    /// [`Error::Timeout`] with the matcher's last answer and every log, when
    /// `within` passes first.
    pub fn wait_owner_online(
        &self,
        owner: &str,
        ids: &[&str],
        within: Duration,
    ) -> Result<Value, Error> {
        let mut last = String::new();
        let online = testbed::wait_until("talkers online", within, || {
            match self.matcher_request(owner, "GET", "/v1/me/talkers", None) {
                Ok(response) if response.status == 200 => {
                    let listing = response.json();
                    if all_online(&listing, ids) {
                        return Some(listing);
                    }
                    last = format!("{} {}", response.status, response.body);
                }
                Ok(response) => last = format!("{} {}", response.status, response.body),
                Err(e) => last = e.to_string(),
            }
            None
        });
        online.map_err(|_| {
            self.timed_out(
                &format!("{owner}'s talkers {ids:?} online; last answer: {last}"),
                within,
            )
        })
    }

    /// Waits until baresip phone `talker` logs its registration.
    fn wait_baresip_registered(
        &self,
        talker: &RunningTalker,
        within: Duration,
    ) -> Result<(), Error> {
        testbed::wait_until("baresip registered", within, || {
            talker
                .process
                .log()
                .contains(crate::baresip::REGISTERED)
                .then_some(())
        })
        .map_err(|_| self.timed_out(&format!("{} (baresip) registered", talker.spec.id), within))
    }

    /// Waits until agent `id`'s status API shows every account registered.
    fn wait_accounts_registered(&self, id: &str, within: Duration) -> Result<(), Error> {
        let mut last = None;
        let registered = testbed::wait_until("accounts registered", within, || {
            let status = self.talker_status(id);
            let registered = status.as_ref().is_ok_and(|s| {
                s["accounts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a["state"] == "registered"))
            });
            last = Some(status);
            registered.then_some(())
        });
        registered
            .map_err(|_| self.timed_out(&format!("{id}'s accounts registered: {last:?}"), within))
    }

    /// A timeout waiting for `what`, with every process's log.
    fn timed_out(&self, what: &str, after: Duration) -> Error {
        Error::Timeout {
            what: format!("{what}\n{}", self.logs()),
            after,
        }
    }
}

/// Plain HTTP to the matcher is a loopback-only exception (as `matcher --insecure-http` and
/// the clients' `http://` URLs are): any other placement is refused with one line saying so.
fn refuse_plain_http_off_loopback(
    transport: MatcherTransport,
    placement: Placement,
) -> Result<(), Error> {
    match (transport, placement) {
        (MatcherTransport::InsecureHttp, Placement::Lan) => Err(Error::Spec(
            "matcher_transport InsecureHttp: a plain-HTTP matcher runs only in a loopback \
             household (Placement::Loopback), never on the simulated LAN; use \
             MatcherTransport::Https"
                .into(),
        )),
        (MatcherTransport::InsecureHttp, Placement::Loopback) | (MatcherTransport::Https, _) => {
            Ok(())
        }
    }
}

/// `error`, from one step of a longer wait, as an error of the whole wait:
/// a timeout names `within`, the time the whole wait had.
fn of_whole_wait(error: Error, within: Duration) -> Error {
    match error {
        Error::Timeout { what, .. } => Error::Timeout {
            what,
            after: within,
        },
        other => other,
    }
}

/// A talker agent started but not yet known to be ready.
struct StartingAgent {
    spec: TalkerSpec,
    netns: Option<String>,
    process: Process,
}

impl StartingAgent {
    /// The running talker once its ready line names its addresses.
    fn ready(mut self) -> Result<RunningTalker, Error> {
        let line = ready_line(&mut self.process, "talker-agent ready", READY_TIMEOUT)?;
        // `talker-agent ready id ID sip ADDR status ADDR key BASE64`
        let sip = word_after(&line, "sip").and_then(|w| w.parse().ok());
        let status = word_after(&line, "status").and_then(|w| w.parse().ok());
        let key = word_after(&line, "key").and_then(status_key);
        let (Some(sip_addr), Some(status_addr), Some(status_key)) = (sip, status, key) else {
            return Err(Error::Output {
                what: format!("talker-agent {} ready line", self.spec.id),
                output: line,
            });
        };
        Ok(RunningTalker {
            spec: self.spec,
            sip_addr,
            status_addr: Some(status_addr),
            status_key: Some(status_key),
            netns: self.netns,
            process: self.process,
        })
    }
}

/// A standard-base64 Ed25519 public key, as the agent's ready line names it.
fn status_key(word: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(word)
        .ok()?
        .try_into()
        .ok()
}

/// The matcher's admin commands on one registry database.
struct MatcherAdmin<'a> {
    matcher: &'a Path,
    db: &'a str,
}

impl MatcherAdmin<'_> {
    /// Runs one admin command with `--json` and returns the JSON line it printed.
    fn run(&self, args: &[&str]) -> Result<Value, Error> {
        let command = format!("matcher {}", args.join(" "));
        let spawn = Spawn::new(self.matcher)
            .arg("--db")
            .arg(self.db)
            .arg("--json")
            .args(args.iter().copied())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .label("matcher-admin");
        let output = run_to_end(spawn, &command)?;
        // stdout and stderr share the log: the answer is the line that is JSON.
        output
            .lines()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<Value>(l.trim())
                    .ok()
                    .filter(Value::is_object)
            })
            .ok_or(Error::Output {
                what: command,
                output,
            })
    }

    /// `matcher server add`: `server` at `proxy`, trusting the controller by address over TCP.
    fn add_server(&self, server: &ServerSpec, proxy: &str) -> Result<Value, Error> {
        self.run(&[
            "server",
            "add",
            &server.domain,
            "--proxy",
            proxy,
            "--transport",
            "tcp",
            "--cost",
            &server.cost.to_string(),
            "--trust",
            "address",
        ])
    }

    /// `matcher contact add` of `contact` to `owner`'s address book.
    fn add_contact(&self, owner: &str, contact: &ContactSpec) -> Result<Value, Error> {
        match contact {
            ContactSpec::User { name, user } => {
                self.run(&["contact", "add", owner, name, "--user", user])
            }
            ContactSpec::Address { name, address } => {
                self.run(&["contact", "add", owner, name, "--address", address])
            }
        }
    }

    /// `matcher talker add`: SIP phone `talker` as `owner`'s talker.
    fn add_sip_phone(&self, owner: &str, talker: &TalkerSpec) -> Result<Value, Error> {
        let aors: Vec<String> = talker.accounts.iter().map(|a| a.aor()).collect();
        let mut args = vec![
            "talker",
            "add",
            owner,
            &talker.id,
            "--name",
            &talker.name,
            "--kind",
            &talker.kind,
        ];
        for aor in &aors {
            args.extend(["--account", aor]);
        }
        self.run(&args)
    }
}

/// Whether a `/v1/me/talkers` answer lists each of `ids` online with every
/// account registered.
fn all_online(talkers: &Value, ids: &[&str]) -> bool {
    let Some(list) = talkers["talkers"].as_array() else {
        return false;
    };
    ids.iter().all(|id| {
        list.iter().any(|t| {
            t["id"] == *id
                && t["online"] == true
                && t["accounts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a["registered"] == true))
        })
    })
}

/// The word after `key` in a ready line.
fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()
}

/// Waits for the line starting with `prefix` and returns it.
fn ready_line(process: &mut Process, prefix: &str, within: Duration) -> Result<String, Error> {
    process.wait_for_output(prefix, within)?;
    process
        .log()
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .ok_or_else(|| Error::Output {
            what: prefix.to_owned(),
            output: process.log(),
        })
}

/// Runs a one-shot program to its end (bounded) and returns its output;
/// a failure carries the output.
fn run_to_end(spawn: Spawn, command: &str) -> Result<String, Error> {
    let mut process = spawn.start()?;
    let Some(status) = process.wait_exit(COMMAND_TIMEOUT)? else {
        return Err(Error::Timeout {
            what: format!("`{command}` to finish; output: {}", process.log()),
            after: COMMAND_TIMEOUT,
        });
    };
    let output = process.log();
    if status.success() {
        return Ok(output);
    }
    Err(Error::Command {
        command: command.to_owned(),
        status: status.to_string(),
        output,
    })
}

/// A string field of an admin command's JSON answer.
fn json_string(value: &Value, field: &str) -> Result<String, Error> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Output {
            what: format!("admin answer field {field}"),
            output: value.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_http_matcher_is_allowed_on_loopback_only() {
        use MatcherTransport::{Https, InsecureHttp};
        for placement in [Placement::Loopback, Placement::Lan] {
            assert!(refuse_plain_http_off_loopback(Https, placement).is_ok());
        }
        assert!(refuse_plain_http_off_loopback(InsecureHttp, Placement::Loopback).is_ok());
        let refused = refuse_plain_http_off_loopback(InsecureHttp, Placement::Lan).unwrap_err();
        assert!(
            matches!(&refused, Error::Spec(line) if line.contains("loopback") && !line.contains('\n')),
            "{refused}"
        );
    }

    #[test]
    fn reads_ready_lines_and_online_listings() {
        let line = "talker-agent ready id tv sip 10.77.0.3:5070 status 10.77.0.3:8420 \
                    key BTm5mtdk5faFCjJiMRhFPnCIYn52q8jAEZ/wB9OzCMY=";
        assert_eq!(word_after(line, "status"), Some("10.77.0.3:8420"));
        assert_eq!(word_after(line, "nothing"), None);
        let key = word_after(line, "key").and_then(status_key).unwrap();
        assert_eq!(key[..3], [0x05, 0x39, 0xb9]);
        assert_eq!(status_key("c2hvcnQ="), None, "not 32 bytes");
        let listing = json!({"talkers": [
            {"id": "tv", "online": true, "accounts": [{"registered": true}]},
            {"id": "pc", "online": true, "accounts": [{"registered": false}]},
        ]});
        assert!(all_online(&listing, &["tv"]));
        assert!(!all_online(&listing, &["tv", "pc"]));
        assert!(!all_online(&json!({}), &["tv"]));
    }
}
