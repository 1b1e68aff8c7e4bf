//! How the demo ends when it fails: `splitdial`'s exit codes (docs/dialer.md,
//! "Subcommands") and a one-line reason.

/// The exit codes the demo uses, the same numbers as `splitdial`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Anything that stopped the demo after it began (a program not built,
    /// a failed start-up, a signal during start-up, the dialer failing).
    Failure = 1,
    /// The demo cannot run as this user (it needs root).
    Usage = 2,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code as u8)
    }
}

/// A failed demo: its exit code and what went wrong, one line.
#[derive(Debug)]
pub struct Exit {
    /// The exit code.
    pub code: ExitCode,
    /// What went wrong, one line.
    pub message: String,
}

impl Exit {
    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::Failure,
            message: message.into(),
        }
    }

    /// A usage problem (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::Usage,
            message: message.into(),
        }
    }

    /// A file or directory the demo writes could not be written (exit 1).
    #[allow(clippy::needless_pass_by_value)] // Shaped for `map_err`.
    pub fn io(e: std::io::Error) -> Self {
        Self::failure(format!("demo: {e}"))
    }
}
