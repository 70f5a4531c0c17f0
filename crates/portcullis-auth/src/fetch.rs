//! Bounded HTTP reads for JWKS and introspection: no redirects (a redirect is how an attacker
//! steers a fetch), a size cap, a timeout.

use std::time::Duration;

/// Largest JWKS or introspection body read.
pub(crate) const MAX_BODY: usize = 512 * 1024;

pub(crate) fn client() -> Result<reqwest::Client, crate::AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent("portcullis-auth")
        .build()
        .map_err(|e| crate::AuthError::Client(e.to_string()))
}

/// Reads a successful response body up to [`MAX_BODY`] bytes.
pub(crate) async fn body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status().as_u16()));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(format!("body larger than {MAX_BODY} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
