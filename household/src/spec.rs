//! A household as plain data: SIP servers, users and their contacts, and the
//! talkers (devices) with their accounts, media and answer policies.
//!
//! [`HouseholdSpec::demo`] is the household of the one-command demo (issue 7);
//! tests start from it and change what they need.

/// Everything a household is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdSpec {
    /// SIP servers, one per domain.
    pub servers: Vec<ServerSpec>,
    /// Matcher users and their address books.
    pub users: Vec<UserSpec>,
    /// Devices running a talker agent.
    pub talkers: Vec<TalkerSpec>,
    /// Heartbeat interval the matcher asks of talkers, in seconds (a talker is
    /// online while its last heartbeat is younger than 2.5 intervals).
    pub heartbeat_interval_s: u32,
    /// What the matcher's API speaks: HTTPS with the household's own CA, unless a loopback
    /// household asks for plain HTTP by name.
    pub matcher_transport: MatcherTransport,
}

/// What the household's matcher serves its API over (docs/matcher.md, "Running it").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatcherTransport {
    /// HTTPS with a certificate from the household's CA, which the dialer and the agents
    /// are given: what every household runs unless told otherwise.
    #[default]
    Https,
    /// Plain HTTP (`matcher --insecure-http`, which logs a `PLAINTEXT HTTP` warning): the
    /// dialer and the agents get an `http://127.0.0.1:PORT` URL and no CA. Only for a
    /// [`Placement::Loopback`](crate::Placement::Loopback) household (anything else is
    /// refused at start), to measure what TLS costs against the same household in clear.
    InsecureHttp,
}

/// One SIP server and how the matcher ranks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The domain it serves (also the digest realm).
    pub domain: String,
    /// Relative cost in route ranking; lower is preferred.
    pub cost: u32,
    /// Which SIP server program serves it.
    pub software: ServerSoftware,
}

/// The program a household runs as a SIP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerSoftware {
    /// splitdial's own `sip-server`.
    #[default]
    Embedded,
    /// Kamailio 5.6 (the `kamailio` package), configured like `sip-server`:
    /// registrar, record-routing proxy, digest, the matcher trusted by address
    /// (simulated LAN only: Kamailio needs fixed ports).
    Kamailio,
}

/// A matcher user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name (what API tokens and enrollment tokens are issued for).
    pub name: String,
    /// Name shown to others.
    pub display_name: String,
    /// The user's address book.
    pub contacts: Vec<ContactSpec>,
}

/// One entry of a user's address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSpec {
    /// Another splitdial user (callable once both added each other).
    User {
        /// The name the owner calls them by.
        name: String,
        /// The other user's login name.
        user: String,
    },
    /// A plain SIP address on one of the household's servers.
    Address {
        /// The name the owner calls them by.
        name: String,
        /// `sip:user@domain`.
        address: String,
    },
}

impl ContactSpec {
    /// The name the owner calls this contact by.
    pub fn name(&self) -> &str {
        match self {
            Self::User { name, .. } | Self::Address { name, .. } => name,
        }
    }
}

/// A device running a talker agent.
#[derive(Debug, Clone, PartialEq)]
pub struct TalkerSpec {
    /// Talker id (`A-Z a-z 0-9 . _ -`); also the LAN host's name.
    pub id: String,
    /// Human name (the mDNS instance name).
    pub name: String,
    /// The matcher user who owns it; `None` for a plain SIP phone that is not
    /// enrolled (it only registers its accounts and answers calls).
    pub owner: Option<String>,
    /// `tv`, `pc`, `phone`, `tablet`, `speaker` or `other`.
    pub kind: String,
    /// Whether it carries video (a test pattern) besides audio.
    pub video: bool,
    /// Its SIP accounts, one per server it uses.
    pub accounts: Vec<AccountSpec>,
    /// How it handles ordinary incoming calls.
    pub answer: AnswerSpec,
    /// Frequency of the test tone it sends, in Hz.
    pub tone_hz: f64,
    /// Whether the tone sounds in bursts that start on whole seconds of the wall clock
    /// (`beeps:HZ`, so a listener reads mouth-to-ear latencies) instead of steadily. Agents
    /// only; off in the demo.
    pub beeps: bool,
    /// Whether it is in the home, i.e. advertised over mDNS on the LAN.
    /// Other people's devices are not (they live elsewhere).
    pub at_home: bool,
    /// Which program the device runs.
    pub software: TalkerSoftware,
}

/// The program a household device runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TalkerSoftware {
    /// splitdial's `talker-agent`.
    #[default]
    Agent,
    /// baresip 1.0 (the `baresip` package), headless with a test tone and
    /// auto-answer: a third-party SIP phone. One account, audio only, on the
    /// simulated LAN; its server challenges it with MD5 digest only, the one
    /// algorithm baresip 1.0 answers. Without an owner it is a plain SIP
    /// contact's phone; with one it is added to the owner's talkers with
    /// `matcher talker add` (a SIP-phone talker: no enrollment, online by the
    /// matcher's OPTIONS probes, calls handed off after its transfer).
    Baresip,
}

/// One SIP account of a talker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The server's domain.
    pub server: String,
    /// The SIP user name (the account is `sip:user@server`).
    pub user: String,
}

impl AccountSpec {
    /// The account's address of record.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.server)
    }
}

/// A talker's policy for ordinary incoming calls (`[answer]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerSpec {
    /// Ring until the owner answers or declines from the dialer.
    Manual,
    /// Decline at once.
    Reject,
    /// Answer at once every caller that is one of the accounts of these users'
    /// talkers, as asserted by this talker's own server.
    AutoFromUsers(Vec<String>),
}

impl HouseholdSpec {
    /// The demo household (issue 7): two servers, alice with three talkers,
    /// her contacts bob (a splitdial user whose phone auto-answers her) and
    /// dave (a plain SIP phone on `work.example` only, also auto-answering her).
    ///
    /// | talker | owner | accounts | media | tone |
    /// |---|---|---|---|---|
    /// | `tv` "Living-room TV" | alice | alice-tv@family.example, alice-tv@work.example | audio, video | 440 Hz |
    /// | `pc` "Study PC" | alice | alice-pc@work.example | audio | 550 Hz |
    /// | `phone` "Alice's phone" | alice | alice-phone@family.example | audio | 660 Hz |
    /// | `bob-phone` "Bob's phone" | bob | bob@family.example | audio | 880 Hz |
    /// | `dave-phone` "Dave's phone" | (none) | dave@work.example | audio | 990 Hz |
    pub fn demo() -> Self {
        let alice = |id: &str, name: &str, kind: &str, video: bool, accounts, tone_hz| TalkerSpec {
            id: id.into(),
            name: name.into(),
            owner: Some("alice".into()),
            kind: kind.into(),
            video,
            accounts,
            answer: AnswerSpec::Manual,
            tone_hz,
            beeps: false,
            at_home: true,
            software: TalkerSoftware::Agent,
        };
        Self {
            servers: vec![
                ServerSpec {
                    domain: FAMILY.into(),
                    cost: 1,
                    software: ServerSoftware::Embedded,
                },
                ServerSpec {
                    domain: WORK.into(),
                    cost: 5,
                    software: ServerSoftware::Embedded,
                },
            ],
            users: vec![
                UserSpec {
                    name: "alice".into(),
                    display_name: "Alice".into(),
                    contacts: vec![
                        ContactSpec::User {
                            name: "bob".into(),
                            user: "bob".into(),
                        },
                        ContactSpec::Address {
                            name: "dave".into(),
                            address: format!("sip:dave@{WORK}"),
                        },
                    ],
                },
                UserSpec {
                    name: "bob".into(),
                    display_name: "Bob".into(),
                    contacts: vec![ContactSpec::User {
                        name: "alice".into(),
                        user: "alice".into(),
                    }],
                },
            ],
            talkers: vec![
                alice(
                    "tv",
                    "Living-room TV",
                    "tv",
                    true,
                    vec![account(FAMILY, "alice-tv"), account(WORK, "alice-tv")],
                    440.0,
                ),
                alice(
                    "pc",
                    "Study PC",
                    "pc",
                    false,
                    vec![account(WORK, "alice-pc")],
                    550.0,
                ),
                alice(
                    "phone",
                    "Alice's phone",
                    "phone",
                    false,
                    vec![account(FAMILY, "alice-phone")],
                    660.0,
                ),
                TalkerSpec {
                    id: "bob-phone".into(),
                    name: "Bob's phone".into(),
                    owner: Some("bob".into()),
                    kind: "phone".into(),
                    video: false,
                    accounts: vec![account(FAMILY, "bob")],
                    answer: AnswerSpec::AutoFromUsers(vec!["alice".into()]),
                    tone_hz: 880.0,
                    beeps: false,
                    at_home: false,
                    software: TalkerSoftware::Agent,
                },
                TalkerSpec {
                    id: "dave-phone".into(),
                    name: "Dave's phone".into(),
                    owner: None,
                    kind: "phone".into(),
                    video: false,
                    accounts: vec![account(WORK, "dave")],
                    answer: AnswerSpec::AutoFromUsers(vec!["alice".into()]),
                    tone_hz: 990.0,
                    beeps: false,
                    at_home: false,
                    software: TalkerSoftware::Agent,
                },
            ],
            heartbeat_interval_s: 5,
            matcher_transport: MatcherTransport::Https,
        }
    }

    /// The talker with id `id`.
    pub fn talker(&self, id: &str) -> Option<&TalkerSpec> {
        self.talkers.iter().find(|t| t.id == id)
    }

    /// Mutable access to the talker with id `id` (to change a spec in a test).
    pub fn talker_mut(&mut self, id: &str) -> Option<&mut TalkerSpec> {
        self.talkers.iter_mut().find(|t| t.id == id)
    }

    /// Every address of record of the talkers `user` owns.
    pub fn accounts_of_user(&self, user: &str) -> Vec<String> {
        let mut aors: Vec<String> = self
            .talkers
            .iter()
            .filter(|t| t.owner.as_deref() == Some(user))
            .flat_map(|t| t.accounts.iter().map(AccountSpec::aor))
            .collect();
        aors.sort();
        aors.dedup();
        aors
    }

    /// The SIP user names each server must know (sorted, without repeats).
    pub fn sip_users_on(&self, domain: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .talkers
            .iter()
            .flat_map(|t| t.accounts.iter())
            .filter(|a| a.server == domain)
            .map(|a| a.user.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Checks what the processes would otherwise refuse one by one: known
    /// servers and users, valid and unique ids, at least one account each.
    pub fn validate(&self) -> Result<(), String> {
        let server_known = |d: &str| self.servers.iter().any(|s| s.domain == d);
        let user_known = |u: &str| self.users.iter().any(|s| s.name == u);
        if self.servers.is_empty() {
            return Err("a household needs at least one server".into());
        }
        for user in &self.users {
            for contact in &user.contacts {
                match contact {
                    ContactSpec::User { user: other, .. } if !user_known(other) => {
                        return Err(format!("{}'s contact: unknown user {other:?}", user.name));
                    }
                    ContactSpec::Address { address, .. } => {
                        let domain = address
                            .strip_prefix("sip:")
                            .and_then(|r| r.split_once('@'))
                            .map(|(_, d)| d);
                        if !domain.is_some_and(server_known) {
                            return Err(format!(
                                "{}'s contact {address:?}: not sip:user@<a household server>",
                                user.name
                            ));
                        }
                    }
                    ContactSpec::User { .. } => {}
                }
            }
        }
        let mut ids: Vec<&str> = Vec::new();
        for talker in &self.talkers {
            let id = &talker.id;
            if talker.software == TalkerSoftware::Baresip
                && (talker.accounts.len() != 1 || talker.video || talker.beeps)
            {
                return Err(format!(
                    "talker {id:?}: baresip runs with one account, audio only and a steady tone"
                ));
            }
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !id_ok {
                return Err(format!("talker id {id:?}: 1-64 of A-Z a-z 0-9 . _ -"));
            }
            if ids.contains(&id.as_str()) || matches!(id.as_str(), CLOUD_HOST | DIALER_HOST) {
                return Err(format!("talker id {id:?} used twice (or reserved)"));
            }
            ids.push(id);
            if talker.accounts.is_empty() {
                return Err(format!("talker {id:?} has no account"));
            }
            if let Some(a) = talker.accounts.iter().find(|a| !server_known(&a.server)) {
                return Err(format!("talker {id:?}: unknown server {:?}", a.server));
            }
            if let Some(owner) = &talker.owner
                && !user_known(owner)
            {
                return Err(format!("talker {id:?}: unknown owner {owner:?}"));
            }
            if let AnswerSpec::AutoFromUsers(users) = &talker.answer
                && let Some(u) = users.iter().find(|u| !user_known(u))
            {
                return Err(format!("talker {id:?}: answers unknown user {u:?}"));
            }
        }
        Ok(())
    }
}

/// The demo's family server.
pub const FAMILY: &str = "family.example";
/// The demo's work server.
pub const WORK: &str = "work.example";
/// LAN host of the servers and the matcher.
pub const CLOUD_HOST: &str = "cloud";
/// LAN host left free for the dialer.
pub const DIALER_HOST: &str = "dialer";

fn account(server: &str, user: &str) -> AccountSpec {
    AccountSpec {
        server: server.into(),
        user: user.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_valid_and_shaped_as_issue_7_says() {
        let demo = HouseholdSpec::demo();
        demo.validate().expect("valid demo");
        let alice: Vec<&str> = demo
            .talkers
            .iter()
            .filter(|t| t.owner.as_deref() == Some("alice"))
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(alice, ["tv", "pc", "phone"]);
        assert!(demo.talker("tv").is_some_and(|t| t.video));
        assert_eq!(
            demo.accounts_of_user("alice"),
            [
                "sip:alice-pc@work.example",
                "sip:alice-phone@family.example",
                "sip:alice-tv@family.example",
                "sip:alice-tv@work.example"
            ]
        );
        assert_eq!(demo.sip_users_on(WORK), ["alice-pc", "alice-tv", "dave"]);
    }

    #[test]
    fn validation_names_the_mistake() {
        let mut spec = HouseholdSpec::demo();
        if let Some(t) = spec.talker_mut("pc") {
            t.accounts[0].server = "nowhere.example".into();
        }
        let err = spec.validate().unwrap_err();
        assert!(
            err.contains("pc") && err.contains("nowhere.example"),
            "{err}"
        );

        let mut spec = HouseholdSpec::demo();
        if let Some(t) = spec.talker_mut("pc") {
            t.id = "dialer".into();
        }
        assert!(spec.validate().is_err());
    }
}
