//! `splitdial call CONTACT [--on TALKER]... [--video] [--wait] [--json]`.
//!
//! Prints the call id, then one line per state from the call's event stream,
//! `  +1.23s callee_ringing`, with the party and the end reason when there are
//! some. Without `--wait` it returns once the callee's device rings (or the
//! call is connected or handed off); with `--wait` it follows the call until
//! it is over, and Ctrl-C hangs the call up. A call that ends before it was
//! connected exits 4 with the reason; see [`crate::cli::ExitCode`].

use super::matcher;
use crate::cli::{Exit, ExitCode};
use crate::config::{Config, process_env, state_dir};
use crate::effects::remember_last_call;
use crate::matcher_client::MatcherClient;
use crate::model::{CallEvent, CallState};
use std::time::{Duration, Instant};

/// What to call and how.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The contact's name.
    pub contact: String,
    /// My designated talkers, in preference order.
    pub on: Vec<String>,
    /// Video asked for.
    pub video: bool,
    /// Follow until the call is over.
    pub wait: bool,
    /// JSON lines instead of text.
    pub json: bool,
}

/// How long a hang-up after Ctrl-C may take to show as `ended` (cancelling a
/// control INVITE the talker never answered can take the matcher ~10 s).
const HANG_UP_GRACE: Duration = Duration::from_secs(40);

/// Places the call and follows it.
pub async fn run(config: &Config, request: &CallRequest) -> Result<(), Exit> {
    let matcher = matcher(config)?;
    let started = Instant::now();
    let info = matcher
        .place_call(&request.contact, &request.on, request.video)
        .await?;
    if let Some(dir) = state_dir(&process_env) {
        remember_last_call(&dir, &info.call);
    }
    if request.json {
        super::print_json_line(&info)?;
    } else {
        println!("{}", info.call);
    }
    follow(&matcher, &info.call, request, started).await
}

/// One progress line.
pub fn progress_line(event: &CallEvent, elapsed: Duration) -> String {
    let mut line = format!("{:>+8.2}s {}", elapsed.as_secs_f64(), event.state.as_str());
    if event.party() != 1 {
        line.push_str(&format!(" party={}", event.party()));
    }
    if let Some(party_state) = event.detail.party_state {
        line.push_str(&format!(" party_state={party_state}"));
    }
    if let Some(reason) = event.reason() {
        line.push_str(&format!(" reason={reason}"));
    }
    if let Some(code) = event.detail.sip_code {
        line.push_str(&format!(" sip={code}"));
    }
    line
}

/// What a final or stopping state means for the exit code.
fn outcome(event: &CallEvent, connected: bool) -> Result<(), Exit> {
    match event.state {
        CallState::Ended if connected => Ok(()),
        CallState::Ended => Err(Exit::new(
            ExitCode::CallFailed,
            format!(
                "the call ended before it was connected: {}",
                event.reason().unwrap_or("no reason given")
            ),
        )),
        CallState::LostControl => Err(Exit::new(
            ExitCode::Unreachable,
            "the matcher lost control of the call (it restarted); media may still flow",
        )),
        _ => Ok(()),
    }
}

async fn follow(
    matcher: &MatcherClient,
    call: &str,
    request: &CallRequest,
    started: Instant,
) -> Result<(), Exit> {
    let mut events = matcher.follow_call(call);
    let mut connected = false;
    let mut hung_up_at: Option<Instant> = None;
    loop {
        let next = if request.wait && hung_up_at.is_none() {
            tokio::select! {
                event = events.next() => event,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("hanging up {call}");
                    matcher.hang_up(call).await?;
                    hung_up_at = Some(Instant::now());
                    continue;
                }
            }
        } else if let Some(at) = hung_up_at {
            let left = HANG_UP_GRACE.saturating_sub(at.elapsed());
            tokio::select! {
                event = tokio::time::timeout(left, events.next()) => match event {
                    Ok(event) => event,
                    Err(_) => {
                        return Err(Exit::new(
                            ExitCode::Unreachable,
                            "hung up, but the call did not end in time",
                        ));
                    }
                },
                _ = tokio::signal::ctrl_c() => {
                    return Err(Exit::new(
                        ExitCode::Unreachable,
                        "stopped waiting for the call to end (it is being hung up)",
                    ));
                }
            }
        } else {
            events.next().await
        };
        let event = match next {
            None => {
                return Err(Exit::new(
                    ExitCode::Unreachable,
                    "the call's event stream ended before a final state",
                ));
            }
            Some(Err(problem)) => {
                return Err(Exit::new(
                    ExitCode::Unreachable,
                    format!("lost the call's event stream: {problem}"),
                ));
            }
            Some(Ok(event)) => event,
        };
        if request.json {
            super::print_json_line(&event)?;
        } else {
            println!("{}", progress_line(&event, started.elapsed()));
        }
        connected |= matches!(event.state, CallState::Connected | CallState::HandedOff);
        if event.state.is_final() {
            // A hang-up we asked for is a success whatever came before.
            if hung_up_at.is_some() && event.state == CallState::Ended {
                return Ok(());
            }
            return outcome(&event, connected);
        }
        if !request.wait && event.state >= CallState::CalleeRinging {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn event(state: CallState, detail: serde_json::Value) -> CallEvent {
        CallEvent {
            call: "c1".into(),
            seq: 1,
            state,
            at: "2026-01-01T00:00:00.000Z".into(),
            detail: serde_json::from_value(detail).unwrap(),
        }
    }

    #[test]
    fn progress_lines_carry_party_and_reason() {
        assert_eq!(
            progress_line(
                &event(CallState::Matching, json!({})),
                Duration::from_millis(10)
            ),
            "   +0.01s matching"
        );
        assert_eq!(
            progress_line(
                &event(
                    CallState::Ended,
                    json!({"reason": "callee_busy", "sip_code": 486})
                ),
                Duration::from_millis(1500)
            ),
            "   +1.50s ended reason=callee_busy sip=486"
        );
        assert_eq!(
            progress_line(
                &event(
                    CallState::Connected,
                    json!({"party": 2, "party_state": "ended"})
                ),
                Duration::from_secs(3)
            ),
            "   +3.00s connected party=2 party_state=ended"
        );
    }

    #[test]
    fn outcomes() {
        let ended = event(CallState::Ended, json!({"reason": "callee_busy"}));
        assert_eq!(
            outcome(&ended, false).unwrap_err().code,
            ExitCode::CallFailed
        );
        assert!(outcome(&ended, true).is_ok());
        assert_eq!(
            outcome(&event(CallState::LostControl, json!({})), true)
                .unwrap_err()
                .code,
            ExitCode::Unreachable
        );
        assert!(outcome(&event(CallState::HandedOff, json!({})), false).is_ok());
    }
}
