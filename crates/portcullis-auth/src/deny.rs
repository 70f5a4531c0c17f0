//! The 401 / 403 / 503 verdicts with RFC 6750 challenges. Descriptions are fixed strings: a
//! deny never echoes a token, a key or a claim.

use portcullis_core::Deny;

/// How a route challenges clients.
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    pub(crate) realm: String,
    /// The route accepts bearer tokens (JWT or introspection).
    pub(crate) bearer: bool,
    /// The route accepts API keys in this header.
    pub(crate) api_key_header: Option<String>,
}

const WWW_AUTHENTICATE: &str = "WWW-Authenticate";

impl Challenge {
    fn add_api_key(&self, mut d: Deny) -> Deny {
        if let Some(h) = &self.api_key_header {
            d = d.with_header(
                WWW_AUTHENTICATE,
                format!("ApiKey realm=\"{}\", header=\"{h}\"", self.realm),
            );
        }
        d
    }

    /// No credential at all: a challenge without an error code (RFC 6750 section 3.1).
    pub(crate) fn missing(&self) -> Deny {
        let mut d = Deny::new(401, "auth_missing", "authentication required");
        if self.bearer {
            d = d.with_header(WWW_AUTHENTICATE, format!("Bearer realm=\"{}\"", self.realm));
        }
        self.add_api_key(d)
    }

    /// A credential that does not authenticate.
    pub(crate) fn invalid(
        &self,
        reason: &'static str,
        description: &'static str,
        bearer: bool,
    ) -> Deny {
        let message = if reason == "auth_expired" {
            "the credential has expired"
        } else {
            "invalid credential"
        };
        let mut d = Deny::new(401, reason, message).with_log_detail(description);
        if bearer {
            d = d.with_header(
                WWW_AUTHENTICATE,
                format!(
                    "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{description}\"",
                    self.realm
                ),
            );
            d
        } else {
            self.add_api_key(d)
        }
    }

    /// Authenticated, not allowed: RFC 6750 `insufficient_scope`, also as the reason code so
    /// the JSON body says the same whatever the credential.
    pub(crate) fn forbidden(
        &self,
        description: &'static str,
        bearer: bool,
        scope: &[String],
    ) -> Deny {
        let mut d = Deny::new(403, "insufficient_scope", "insufficient permissions")
            .with_log_detail(description);
        if bearer {
            let mut value = format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"{description}\"",
                self.realm
            );
            if !scope.is_empty() {
                value.push_str(&format!(", scope=\"{}\"", scope.join(" ")));
            }
            d = d.with_header(WWW_AUTHENTICATE, value);
        }
        d
    }

    /// The identity provider could not be asked: fail closed, but say it is not the client.
    pub(crate) fn unavailable(&self) -> Deny {
        Deny::new(
            503,
            "auth_unavailable",
            "authentication is temporarily unavailable",
        )
        .with_header("Retry-After", "1")
    }
}
