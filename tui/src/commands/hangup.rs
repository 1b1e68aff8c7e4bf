//! `splitdial hangup [CALL]`: hang up a call, by default the last one this
//! dialer placed (`$XDG_STATE_HOME/splitdial/last_call`).

use super::{call_or_last, matcher};
use crate::cli::Exit;
use crate::config::Config;

/// Hangs up `call` (or the last call) and says whether it was still live.
pub async fn run(config: &Config, call: Option<String>) -> Result<(), Exit> {
    let call = call_or_last(call, "hang up")?;
    let info = matcher(config)?.hang_up(&call).await?;
    if info.state.is_final() {
        let reason = info.reason.as_deref().unwrap_or("-");
        println!("{call} already over ({} {reason})", info.state.as_str());
    } else {
        println!("{call} hanging up");
    }
    Ok(())
}
