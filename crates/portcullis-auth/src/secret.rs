//! Secrets read from a file or the environment, kept out of Debug output and logs.

use portcullis_config::SecretSource;

use crate::error::AuthError;

/// Secret bytes. Debug prints only the length.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

impl Secret {
    pub(crate) fn load(source: &SecretSource) -> Result<Self, AuthError> {
        let mut bytes = match source {
            SecretSource::File(path) => std::fs::read(path).map_err(|e| AuthError::Read {
                path: path.clone(),
                source: e,
            })?,
            SecretSource::Env(name) => std::env::var(name)
                .map_err(|_| AuthError::Env(name.clone()))?
                .into_bytes(),
        };
        // Files written by editors and `echo` end in a newline that is not part of the secret.
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Self(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}
