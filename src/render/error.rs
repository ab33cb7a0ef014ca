//! What can go wrong reading from graphite-web.

use std::fmt;
use std::time::Duration;

/// Why a request to graphite-web failed. Each message names the server and says what to
/// check; none holds a password or the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL or a setting cannot be used; nothing was sent.
    Config(String),
    /// No connection: the host does not resolve, nothing listens there, or TLS failed.
    Connect {
        /// The server's URL, without credentials.
        url: String,
        /// What the system or the TLS library said.
        detail: String,
    },
    /// No complete answer within the client's timeout.
    Timeout {
        /// The server's URL and the path asked for.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The server wants credentials (HTTP 401), or refuses the ones given (401 or 403).
    Unauthorized {
        /// The server's URL and the path asked for.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Whether the request carried credentials.
        sent_credentials: bool,
    },
    /// Any other answer than success, with graphite-web's own message.
    Status {
        /// The server's URL and the path asked for.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's text: graphite-web's `error` field when it sends one.
        message: String,
    },
    /// The answer is not what graphite-web sends (the role of the Python framework's
    /// `DataFormatError`): not JSON, not the expected shape, cut short, or too large.
    Malformed {
        /// The server's URL and the path asked for.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => f.write_str(message),
            Error::Connect { url, detail } => write!(
                f,
                "cannot connect to graphite-web at {url}: {detail} (is the URL right, and the server up?)"
            ),
            Error::Timeout { url, after } => write!(
                f,
                "graphite-web at {url} did not answer within {after:?} (a slow query? raise the timeout)"
            ),
            Error::Unauthorized {
                url,
                status,
                sent_credentials: false,
            } => write!(
                f,
                "graphite-web at {url} needs credentials (HTTP {status}): give a user and password"
            ),
            Error::Unauthorized { url, status, .. } => write!(
                f,
                "graphite-web at {url} refused the credentials (HTTP {status}): check the user and password"
            ),
            Error::Status {
                url,
                status,
                message,
            } => {
                write!(f, "graphite-web at {url} answered HTTP {status}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Malformed { url, detail } => {
                write!(
                    f,
                    "graphite-web at {url} sent an answer graphyte cannot read: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
