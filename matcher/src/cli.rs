//! The `matcher` command line: the flags of serving, and the admin
//! subcommands a household or an operator uses to fill the registry (run by
//! [`crate::admin`]).

use crate::registry::TalkerKind;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// HTTPS API address.
    #[arg(long, env = "MATCHER_LISTEN", default_value = "127.0.0.1:8740")]
    pub listen: SocketAddr,
    /// The API's certificate chain (PEM, the matcher's certificate first); reread on SIGHUP.
    #[arg(long, env = "MATCHER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, mode 0600); reread on SIGHUP.
    #[arg(long, env = "MATCHER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS: development only, and only on a loopback --listen.
    #[arg(long, env = "MATCHER_INSECURE_HTTP")]
    pub insecure_http: bool,
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

/// How the API is to be served, as the flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeTransport {
    /// HTTPS with this certificate chain and key.
    Tls {
        /// The certificate chain file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Plain HTTP on loopback (`--insecure-http`).
    InsecureHttp,
}

impl ServeArgs {
    /// HTTPS when a certificate and a key are given; plain HTTP only with `--insecure-http` on a
    /// loopback address. Anything else is one line saying what to give.
    pub fn transport(&self) -> Result<ServeTransport, String> {
        if self.insecure_http {
            if self.tls_cert.is_some() || self.tls_key.is_some() {
                return Err("--insecure-http with --tls-cert/--tls-key: choose one".into());
            }
            if !self.listen.ip().is_loopback() {
                return Err(format!(
                    "--insecure-http is allowed only on a loopback --listen, not {}; serve HTTPS \
                     with --tls-cert and --tls-key",
                    self.listen
                ));
            }
            return Ok(ServeTransport::InsecureHttp);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(certificate), Some(key)) => Ok(ServeTransport::Tls {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            (Some(_), None) => Err("--tls-cert without --tls-key".into()),
            (None, Some(_)) => Err("--tls-key without --tls-cert".into()),
            (None, None) => Err(
                "no certificate: give --tls-cert and --tls-key (MATCHER_TLS_CERT, \
                 MATCHER_TLS_KEY; `matcher pki` makes them), or --insecure-http on a loopback \
                 --listen for development"
                    .into(),
            ),
        }
    }
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
    /// Token-signing keys: rotate, revoke, list.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The old spelling of `matcher key rotate` (without `--revoke`), kept so
    /// scripts written for it go on working.
    #[command(hide = true)]
    RotateKey,
    /// The household PKI: a private CA and the certificates it issues (no database needed).
    #[command(subcommand)]
    Pki(PkiCommand),
}

/// `matcher key ...`. Running matchers take a change within
/// [`crate::signing::KEY_RELOAD_INTERVAL`], and talkers at their next heartbeat.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Makes a new token-signing key; the others stop signing and stay
    /// published for a day, unless revoked.
    Rotate {
        /// Also revokes this key (by kid, from `matcher key list`): no longer
        /// published, named as revoked to talkers, its tokens refused even
        /// before they expire (repeated for several).
        #[arg(long = "revoke", value_name = "KID")]
        revoke: Vec<String>,
    },
    /// Revokes one key that is no longer the only active one (a retired key
    /// still in its overlap; rotate with --revoke to replace the active key).
    Revoke {
        /// The key's id.
        kid: String,
    },
    /// Lists every key: kid, state (active, retired, revoked), creation time.
    List,
}

/// `matcher pki ...`.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Makes a private CA (`ca.key`, `ca.crt`) in DIR, created 0700; never overwrites one.
    Init {
        /// The CA's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The CA's name (its certificate's common name).
        #[arg(long, default_value = "splitdial household CA")]
        name: String,
    },
    /// Issues NAME.crt and NAME.key (0600) in DIR, signed by its CA: a server certificate, or a
    /// client one with --client. Issuing again renews it.
    Issue {
        /// The certificate's name; also its only subject alternative name unless --san is given.
        name: String,
        /// The CA's directory.
        #[arg(long)]
        dir: PathBuf,
        /// A client certificate instead of a server one.
        #[arg(long)]
        client: bool,
        /// A host name or IP address the certificate is valid for (repeated).
        #[arg(long = "san")]
        sans: Vec<String>,
    },
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
    /// Removes a talker (an enrolled agent or a SIP phone): its credential is
    /// refused from its next request on, and it leaves routes and presence.
    Remove {
        /// The talker's id.
        id: String,
    },
    /// Issues a new heartbeat credential for an enrolled agent, printed once;
    /// the old one is refused from its next request on.
    Rotate {
        /// The talker's id.
        id: String,
    },
}
