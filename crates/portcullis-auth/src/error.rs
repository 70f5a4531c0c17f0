//! Errors of compiling a route's auth settings (never of a request: those are `Deny`s).

use std::path::PathBuf;

/// Why an [`crate::Authenticator`] could not be built from a validated config.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key or secret file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A secret environment variable is unset or not UTF-8.
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Env(String),
    /// A key could not be parsed.
    #[error("invalid key in {what}: {detail}")]
    Key {
        /// Which key (file path or issuer).
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A secret is too short to be safe.
    #[error("the HMAC secret for issuer {issuer} is {len} bytes: at least {min} are required")]
    WeakSecret {
        /// The issuer.
        issuer: String,
        /// Its length.
        len: usize,
        /// The minimum for its algorithm.
        min: usize,
    },
    /// An API-key file is malformed.
    #[error("invalid API-key file {path}: {detail}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A header name in the settings is invalid.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}
