//! Why an SDP body was refused. The media errors the agent shares with its worker
//! ([`splitdial_media::MediaError`], [`splitdial_media::SettingsError`]) are in the
//! `splitdial-media` crate.

/// Why an SDP body was refused. Every variant maps to a SIP status via [`SdpError::sip_status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not a usable SDP session description (RFC 4566/8866).
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// The offer carries no stream with a codec this talker can use (answer 488).
    #[error("no common codec: {0}")]
    NoCommonCodec(String),
    /// An answer that does not fit the offer it answers (RFC 3264 §6).
    #[error("SDP answer does not match the offer: {0}")]
    AnswerMismatch(String),
    /// Building the SDP text failed inside the SDP library.
    #[error("cannot write SDP: {0}")]
    Write(String),
}

impl SdpError {
    /// The SIP status code that answers a request carrying this SDP problem.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Malformed(_) => 400,
            SdpError::NoCommonCodec(_) | SdpError::AnswerMismatch(_) => 488,
            SdpError::Write(_) => 500,
        }
    }
}
