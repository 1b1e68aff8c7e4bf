//! The `matcher` command line: the flags of serving, and the admin
//! subcommands a household or an operator uses to fill the registry (run by
//! [`crate::admin`]).

use crate::registry::TalkerKind;
use clap::{Args, Parser, Subcommand};
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
