//! The command line: global flags that override the configuration, and the
//! scriptable subcommands (no subcommand starts the terminal dialer). The exit
//! codes are [`ExitCode`]'s and stable (docs/dialer.md, "Subcommands").

use crate::config::{ManualTalker, Overrides, parse_manual_talker};
use crate::model::Problem;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Dial on one device, talk on another: the splitdial dialer.
#[derive(Debug, Parser)]
#[command(name = "splitdial", version, about, long_about = None)]
pub struct Cli {
    /// Settings that override the configuration file and the environment.
    #[command(flatten)]
    pub global: GlobalFlags,
    /// What to do; without one, the terminal dialer starts.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Args)]
pub struct GlobalFlags {
    /// Read this configuration file instead of $XDG_CONFIG_HOME/splitdial/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The matcher's URL (http://host:port).
    #[arg(long, global = true, value_name = "URL")]
    pub matcher_url: Option<String>,
    /// Read the bearer token from this file (chmod 600).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// mDNS interfaces: `all` or a comma-separated list such as `eth0,wlan0`.
    #[arg(long, global = true, value_name = "LIST")]
    pub interfaces: Option<String>,
    /// Do not browse the LAN (registry and manual talkers only).
    #[arg(long, global = true)]
    pub no_discovery: bool,
    /// A talker's local API address, verified like a discovered one
    /// (repeatable; replaces the file's [[talkers]]).
    #[arg(long = "talker", global = true, value_name = "ID=HOST:PORT", value_parser = parse_manual_talker)]
    pub talkers: Vec<ManualTalker>,
    /// Draw without colours (as NO_COLOR does).
    #[arg(long, global = true)]
    pub no_color: bool,
}

impl GlobalFlags {
    /// The overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            matcher_url: self.matcher_url.clone(),
            token_file: self.token_file.clone(),
            interfaces: self.interfaces.clone(),
            no_discovery: self.no_discovery,
            talkers: self.talkers.clone(),
            no_color: self.no_color,
        }
    }
}

/// The scriptable subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List my talkers: the registry merged with what the LAN shows, verified.
    Talkers {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Seconds to browse the LAN before answering (0: registry only).
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        wait_lan: f64,
    },
    /// List my contacts and the servers where each can be reached.
    Contacts {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Call a contact and print its progress, one line per state.
    Call {
        /// The contact's name.
        contact: String,
        /// A talker to use, in preference order (repeatable; default: all mine).
        #[arg(long = "on", value_name = "TALKER")]
        on: Vec<String>,
        /// Ask for video.
        #[arg(long)]
        video: bool,
        /// Follow the call until it is over (Ctrl-C hangs it up), not only
        /// until the callee rings.
        #[arg(long)]
        wait: bool,
        /// Print the call and each event as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Add a contact to a call as one more party (default: the last call this
    /// dialer placed); the talker mixes everyone's audio.
    Add {
        /// The contact's name.
        contact: String,
        /// The call id.
        #[arg(long, value_name = "CALL")]
        call: Option<String>,
    },
    /// Hang up a call (default: the last call this dialer placed).
    Hangup {
        /// The call id.
        call: Option<String>,
    },
    /// Print the effective configuration (the token redacted).
    Config,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Start a whole demo household on a private simulated LAN (needs root),
    /// then the dialer as alice inside it; quitting tears it all down.
    Demo {
        /// Start the household only, print how to reach it, wait for Ctrl-C.
        #[arg(long)]
        no_tui: bool,
        /// Print start-up stage timings, PIDs, namespaces and the scratch
        /// directory on stderr.
        #[arg(long)]
        timings: bool,
    },
}

/// The dialer's exit codes (stable; scripts rely on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// Any other failure (an answer outside the contract, a local error).
    Failure = 1,
    /// Bad usage or configuration (also clap's own usage errors), including
    /// a missing matcher URL or token.
    Usage = 2,
    /// No route: no shared server, no usable server, no designated talker of mine.
    NoRoute = 3,
    /// The call failed or ended before it was connected (the reason is printed).
    CallFailed = 4,
    /// The matcher (or a talker) is unreachable, or the call's event stream was lost.
    Unreachable = 5,
    /// Refused: the token is missing, invalid or expired, or the action is forbidden.
    Unauthorized = 6,
    /// Not found: no such contact, call or talker; no last call to hang up.
    NotFound = 7,
}

impl ExitCode {
    /// The code a problem with the matcher maps to.
    pub fn of_problem(problem: &Problem) -> Self {
        match problem {
            Problem::Unreachable { .. } => Self::Unreachable,
            Problem::Protocol { .. } => Self::Failure,
            Problem::Refused { status, code, .. } => match (status, code.as_str()) {
                (_, "not_configured") => Self::Usage,
                (
                    _,
                    "no_shared_server" | "no_usable_server" | "no_designated_talker" | "no_route",
                ) => Self::NoRoute,
                (_, "call_not_live") => Self::CallFailed,
                (401 | 403, _) => Self::Unauthorized,
                (404, _) => Self::NotFound,
                (400 | 415 | 422, _) => Self::Usage,
                (429 | 500..=599, _) => Self::Unreachable,
                _ => Self::Failure,
            },
        }
    }
}

/// An error that ends a subcommand with a specific exit code (its message is
/// printed on one line as `splitdial: MESSAGE`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The exit code.
    pub code: ExitCode,
    /// What went wrong, one line.
    pub message: String,
}

impl Exit {
    /// An exit with a code and message.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<Problem> for Exit {
    fn from(problem: Problem) -> Self {
        let code = ExitCode::of_problem(&problem);
        let message = match &problem {
            Problem::Refused {
                code,
                caller_servers,
                callee_servers,
                ..
            } if code == "no_shared_server" => format!(
                "no_shared_server: your talkers are on [{}], the contact is on [{}]",
                caller_servers.join(", "),
                callee_servers.join(", ")
            ),
            Problem::Refused { code, message, .. } => format!("{code}: {message}"),
            other => other.to_string(),
        };
        Self { code, message }
    }
}
