//! `splitdial hangup [CALL]`: hang up a call, by default the last one this
//! dialer placed (`$XDG_STATE_HOME/splitdial/last_call`).

use super::matcher;
use crate::cli::{Exit, ExitCode};
use crate::config::{Config, process_env, state_dir};
use crate::effects::last_call;

/// Hangs up `call` (or the last call) and says whether it was still live.
pub async fn run(config: &Config, call: Option<String>) -> Result<(), Exit> {
    let call = match call {
        Some(call) => call,
        None => state_dir(&process_env)
            .and_then(|dir| last_call(&dir))
            .ok_or_else(|| {
                Exit::new(ExitCode::NotFound, "no last call to hang up; name the call")
            })?,
    };
    let info = matcher(config)?.hang_up(&call).await?;
    if info.state.is_final() {
        let reason = info.reason.as_deref().unwrap_or("-");
        println!("{call} already over ({} {reason})", info.state.as_str());
    } else {
        println!("{call} hanging up");
    }
    Ok(())
}
