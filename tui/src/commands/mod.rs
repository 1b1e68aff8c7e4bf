//! The scriptable subcommands, one module each. Each returns `Ok(())` or an
//! [`Exit`] carrying the stable exit code and a one-line reason; tables go to
//! stdout, progress and warnings to stderr only where noted.

pub mod add;
pub mod call;
pub mod completions;
pub mod config;
pub mod contacts;
pub mod demo;
pub mod hangup;
pub mod man;
pub mod talkers;

use crate::cli::{Command, Exit, ExitCode};
use crate::config::{Config, Loaded};
use crate::matcher_client::MatcherClient;

/// Runs one subcommand with the effective configuration.
pub async fn run(command: Command, loaded: Loaded) -> Result<(), Exit> {
    match command {
        Command::Talkers { json, wait_lan } => talkers::run(&loaded.config, json, wait_lan).await,
        Command::Contacts { json } => contacts::run(&loaded.config, json).await,
        Command::Call {
            contact,
            on,
            video,
            wait,
            json,
        } => {
            call::run(
                &loaded.config,
                &call::CallRequest {
                    contact,
                    on,
                    video,
                    wait,
                    json,
                },
            )
            .await
        }
        Command::Add { contact, call } => add::run(&loaded.config, &contact, call).await,
        Command::Hangup { call } => hangup::run(&loaded.config, call).await,
        Command::Config => config::run(&loaded),
        Command::Completions { shell } => {
            completions::run(shell);
            Ok(())
        }
        Command::Man => man::run(),
        Command::Demo { no_tui, timings } => Err(demo::exec(demo::DemoOptions { no_tui, timings })),
    }
}

/// The matcher client, or exit 2 naming what is missing.
pub fn matcher(config: &Config) -> Result<MatcherClient, Exit> {
    match (&config.matcher_url, &config.token) {
        (Some(url), Some(token)) => {
            MatcherClient::new(url, token.clone(), &config.matcher_trust()).map_err(Exit::from)
        }
        _ => Err(Exit::from(crate::effects::not_configured(config))),
    }
}

/// `call`, or else the last call this dialer placed; `what` completes "no last
/// call to ...".
pub fn call_or_last(call: Option<String>, what: &str) -> Result<String, Exit> {
    match call {
        Some(call) => Ok(call),
        None => crate::config::state_dir(&crate::config::process_env)
            .and_then(|dir| crate::effects::last_call(&dir))
            .ok_or_else(|| {
                Exit::new(
                    ExitCode::NotFound,
                    format!("no last call to {what}; name the call"),
                )
            }),
    }
}

/// Prints rows as left-aligned columns separated by two spaces.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(&cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints a JSON value on stdout, or fails with exit 1.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Exit> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Exit::new(ExitCode::Failure, format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints a JSON value on one line (JSON lines), or fails with exit 1.
pub fn print_json_line(value: &impl serde::Serialize) -> Result<(), Exit> {
    let text = serde_json::to_string(value)
        .map_err(|e| Exit::new(ExitCode::Failure, format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}
