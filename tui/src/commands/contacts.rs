//! `splitdial contacts [--json]`: my contacts and the servers where each can
//! be reached (never their devices).

use super::{matcher, print_json, print_table};
use crate::cli::Exit;
use crate::config::Config;

/// Lists the contacts as a table or a JSON array of `model::Contact`.
pub async fn run(config: &Config, json: bool) -> Result<(), Exit> {
    let contacts = matcher(config)?.contacts().await?;
    if json {
        return print_json(&contacts);
    }
    let rows: Vec<Vec<String>> = contacts
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.as_str().to_owned(),
                if c.accepted { "yes" } else { "no" }.to_owned(),
                if c.servers.is_empty() {
                    "-".to_owned()
                } else {
                    c.servers.join(",")
                },
            ]
        })
        .collect();
    print_table(&["NAME", "KIND", "ACCEPTED", "SERVERS"], &rows);
    Ok(())
}
