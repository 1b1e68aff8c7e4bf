//! `matcher pki`: the household PKI from the command line (the CA and the issuing live in
//! `splitdial-tls`). It needs no database.

use crate::cli::PkiCommand;
use serde_json::json;
use splitdial_tls::pki::{HouseholdCa, Usage};

/// Runs one `matcher pki` command, printing the files it wrote (JSON when `as_json`).
pub fn run_pki(command: PkiCommand, as_json: bool) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { dir, name } => {
            let ca = HouseholdCa::init(&dir, &name)?;
            let certificate = ca.certificate_path();
            if as_json {
                println!("{}", json!({ "ca_certificate": certificate }));
            } else {
                println!(
                    "CA made in {}: give {} to the dialer and the talkers (matcher_ca)",
                    dir.display(),
                    certificate.display()
                );
            }
        }
        PkiCommand::Issue {
            name,
            dir,
            client,
            sans,
        } => {
            let ca = HouseholdCa::open(&dir)?;
            let usage = if client { Usage::Client } else { Usage::Server };
            let (certificate, key) = ca.issue_files(&name, usage, &sans)?;
            if as_json {
                println!("{}", json!({ "certificate": certificate, "key": key }));
            } else {
                println!(
                    "issued {} and {} (0600)",
                    certificate.display(),
                    key.display()
                );
            }
        }
    }
    Ok(())
}
