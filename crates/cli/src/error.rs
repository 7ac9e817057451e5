//! Errors a person sees: one line, what to do, no backtrace, no secret; and
//! the exit code that goes with them.

use std::fmt;
use std::process::ExitCode;

use tasktrack_core::Error;

/// A command's failure.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage, configuration, input, credentials or server: exit 2.
    Usage {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The task failed (already reported): exit 1.
    TaskFailed,
    /// The wait ran out of time: exit 3.
    Timeout(String),
    /// Standard output's reader went away (`| head`): a quiet exit 0.
    Closed,
}

impl CliError {
    /// A usage error with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Closed => ExitCode::SUCCESS,
            CliError::TaskFailed => ExitCode::from(1),
            CliError::Usage { .. } => ExitCode::from(2),
            CliError::Timeout(_) => ExitCode::from(3),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage {
                message,
                hint: Some(hint),
            } => write!(f, "error: {message} ({hint})"),
            CliError::Usage {
                message,
                hint: None,
            } => write!(f, "error: {message}"),
            CliError::TaskFailed => f.write_str("error: the task failed"),
            CliError::Timeout(m) => write!(f, "error: {m}"),
            CliError::Closed => Ok(()),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let hint = match &e {
            Error::Transport { .. } => {
                Some("check the backend's URL in the config and that it is reachable")
            }
            // The message already says to check the credentials.
            Error::Auth { .. } => None,
            Error::NotFound { .. } => Some("check the task id"),
            Error::Timeout { .. } => None,
            _ => None,
        };
        match e {
            Error::Timeout { .. } => CliError::Timeout(e.to_string()),
            other => CliError::Usage {
                message: other
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                hint: hint.map(str::to_owned),
            },
        }
    }
}
