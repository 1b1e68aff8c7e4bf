//! What a placed call reports: progress events, the parties of the call, and
//! why a call ended (stable snake_case codes the HTTP API passes on).

use std::fmt;

/// A party the talker was REFERred to call, numbered from 1 in the order they
/// were added (party 1 is the plan's callee).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(pub u32);

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Progress of one call, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerEvent {
    /// The control INVITE is on its way to the caller's talker.
    DialingTalker,
    /// The talker answered the control leg (200 with `Allow: REFER`).
    TalkerAnswered,
    /// A referred party is ringing (sipfrag 180 or 183; reported once per party).
    CalleeRinging {
        /// Which party.
        party: PartyId,
    },
    /// A referred party answered (sipfrag 200).
    Connected {
        /// Which party.
        party: PartyId,
    },
    /// A referred party could not be reached: the REFER was refused, or the
    /// talker's call to it failed (the SIP status it failed with).
    PartyFailed {
        /// Which party.
        party: PartyId,
        /// The SIP status code (the REFER's final response, or the sipfrag's).
        code: u16,
    },
    /// A party that had connected is gone (the talker reported its call ended).
    PartyEnded {
        /// Which party.
        party: PartyId,
    },
    /// The talker ended the control leg while a referred party was still
    /// connected: a third-party phone finished its transfer. The call goes on
    /// between the talkers but can no longer be controlled. Final event.
    HandedOff,
    /// A session refresh showed the control leg gone (RFC 4028: 408, 481 or
    /// no answer) while a party was connected: their call may go on between
    /// the talkers, but nothing steers it any more. Final event.
    LostControl,
    /// The call is over. Final event.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

impl ControllerEvent {
    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::HandedOff | Self::LostControl | Self::Ended { .. }
        )
    }
}

/// Why a call ended. [`EndReason::code`] gives the stable snake_case code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The dialer hung up ([`super::CallControl::hang_up`]).
    HungUp,
    /// The talker refused the control INVITE (e.g. 403: it refused the token).
    TalkerRejected {
        /// The talker's (or its server's) final response code.
        code: u16,
    },
    /// The talker did not answer the control INVITE in time.
    TalkerNoAnswer,
    /// The talker answered without `Allow: REFER`; it cannot be told whom to call.
    NoReferSupport,
    /// The talker ended the control leg before any party connected.
    TalkerHungUp,
    /// The talker refused to act on the REFER (e.g. 403: it refused the token).
    ReferRejected {
        /// The REFER's final response code.
        code: u16,
    },
    /// The callee was busy (sipfrag 486 or 600).
    CalleeBusy {
        /// The status code.
        code: u16,
    },
    /// The callee's side refused or failed the call (any other failure).
    CalleeRejected {
        /// The status code.
        code: u16,
    },
    /// The callee did not answer in time.
    CalleeNoAnswer,
    /// Every party that had connected is gone (the callee or the talker's owner
    /// hung up the referred call, and the talker ended the control leg).
    CalleeHungUp,
    /// The controller is shutting down.
    Shutdown,
    /// Something else went wrong (a transport error, an unexpected state).
    Error {
        /// What happened, for logs (never a secret).
        message: String,
    },
}

impl EndReason {
    /// The stable code: `hung_up`, `talker_rejected`, `talker_no_answer`,
    /// `no_refer_support`, `talker_hung_up`, `refer_rejected`, `callee_busy`,
    /// `callee_rejected`, `callee_no_answer`, `callee_hung_up`,
    /// `controller_shutdown` or `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HungUp => "hung_up",
            Self::TalkerRejected { .. } => "talker_rejected",
            Self::TalkerNoAnswer => "talker_no_answer",
            Self::NoReferSupport => "no_refer_support",
            Self::TalkerHungUp => "talker_hung_up",
            Self::ReferRejected { .. } => "refer_rejected",
            Self::CalleeBusy { .. } => "callee_busy",
            Self::CalleeRejected { .. } => "callee_rejected",
            Self::CalleeNoAnswer => "callee_no_answer",
            Self::CalleeHungUp => "callee_hung_up",
            Self::Shutdown => "controller_shutdown",
            Self::Error { .. } => "error",
        }
    }

    /// The SIP status code behind the reason, when there is one.
    pub fn sip_code(&self) -> Option<u16> {
        match self {
            Self::TalkerRejected { code }
            | Self::ReferRejected { code }
            | Self::CalleeBusy { code }
            | Self::CalleeRejected { code } => Some(*code),
            _ => None,
        }
    }

    /// The reason for a referred call that failed with `code` (sipfrag).
    pub fn for_callee_failure(code: u16) -> Self {
        match code {
            486 | 600 => Self::CalleeBusy { code },
            408 => Self::CalleeNoAnswer,
            _ => Self::CalleeRejected { code },
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())?;
        match self {
            Self::Error { message } => write!(f, ": {message}"),
            other => match other.sip_code() {
                Some(code) => write!(f, " ({code})"),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        assert_eq!(
            EndReason::TalkerRejected { code: 403 }.to_string(),
            "talker_rejected (403)"
        );
        assert_eq!(EndReason::for_callee_failure(486).code(), "callee_busy");
        assert_eq!(EndReason::for_callee_failure(600).code(), "callee_busy");
        assert_eq!(
            EndReason::for_callee_failure(408).code(),
            "callee_no_answer"
        );
        assert_eq!(
            EndReason::for_callee_failure(404),
            EndReason::CalleeRejected { code: 404 }
        );
        assert_eq!(EndReason::Shutdown.code(), "controller_shutdown");
        assert!(ControllerEvent::HandedOff.is_final());
        assert!(!ControllerEvent::TalkerAnswered.is_final());
    }
}
