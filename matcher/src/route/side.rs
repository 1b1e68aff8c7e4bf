//! The two ends of a call as route ranking sees them: the caller's designated
//! talkers, and the callee (a splitdial user's talkers or a plain SIP address).

use crate::registry::{Account, Media, Talker, UserId};

/// A talker together with its SIP accounts, as read from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkerAccounts {
    /// The talker.
    pub talker: Talker,
    /// Its accounts; an account whose `talker` is not this talker's id is ignored.
    pub accounts: Vec<Account>,
}

/// The calling user and the talkers they designated, in their order of preference.
///
/// Only a talker that is owned by `user` **and** named in `designated` is ever used;
/// every other entry of `talkers` is ignored. Duplicate talker ids (in either list)
/// and duplicate account AORs within a talker count once, at their first position.
/// An empty `designated` designates nothing: when the dialer names no talker, the
/// API passes all of the user's talkers in the order it wants tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerSide {
    /// The calling user.
    pub user: UserId,
    /// Talker ids, most preferred first.
    pub designated: Vec<String>,
    /// The user's talkers with their accounts (any order).
    pub talkers: Vec<TalkerAccounts>,
}

/// Who is being called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalleeSide {
    /// Another splitdial user: their talkers with accounts, most preferred first.
    /// Talkers not owned by `user` are ignored; duplicates count once, at their
    /// first position.
    User {
        /// The callee user.
        user: UserId,
        /// Their talkers in their order of preference.
        talkers: Vec<TalkerAccounts>,
    },
    /// A plain SIP address on a known server (a contact of type address).
    ///
    /// It is one account whose online state is what the matcher's OPTIONS
    /// probe last saw (`reachable`), or unknown: an unknown state never demotes
    /// a route (only a known offline side does). It carries video only when
    /// `media` says so.
    Address {
        /// The address, `sip:user@domain`.
        aor: String,
        /// Domain of its server.
        server: String,
        /// What it can carry; [`CalleeSide::address`] assumes audio.
        media: Media,
        /// Whether the last OPTIONS probe through its server reached it;
        /// `None` when not probed (recently).
        reachable: Option<bool>,
    },
}

impl CalleeSide {
    /// A plain SIP address that is assumed to carry audio only.
    pub fn address(aor: impl Into<String>, server: impl Into<String>) -> Self {
        Self::Address {
            aor: aor.into(),
            server: server.into(),
            media: Media::Audio,
            reachable: None,
        }
    }
}

/// Whether a talker's last heartbeat is at most `max_age_s` seconds before `now`
/// (Unix seconds). A heartbeat stamped slightly in the future counts as fresh.
pub fn heartbeat_fresh(talker: &Talker, now: i64, max_age_s: i64) -> bool {
    talker
        .last_seen
        .is_some_and(|seen| now.saturating_sub(seen) <= max_age_s)
}

/// Whether a talker is online on one account: the account is registered and the
/// talker's heartbeat is fresh (see [`heartbeat_fresh`]).
pub fn account_online(talker: &Talker, account: &Account, now: i64, max_age_s: i64) -> bool {
    account.registered && heartbeat_fresh(talker, now, max_age_s)
}

/// One usable talker of a side, with its position in that side's preference order.
pub(super) struct UsableTalker<'a> {
    /// 0-based position in the owner's preference order.
    pub(super) preference: usize,
    pub(super) talker: &'a Talker,
    pub(super) accounts: Vec<&'a Account>,
}

/// Keeps the talkers of `owner` among `talkers`, first occurrence of an id only,
/// each with its own accounts (first occurrence of an AOR only).
fn owned(
    owner: UserId,
    talkers: &[TalkerAccounts],
) -> impl Iterator<Item = (&Talker, Vec<&Account>)> {
    let mut seen: Vec<&str> = Vec::new();
    talkers.iter().filter_map(move |entry| {
        let talker = &entry.talker;
        if talker.owner != owner || seen.contains(&talker.id.as_str()) {
            return None;
        }
        seen.push(&talker.id);
        let mut accounts: Vec<&Account> = Vec::new();
        for account in &entry.accounts {
            if account.talker == talker.id && !accounts.iter().any(|kept| kept.aor == account.aor) {
                accounts.push(account);
            }
        }
        Some((talker, accounts))
    })
}

impl CallerSide {
    /// The designated talkers this user owns, in designation order.
    pub(super) fn usable_talkers(&self) -> Vec<UsableTalker<'_>> {
        let owned: Vec<(&Talker, Vec<&Account>)> = owned(self.user, &self.talkers).collect();
        let mut usable: Vec<UsableTalker<'_>> = Vec::new();
        for id in &self.designated {
            if usable.iter().any(|kept| &kept.talker.id == id) {
                continue;
            }
            if let Some((talker, accounts)) = owned.iter().find(|(talker, _)| &talker.id == id) {
                usable.push(UsableTalker {
                    preference: usable.len(),
                    talker,
                    accounts: accounts.clone(),
                });
            }
        }
        usable
    }
}

/// One account the callee can be reached on.
pub(super) struct CalleeAccount<'a> {
    /// The callee's talker, `None` for a plain address.
    pub(super) talker: Option<&'a Talker>,
    /// 0-based position of that talker in the callee's preference order.
    pub(super) preference: usize,
    pub(super) aor: &'a str,
    pub(super) server: &'a str,
    pub(super) media: Media,
    /// The registry account, `None` for a plain address.
    pub(super) account: Option<&'a Account>,
    /// A plain address's probed state (`None` for talkers and unprobed addresses).
    pub(super) reachable: Option<bool>,
}

impl CalleeSide {
    /// Every account the callee can be reached on, with its talker's preference.
    pub(super) fn accounts(&self) -> Vec<CalleeAccount<'_>> {
        match self {
            Self::User { user, talkers } => owned(*user, talkers)
                .enumerate()
                .flat_map(|(preference, (talker, accounts))| {
                    accounts.into_iter().map(move |account| CalleeAccount {
                        talker: Some(talker),
                        preference,
                        aor: &account.aor,
                        server: &account.server,
                        media: talker.media,
                        account: Some(account),
                        reachable: None,
                    })
                })
                .collect(),
            Self::Address {
                aor,
                server,
                media,
                reachable,
            } => vec![CalleeAccount {
                talker: None,
                preference: 0,
                aor,
                server,
                media: *media,
                account: None,
                reachable: *reachable,
            }],
        }
    }
}
