//! The `matcher` command line: serving, and the admin subcommands a household
//! or an operator uses to fill the registry. Output is one readable line per
//! item, or JSON with `--json`.

use crate::auth::{SecretKind, fingerprint, new_secret, secret_hash};
use crate::registry::{
    ContactTarget, ControllerTrust, MAX_FIELD, Media, Server, TalkerKind, Transport, aor_domain,
    printable_field,
};
use crate::storage::{NewAccount, NewSipPhone, Store, TokenSelector};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;

/// splitdial's matcher: finds the SIP server caller and callee share and has it
/// connect their talkers.
#[derive(Debug, Parser)]
#[command(name = "matcher", version, about)]
pub struct Cli {
    /// Database URL: `sqlite:PATH` (default: a file in the XDG data directory)
    /// or `postgres://...`.
    #[arg(long, env = "MATCHER_DB", global = true)]
    pub db: Option<String>,
    /// Print JSON instead of text (admin commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// Serve options (when no subcommand is given).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// An admin command; without one, the matcher serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of the server.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP API address.
    #[arg(long, env = "MATCHER_LISTEN", default_value = "127.0.0.1:8740")]
    pub listen: SocketAddr,
    /// The call controller's SIP address (UDP and TCP); port 0 picks one.
    #[arg(long, env = "MATCHER_SIP_LISTEN", default_value = "127.0.0.1:0")]
    pub sip_listen: SocketAddr,
    /// Name of this instance; its unfinished calls are marked `lost_control`
    /// when it restarts.
    #[arg(long, env = "MATCHER_INSTANCE", default_value = "matcher")]
    pub instance: String,
    /// Heartbeat interval asked of talkers, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_interval: u64,
    /// Seconds the caller's talker has to answer the control leg.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub talker_timeout: u64,
    /// Seconds the callee has to answer.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub callee_timeout: u64,
    /// Requests per second allowed per client.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Users: add, list, make, list and revoke API tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// SIP servers: add, list.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Contacts: add.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Talkers that are third-party SIP phones: add.
    #[command(subcommand)]
    Talker(TalkerCommand),
    /// Prints a one-time talker enrollment token for USER (valid one hour).
    EnrollToken {
        /// The user who will own the talker.
        user: String,
    },
    /// Makes a new token-signing key; the old ones stay published for a day.
    RotateKey,
}

/// `matcher user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user.
    Add {
        /// Unique name.
        name: String,
        /// Name shown to others (default: the name).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Lists users.
    List,
    /// Prints a new API bearer token for the user (store it; it is shown once).
    Token {
        /// The user.
        name: String,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Lists the user's API tokens: fingerprint, label, creation time (never the tokens).
    Tokens {
        /// The user.
        name: String,
    },
    /// Revokes API tokens of the user, from their next request on: by label, by
    /// fingerprint (from `user tokens`), or all of them.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["label", "fingerprint", "all"])))]
    RevokeToken {
        /// The user.
        name: String,
        /// Every token made with this label.
        #[arg(long)]
        label: Option<String>,
        /// The token with this fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
        /// All of the user's tokens.
        #[arg(long)]
        all: bool,
    },
}

/// `matcher server ...`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Adds a SIP server.
    Add {
        /// The domain it serves.
        domain: String,
        /// Its proxy, IP:port.
        #[arg(long)]
        proxy: SocketAddr,
        /// Transport toward the proxy.
        #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
        transport: String,
        /// Relative cost; lower is preferred.
        #[arg(long, default_value_t = 1)]
        cost: u32,
        /// How the server trusts the controller: `address` (by source address) or `none`.
        #[arg(long, default_value = "address", value_parser = ["address", "none"])]
        trust: String,
    },
    /// Lists servers.
    List,
}

/// `matcher contact ...`.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Adds a contact to OWNER's address book.
    Add {
        /// Whose address book.
        owner: String,
        /// The name it is called by.
        name: String,
        /// Another splitdial user (callable once they add OWNER back).
        #[arg(long, conflicts_with = "address", required_unless_present = "address")]
        user: Option<String>,
        /// A plain SIP address on a known server.
        #[arg(long)]
        address: Option<String>,
    },
}

/// `matcher talker ...`.
#[derive(Debug, Subcommand)]
pub enum TalkerCommand {
    /// Adds a third-party SIP phone (a desk phone, a softphone) as OWNER's
    /// talker. Agents enroll themselves instead (`talker-agent enroll`).
    Add {
        /// Whose talker it is.
        owner: String,
        /// Its id (unique among all talkers).
        id: String,
        /// The name shown in the dialer (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Device kind.
        #[arg(long, value_enum, default_value_t = TalkerKind::Phone)]
        kind: TalkerKind,
        /// It carries video as well as audio.
        #[arg(long)]
        video: bool,
        /// Its accounts (sip:user@domain on a known server), in order of
        /// preference.
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
    },
}

/// Runs one admin command against `store`, printing its result.
pub async fn run_admin(store: &Store, command: Command, as_json: bool) -> anyhow::Result<()> {
    let print = |value: serde_json::Value, text: String| {
        if as_json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    };
    match command {
        Command::User(UserCommand::Add { name, display_name }) => {
            let display = display_name.unwrap_or_else(|| name.clone());
            let user = store.add_user(&name, &display).await?;
            print(
                json!(user),
                format!("added user {} (id {})", user.name, user.id),
            );
        }
        Command::User(UserCommand::List) => {
            let users = store.users().await?;
            if as_json {
                println!("{}", json!(users));
            } else {
                for u in users {
                    println!("{}\t{}\t{}", u.id, u.name, u.display_name);
                }
            }
        }
        Command::User(UserCommand::Token { name, label }) => {
            let user = store.require_user(&name).await?;
            let token = new_secret(SecretKind::UserToken);
            let hash = secret_hash(SecretKind::UserToken, &token).context("hashing the token")?;
            store.add_api_token(user.id, &hash, &label).await?;
            print(
                json!({"user": user.name, "token": token, "label": label, "fingerprint": fingerprint(&hash)}),
                token.clone(),
            );
        }
        Command::User(UserCommand::Tokens { name }) => {
            let user = store.require_user(&name).await?;
            let tokens = store.api_tokens(user.id).await?;
            if as_json {
                println!("{}", json!({"user": user.name, "tokens": tokens}));
            } else {
                for t in tokens {
                    println!("{}\t{}\t{}", t.fingerprint, t.label, t.created_at);
                }
            }
        }
        Command::User(UserCommand::RevokeToken {
            name,
            label,
            fingerprint,
            all,
        }) => {
            let user = store.require_user(&name).await?;
            let which = match (&label, &fingerprint, all) {
                (Some(label), _, _) => TokenSelector::Label(label),
                (_, Some(print), _) => TokenSelector::Fingerprint(print),
                _ => TokenSelector::All,
            };
            let revoked = store.revoke_api_tokens(user.id, which).await?;
            if revoked == 0 {
                bail!(
                    "no API token of {} matches (see `matcher user tokens {}`)",
                    user.name,
                    user.name
                );
            }
            print(
                json!({"user": user.name, "revoked": revoked}),
                format!("revoked {revoked} API token(s) of {}", user.name),
            );
        }
        Command::Server(ServerCommand::Add {
            domain,
            proxy,
            transport,
            cost,
            trust,
        }) => {
            let server = Server {
                domain,
                proxy: proxy.to_string(),
                transport: Transport::parse(&transport).unwrap_or(Transport::Tcp),
                cost,
                trust: ControllerTrust::parse(&trust).unwrap_or(ControllerTrust::None),
            };
            store.add_server(&server).await?;
            print(
                json!(server),
                format!("added server {} at {}", server.domain, server.proxy),
            );
        }
        Command::Server(ServerCommand::List) => {
            let servers = store.servers().await?;
            if as_json {
                println!("{}", json!(servers));
            } else {
                for s in servers {
                    println!(
                        "{}\t{} ({})\tcost {}\ttrust {}",
                        s.domain,
                        s.proxy,
                        s.transport.as_str(),
                        s.cost,
                        s.trust.as_str()
                    );
                }
            }
        }
        Command::Contact(ContactCommand::Add {
            owner,
            name,
            user,
            address,
        }) => {
            let owner = store.require_user(&owner).await?;
            let target = match (user, address) {
                (Some(other), None) => ContactTarget::User {
                    user: store.require_user(&other).await?.id,
                },
                (None, Some(aor)) => {
                    let server = aor_domain(&aor)
                        .map(str::to_owned)
                        .with_context(|| format!("--address {aor:?} is not sip:user@domain"))?;
                    if store.server(&server).await?.is_none() {
                        bail!("--address {aor:?}: unknown server {server:?} (add it first)");
                    }
                    ContactTarget::Address { aor, server }
                }
                _ => bail!("give exactly one of --user and --address"),
            };
            let contact = store.add_contact(owner.id, &name, &target).await?;
            print(
                json!(contact),
                format!("added contact {} for {}", contact.name, owner.name),
            );
        }
        Command::Talker(TalkerCommand::Add {
            owner,
            id,
            name,
            kind,
            video,
            accounts,
        }) => {
            // The same rule as an enrolling agent's id.
            if !printable_field(&id) {
                bail!("talker id {id:?}: 1..={MAX_FIELD} printable characters");
            }
            let owner = store.require_user(&owner).await?;
            let mut new_accounts = Vec::new();
            for aor in accounts {
                let server = aor_domain(&aor)
                    .map(str::to_owned)
                    .with_context(|| format!("--account {aor:?} is not sip:user@domain"))?;
                if store.server(&server).await?.is_none() {
                    bail!("--account {aor:?}: unknown server {server:?} (add it first)");
                }
                new_accounts.push(NewAccount { aor, server });
            }
            let phone = NewSipPhone {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                owner: owner.id,
                kind,
                media: Media::with_video(video),
                accounts: new_accounts,
            };
            let talker = store.add_sip_phone(&phone).await?;
            print(
                json!(talker),
                format!(
                    "added SIP phone {} ({}) for {}",
                    talker.id, talker.name, owner.name
                ),
            );
        }
        Command::EnrollToken { user } => {
            let user = store.require_user(&user).await?;
            let token = new_secret(SecretKind::Enrollment);
            let hash = secret_hash(SecretKind::Enrollment, &token).context("hashing the token")?;
            store
                .add_enrollment_token(user.id, &hash, crate::storage::now_secs() + 3600)
                .await?;
            print(
                json!({"user": user.name, "token": token, "expires_in": 3600}),
                token.clone(),
            );
        }
        Command::RotateKey => {
            let kid = crate::signing::KeyRing::rotate(store).await?;
            print(json!({"kid": kid}), format!("new signing key {kid}"));
        }
    }
    Ok(())
}
