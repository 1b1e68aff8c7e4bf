//! `splitdial add CONTACT [--call CALL]`: add a party to a call, by default the
//! last one this dialer placed. The caller's talker calls the contact too and
//! mixes everyone's audio, so each party hears all the others.

use super::{call_or_last, matcher};
use crate::cli::Exit;
use crate::config::Config;

/// Adds `contact` to `call` (or the last call) and prints the party number.
pub async fn run(config: &Config, contact: &str, call: Option<String>) -> Result<(), Exit> {
    let call = call_or_last(call, "add a party to")?;
    let party = matcher(config)?.add_party(&call, contact).await?;
    println!("{call} party {party}: {contact}");
    Ok(())
}
