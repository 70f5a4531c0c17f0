//! Authentication and authorization settings of a route (`routes[].auth`). Owned by the auth
//! work: portcullis-auth compiles a [`RouteAuth`] into an `Authenticator` (keys loaded, header
//! names parsed). This module checks everything that can be checked without secrets: names,
//! algorithms, URLs, durations, that key files exist. Relative file paths are resolved against
//! the directory of the config file that names them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::parse_duration;
use crate::error::{Diagnostics, Origin};

/// `routes[].auth` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteAuth {
    /// Explicitly anonymous: no credential is required or read. Cannot be combined with a method.
    pub anonymous: Option<bool>,
    /// Accept JSON Web Tokens.
    pub jwt: Option<RawJwt>,
    /// Accept API keys.
    pub api_keys: Option<RawApiKeys>,
    /// Accept opaque bearer tokens checked with OAuth 2.0 token introspection (RFC 7662).
    pub introspection: Option<RawIntrospection>,
    /// Accept a verified TLS client certificate as the identity (default false).
    pub client_cert: Option<bool>,
    /// Every one of these scopes is required.
    #[serde(default)]
    pub require_scopes: Vec<String>,
    /// At least one of these scopes is required.
    #[serde(default)]
    pub require_any_scope: Vec<String>,
    /// At least one of these roles is required.
    #[serde(default)]
    pub require_any_role: Vec<String>,
    /// Each named claim must have one of the listed values.
    #[serde(default)]
    pub require_claims: BTreeMap<String, Vec<String>>,
    /// A verified client certificate matching one of these is required.
    pub require_client_cert: Option<RawClientCertRule>,
    /// Names of the identity headers sent upstream.
    pub upstream_headers: Option<RawUpstreamHeaders>,
    /// Send the original credential (token, API key) upstream (default false: removed).
    pub forward_credential: Option<bool>,
    /// Realm in `WWW-Authenticate` challenges (default `portcullis`).
    pub realm: Option<String>,
}

/// `auth.jwt` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwt {
    /// Trusted issuers; a token is checked against the one its `iss` names.
    pub issuers: Vec<RawIssuer>,
    /// Read the token from this header instead of `Authorization: Bearer`.
    pub token_header: Option<String>,
    /// Read the token from this cookie instead of `Authorization: Bearer`.
    pub token_cookie: Option<String>,
    /// Read the token from this query parameter instead of `Authorization: Bearer`.
    pub token_query: Option<String>,
    /// Longest token accepted, in bytes (default 8192).
    pub max_token_bytes: Option<i64>,
    /// Longest time a verified token is remembered (default 5m; never past its `exp`).
    pub cache_ttl: Option<String>,
}

/// One trusted issuer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIssuer {
    /// Expected `iss` claim, exactly.
    pub issuer: String,
    /// Accepted `aud` values; the token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// Allowed `alg` values (default RS256 and ES256, plus the HMAC key's algorithm). Never `none`.
    pub algorithms: Option<Vec<String>>,
    /// JWKS endpoint of the issuer (https, or http on loopback only).
    pub jwks_url: Option<String>,
    /// Static JWKS (or single JWK) file.
    pub jwks_file: Option<String>,
    /// Static PEM public keys.
    #[serde(default)]
    pub public_keys: Vec<RawPublicKey>,
    /// A shared HMAC secret.
    pub hmac: Option<RawHmac>,
    /// Clock skew tolerated on `exp` and `nbf` (default 30s, at most 5m).
    pub leeway: Option<String>,
    /// Claims that must be present (default [exp]).
    pub required_claims: Option<Vec<String>>,
    /// Claim holding space-separated scopes (default `scope`; `scp` arrays are read too).
    pub scopes_claim: Option<String>,
    /// Claim holding roles, dotted for nested objects (default `roles`).
    pub roles_claim: Option<String>,
    /// Claim naming the consumer (default `client_id`, then `azp`).
    pub consumer_claim: Option<String>,
    /// Claim naming the consumer's plan.
    pub plan_claim: Option<String>,
    /// JWKS cache settings.
    pub jwks: Option<RawJwksSettings>,
}

/// A PEM public key file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublicKey {
    /// PEM file (SPKI or PKCS#1 for RSA).
    pub file: String,
    /// The algorithm this key verifies, e.g. RS256 or ES256.
    pub algorithm: String,
    /// Key id of this key. A token that carries a `kid` is verified only by the key with that
    /// id; without `kid` here the key verifies only tokens that carry no `kid`.
    pub kid: Option<String>,
}

/// An HMAC secret.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHmac {
    /// File holding the secret (trailing newline removed).
    pub secret_file: Option<String>,
    /// Environment variable holding the secret.
    pub secret_env: Option<String>,
    /// The secret is base64 (standard or URL-safe) encoded (default false).
    pub base64: Option<bool>,
    /// HS256, HS384 or HS512 (default HS256).
    pub algorithm: Option<String>,
    /// Key id of this key. A token that carries a `kid` is verified only by the key with that
    /// id; without `kid` here the key verifies only tokens that carry no `kid`.
    pub kid: Option<String>,
}

/// JWKS cache settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwksSettings {
    /// Re-fetch this often (default 5m).
    pub refresh_interval: Option<String>,
    /// Least time between two fetches, however many unknown kids arrive (default 10s).
    pub min_refresh_interval: Option<String>,
    /// How long the last good keys are used while the endpoint fails (default 24h).
    pub max_stale: Option<String>,
    /// Timeout of one fetch (default 5s).
    pub timeout: Option<String>,
}

/// `auth.api_keys` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKeys {
    /// Header carrying the key (default `X-API-Key`).
    pub header: Option<String>,
    /// Query parameter carrying the key (default: not read from the query).
    pub query: Option<String>,
    /// Keys, by SHA-256 hash (`portcullis hash-key`).
    #[serde(default)]
    pub keys: Vec<RawApiKey>,
    /// JSON file with more keys in the same shape, re-read when it changes.
    pub file: Option<String>,
}

/// One API key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    /// Consumer name.
    pub consumer: String,
    /// `sha256:` followed by 64 hex digits.
    pub hash: String,
    /// Plan or tier.
    pub plan: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `auth.introspection` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntrospection {
    /// Introspection endpoint (https, or http on loopback only).
    pub endpoint: String,
    /// Client id used to authenticate to the endpoint.
    pub client_id: String,
    /// File holding the client secret.
    pub client_secret_file: Option<String>,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// How long an answer is remembered (default 60s; never past the token's `exp`).
    pub cache_ttl: Option<String>,
    /// Timeout of one call (default 2s).
    pub timeout: Option<String>,
    /// Accepted `aud` values (default: not checked).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Expected `iss` (default: not checked).
    pub issuer: Option<String>,
    /// Field naming the consumer (default `client_id`).
    pub consumer_claim: Option<String>,
}

/// `auth.require_client_cert` as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientCertRule {
    /// Accepted subjects, exactly as formatted by the TLS layer.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Accepted DNS subject alternative names.
    #[serde(default)]
    pub dns_sans: Vec<String>,
    /// Accepted URI subject alternative names (e.g. SPIFFE ids).
    #[serde(default)]
    pub uri_sans: Vec<String>,
    /// Accepted SHA-256 fingerprints (hex).
    #[serde(default)]
    pub fingerprints_sha256: Vec<String>,
}

/// `auth.upstream_headers` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamHeaders {
    /// Header carrying the subject (default `X-Auth-Subject`).
    pub subject: Option<String>,
    /// Header carrying the consumer (default `X-Auth-Consumer`).
    pub consumer: Option<String>,
    /// Header carrying the space-separated scopes (default `X-Auth-Scopes`).
    pub scopes: Option<String>,
    /// Header carrying the plan (default `X-Auth-Plan`).
    pub plan: Option<String>,
}

/// Validated auth settings of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// No credential required (no method configured).
    pub anonymous: bool,
    /// JWT settings.
    pub jwt: Option<JwtSpec>,
    /// API-key settings.
    pub api_keys: Option<ApiKeySpec>,
    /// Introspection settings.
    pub introspection: Option<IntrospectionSpec>,
    /// A verified client certificate authenticates.
    pub client_cert: bool,
    /// What an authenticated identity must have.
    pub authorization: AuthorizationSpec,
    /// Identity headers sent upstream.
    pub upstream_headers: IdentityHeaderNames,
    /// Forward the original credential upstream.
    pub forward_credential: bool,
    /// Realm of `WWW-Authenticate` challenges.
    pub realm: String,
}

/// Where a bearer token is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    AuthorizationBearer,
    /// The whole value of this (lowercased) header.
    Header(String),
    /// This cookie.
    Cookie(String),
    /// This query parameter.
    Query(String),
}

/// Validated JWT settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSpec {
    /// Trusted issuers.
    pub issuers: Vec<IssuerSpec>,
    /// Where the token is read from.
    pub token_source: TokenSource,
    /// Longest token accepted.
    pub max_token_bytes: usize,
    /// Longest time a verified token is remembered.
    pub cache_ttl: Duration,
}

/// A source of a secret: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// Read from this file (one trailing newline removed).
    File(PathBuf),
    /// Read from this environment variable.
    Env(String),
}

/// One trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    /// Expected `iss`.
    pub issuer: String,
    /// Accepted audiences (at least one).
    pub audiences: Vec<String>,
    /// Allowed algorithms, by JOSE name (validated: known, never `none`).
    pub algorithms: Vec<String>,
    /// JWKS endpoint.
    pub jwks_url: Option<String>,
    /// Static JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// Static PEM keys.
    pub public_keys: Vec<PublicKeySpec>,
    /// HMAC secret.
    pub hmac: Option<HmacSpec>,
    /// Tolerated clock skew.
    pub leeway: Duration,
    /// Claims that must be present.
    pub required_claims: Vec<String>,
    /// Claim holding scopes.
    pub scopes_claim: String,
    /// Claim (dotted path) holding roles.
    pub roles_claim: String,
    /// Claim naming the consumer.
    pub consumer_claim: String,
    /// Claim naming the plan.
    pub plan_claim: Option<String>,
    /// JWKS cache settings.
    pub jwks: JwksSettings,
}

/// A PEM public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeySpec {
    /// File path.
    pub file: PathBuf,
    /// The one algorithm it verifies.
    pub algorithm: String,
    /// Key id: tokens naming a `kid` are verified only by the key with that id.
    pub kid: Option<String>,
}

/// An HMAC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSpec {
    /// Where the secret is.
    pub secret: SecretSource,
    /// The secret is base64 encoded.
    pub base64: bool,
    /// HS256, HS384 or HS512.
    pub algorithm: String,
    /// Key id: tokens naming a `kid` are verified only by the key with that id.
    pub kid: Option<String>,
}

/// JWKS cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JwksSettings {
    /// Re-fetch period.
    pub refresh_interval: Duration,
    /// Least time between two fetches.
    pub min_refresh_interval: Duration,
    /// How long the last good keys outlive failed refreshes.
    pub max_stale: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(86_400),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Validated API-key settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    /// Lowercased header name.
    pub header: String,
    /// Query parameter, if keys are read from the query.
    pub query: Option<String>,
    /// Inline keys.
    pub keys: Vec<ApiKeyEntry>,
    /// Key file.
    pub file: Option<PathBuf>,
}

/// One API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    /// Consumer name.
    pub consumer: String,
    /// SHA-256 of the key, 32 bytes.
    pub sha256: [u8; 32],
    /// Plan.
    pub plan: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
}

/// Validated introspection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionSpec {
    /// Endpoint URL.
    pub endpoint: String,
    /// Client id.
    pub client_id: String,
    /// Client secret source.
    pub client_secret: SecretSource,
    /// Answer cache lifetime.
    pub cache_ttl: Duration,
    /// Call timeout.
    pub timeout: Duration,
    /// Accepted audiences (empty: unchecked).
    pub audiences: Vec<String>,
    /// Expected issuer.
    pub issuer: Option<String>,
    /// Field naming the consumer.
    pub consumer_claim: String,
}

/// What an identity must have on a route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationSpec {
    /// All of these scopes.
    pub all_scopes: Vec<String>,
    /// At least one of these scopes (empty: no condition).
    pub any_scope: Vec<String>,
    /// At least one of these roles (empty: no condition).
    pub any_role: Vec<String>,
    /// Each claim must have one of its values.
    pub claims: Vec<(String, Vec<String>)>,
    /// A client certificate matching this is required.
    pub client_cert: Option<ClientCertRule>,
}

impl AuthorizationSpec {
    /// True when nothing is required beyond authentication.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.all_scopes.is_empty()
            && self.any_scope.is_empty()
            && self.any_role.is_empty()
            && self.claims.is_empty()
            && self.client_cert.is_none()
    }
}

/// Accepted client certificates: any listed value matching is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertRule {
    /// Subjects.
    pub subjects: Vec<String>,
    /// DNS SANs (lowercased).
    pub dns_sans: Vec<String>,
    /// URI SANs.
    pub uri_sans: Vec<String>,
    /// Fingerprints, lowercase hex without separators.
    pub fingerprints_sha256: Vec<String>,
}

/// Identity headers sent upstream (lowercased names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaderNames {
    /// Subject header.
    pub subject: String,
    /// Consumer header.
    pub consumer: String,
    /// Scopes header.
    pub scopes: String,
    /// Plan header.
    pub plan: String,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        Self {
            subject: "x-auth-subject".to_owned(),
            consumer: "x-auth-consumer".to_owned(),
            scopes: "x-auth-scopes".to_owned(),
            plan: "x-auth-plan".to_owned(),
        }
    }
}

/// JOSE algorithms the gateway verifies.
pub const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

const HMAC_ALGORITHMS: &[&str] = &["HS256", "HS384", "HS512"];

pub(crate) fn validate(raw: &RawRouteAuth, o: &Origin, d: &mut Diagnostics) -> RouteAuth {
    let base = o.file().parent().map(Path::to_path_buf).unwrap_or_default();
    let anonymous = raw.anonymous.unwrap_or(false);
    let client_cert = raw.client_cert.unwrap_or(false);
    let methods = usize::from(raw.jwt.is_some())
        + usize::from(raw.api_keys.is_some())
        + usize::from(raw.introspection.is_some())
        + usize::from(client_cert);
    if anonymous && methods > 0 {
        d.error_at(
            o,
            &["anonymous"],
            "an anonymous route reads no credential: remove `anonymous` or the methods (jwt, api_keys, introspection, client_cert)",
        );
    }
    if !anonymous && methods == 0 {
        d.error(
            o,
            "auth needs at least one method (jwt, api_keys, introspection, client_cert) or `anonymous: true`",
        );
    }
    let jwt = raw.jwt.as_ref().map(|j| jwt(j, &o.at(&["jwt"]), &base, d));
    if let (Some(j), Some(_)) = (&jwt, &raw.introspection) {
        if j.token_source != TokenSource::AuthorizationBearer {
            d.error_at(
                o,
                &["introspection"],
                "introspection reads `Authorization: Bearer`; with jwt set, jwt must read it too (remove token_header/token_cookie/token_query)",
            );
        }
    }
    let api_keys = raw
        .api_keys
        .as_ref()
        .map(|a| api_keys(a, &o.at(&["api_keys"]), &base, d));
    let introspection = raw
        .introspection
        .as_ref()
        .map(|i| introspection(i, &o.at(&["introspection"]), &base, d));

    let mut authorization = AuthorizationSpec {
        all_scopes: non_empty_list(&raw.require_scopes, o, "require_scopes", d),
        any_scope: non_empty_list(&raw.require_any_scope, o, "require_any_scope", d),
        any_role: non_empty_list(&raw.require_any_role, o, "require_any_role", d),
        claims: Vec::new(),
        client_cert: None,
    };
    for (name, values) in &raw.require_claims {
        if name.is_empty() || values.is_empty() {
            d.error_at(
                o,
                &["require_claims", name],
                format!("claim {name:?} needs a name and at least one accepted value"),
            );
        }
        authorization.claims.push((name.clone(), values.clone()));
    }
    if let Some(c) = &raw.require_client_cert {
        let rule = ClientCertRule {
            subjects: c.subjects.clone(),
            dns_sans: c.dns_sans.iter().map(|s| s.to_ascii_lowercase()).collect(),
            uri_sans: c.uri_sans.clone(),
            fingerprints_sha256: c
                .fingerprints_sha256
                .iter()
                .map(|f| f.replace(':', "").to_ascii_lowercase())
                .collect(),
        };
        for (i, f) in rule.fingerprints_sha256.iter().enumerate() {
            if f.len() != 64 || !f.chars().all(|c| c.is_ascii_hexdigit()) {
                d.error_at(
                    o,
                    &["require_client_cert", "fingerprints_sha256", &i.to_string()],
                    format!("invalid fingerprint {f:?}: expected 64 hex digits (colons allowed)"),
                );
            }
        }
        if rule.subjects.is_empty()
            && rule.dns_sans.is_empty()
            && rule.uri_sans.is_empty()
            && rule.fingerprints_sha256.is_empty()
        {
            d.error_at(
                o,
                &["require_client_cert"],
                "list at least one of subjects, dns_sans, uri_sans, fingerprints_sha256",
            );
        }
        authorization.client_cert = Some(rule);
    }
    if anonymous && !authorization.is_empty() {
        d.error_at(
            o,
            &["anonymous"],
            "an anonymous route has no identity to authorize: remove the require_* keys",
        );
    }

    let mut upstream_headers = IdentityHeaderNames::default();
    if let Some(h) = &raw.upstream_headers {
        let ho = o.at(&["upstream_headers"]);
        for (key, value, slot) in [
            ("subject", &h.subject, &mut upstream_headers.subject),
            ("consumer", &h.consumer, &mut upstream_headers.consumer),
            ("scopes", &h.scopes, &mut upstream_headers.scopes),
            ("plan", &h.plan, &mut upstream_headers.plan),
        ] {
            if let Some(v) = value {
                if header_name(v, &ho, key, d) {
                    *slot = v.to_ascii_lowercase();
                }
            }
        }
    }
    let realm = raw.realm.clone().unwrap_or_else(|| "portcullis".to_owned());
    if realm.is_empty()
        || realm.len() > 128
        || realm
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        d.error_at(
            o,
            &["realm"],
            format!("invalid realm {realm:?}: 1-128 characters, no quotes, backslashes or control characters"),
        );
    }
    RouteAuth {
        anonymous,
        jwt,
        api_keys,
        introspection,
        client_cert,
        authorization,
        upstream_headers,
        forward_credential: raw.forward_credential.unwrap_or(false),
        realm,
    }
}

fn non_empty_list(v: &[String], o: &Origin, key: &str, d: &mut Diagnostics) -> Vec<String> {
    for (i, s) in v.iter().enumerate() {
        if s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
        {
            d.error_at(
                o,
                &[key, &i.to_string()],
                format!("invalid value {s:?}: expected a non-empty name without spaces, quotes or backslashes"),
            );
        }
    }
    v.to_vec()
}

fn header_name(v: &str, o: &Origin, key: &str, d: &mut Diagnostics) -> bool {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        });
    if !ok {
        d.error_at(
            o,
            &[key],
            format!("invalid header name {v:?}: expected a token such as X-Auth-Subject"),
        );
    }
    ok
}

fn dur_in(
    v: Option<&str>,
    default: Duration,
    range: (Duration, Duration),
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> Duration {
    let Some(text) = v else { return default };
    match parse_duration(text) {
        Ok(x) if x >= range.0 && x <= range.1 => x,
        Ok(_) => {
            d.error_at(
                o,
                &[key],
                format!(
                    "{text:?} is out of range: expected {:?} to {:?}",
                    range.0, range.1
                ),
            );
            default
        }
        Err(e) => {
            d.error_at(o, &[key], e);
            default
        }
    }
}

fn file_path(text: &str, base: &Path, o: &Origin, key: &[&str], d: &mut Diagnostics) -> PathBuf {
    let p = Path::new(text);
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if text.is_empty() || !full.is_file() {
        d.error_at(
            o,
            key,
            format!(
                "cannot find file {text:?} (looked at {}): relative paths start at the config file's directory",
                full.display()
            ),
        );
    }
    full
}

/// Checks an endpoint URL: https anywhere, http only on loopback (tests, local identity
/// providers), no user info (a classic confusion of which host is contacted).
fn endpoint_url(text: &str, o: &Origin, key: &str, d: &mut Diagnostics) {
    let rest = if let Some(r) = text.strip_prefix("https://") {
        Some((r, true))
    } else {
        text.strip_prefix("http://").map(|r| (r, false))
    };
    let Some((rest, tls)) = rest else {
        d.error_at(
            o,
            &[key],
            format!("invalid URL {text:?}: expected https://host/path"),
        );
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || text.chars().any(char::is_whitespace) {
        d.error_at(
            o,
            &[key],
            format!("invalid URL {text:?}: expected https://host/path without user info or spaces"),
        );
        return;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        d.error_at(
            o,
            &[key],
            format!(
                "{text:?} uses plain http: use https (http is accepted for loopback hosts only)"
            ),
        );
    }
}

fn secret_source(
    file: Option<&String>,
    env: Option<&String>,
    base: &Path,
    o: &Origin,
    keys: (&str, &str),
    d: &mut Diagnostics,
) -> SecretSource {
    match (file, env) {
        (Some(f), None) => SecretSource::File(file_path(f, base, o, &[keys.0], d)),
        (None, Some(e)) => {
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                d.error_at(
                    o,
                    &[keys.1],
                    format!("invalid environment variable name {e:?}"),
                );
            }
            SecretSource::Env(e.clone())
        }
        _ => {
            d.error(
                o,
                format!(
                    "give exactly one of `{}` and `{}` (secrets are never written inline)",
                    keys.0, keys.1
                ),
            );
            SecretSource::Env(String::new())
        }
    }
}

fn jwt(raw: &RawJwt, o: &Origin, base: &Path, d: &mut Diagnostics) -> JwtSpec {
    if raw.issuers.is_empty() {
        d.error_at(o, &["issuers"], "list at least one trusted issuer");
    }
    let mut issuers = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, ri) in raw.issuers.iter().enumerate() {
        let io = o.at(&["issuers", &i.to_string()]);
        if !seen.insert(ri.issuer.clone()) {
            d.error_at(
                &io,
                &["issuer"],
                format!("issuer {:?} is listed twice", ri.issuer),
            );
        }
        issuers.push(issuer(ri, &io, base, d));
    }
    let sources = [
        raw.token_header
            .as_ref()
            .map(|h| ("token_header", TokenSource::Header(h.to_ascii_lowercase()))),
        raw.token_cookie
            .as_ref()
            .map(|c| ("token_cookie", TokenSource::Cookie(c.clone()))),
        raw.token_query
            .as_ref()
            .map(|q| ("token_query", TokenSource::Query(q.clone()))),
    ];
    let given: Vec<_> = sources.into_iter().flatten().collect();
    if given.len() > 1 {
        d.error(
            o,
            "use at most one of token_header, token_cookie and token_query",
        );
    }
    let token_source = match given.into_iter().next() {
        None => TokenSource::AuthorizationBearer,
        Some((key, src)) => {
            let name = match &src {
                TokenSource::Header(n) | TokenSource::Cookie(n) | TokenSource::Query(n) => n,
                TokenSource::AuthorizationBearer => "",
            };
            if key == "token_header" {
                header_name(name, o, key, d);
            } else if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == ';') {
                d.error_at(o, &[key], format!("invalid name {name:?}"));
            }
            src
        }
    };
    let max_token_bytes = match raw.max_token_bytes {
        None => 8192,
        Some(n) if (256..=65_536).contains(&n) => usize::try_from(n).unwrap_or(8192),
        Some(n) => {
            d.error_at(
                o,
                &["max_token_bytes"],
                format!("{n} is out of range: expected 256 to 65536"),
            );
            8192
        }
    };
    JwtSpec {
        issuers,
        token_source,
        max_token_bytes,
        cache_ttl: dur_in(
            raw.cache_ttl.as_deref(),
            Duration::from_secs(300),
            (Duration::ZERO, Duration::from_secs(3600)),
            o,
            "cache_ttl",
            d,
        ),
    }
}

fn issuer(raw: &RawIssuer, o: &Origin, base: &Path, d: &mut Diagnostics) -> IssuerSpec {
    if raw.issuer.is_empty() {
        d.error_at(o, &["issuer"], "issuer must not be empty");
    }
    if raw.audiences.is_empty() || raw.audiences.iter().any(String::is_empty) {
        d.error_at(
            o,
            &["audiences"],
            "list at least one non-empty audience: tokens minted for other services must not pass",
        );
    }
    let hmac = raw.hmac.as_ref().map(|h| {
        let ho = o.at(&["hmac"]);
        let algorithm = h.algorithm.clone().unwrap_or_else(|| "HS256".to_owned());
        if !HMAC_ALGORITHMS.contains(&algorithm.as_str()) {
            d.error_at(
                &ho,
                &["algorithm"],
                format!("{algorithm:?} is not an HMAC algorithm: expected HS256, HS384 or HS512"),
            );
        }
        HmacSpec {
            secret: secret_source(
                h.secret_file.as_ref(),
                h.secret_env.as_ref(),
                base,
                &ho,
                ("secret_file", "secret_env"),
                d,
            ),
            base64: h.base64.unwrap_or(false),
            algorithm,
            kid: h.kid.clone(),
        }
    });
    let mut public_keys = Vec::new();
    for (i, k) in raw.public_keys.iter().enumerate() {
        let ko = o.at(&["public_keys", &i.to_string()]);
        if !JWT_ALGORITHMS.contains(&k.algorithm.as_str())
            || HMAC_ALGORITHMS.contains(&k.algorithm.as_str())
        {
            d.error_at(
                &ko,
                &["algorithm"],
                format!(
                    "{:?} is not an asymmetric algorithm: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                    k.algorithm
                ),
            );
        }
        public_keys.push(PublicKeySpec {
            file: file_path(&k.file, base, &ko, &["file"], d),
            algorithm: k.algorithm.clone(),
            kid: k.kid.clone(),
        });
    }
    let algorithms = match &raw.algorithms {
        Some(list) => {
            if list.is_empty() {
                d.error_at(o, &["algorithms"], "list at least one algorithm");
            }
            for (i, a) in list.iter().enumerate() {
                if !JWT_ALGORITHMS.contains(&a.as_str()) {
                    d.error_at(
                        o,
                        &["algorithms", &i.to_string()],
                        format!(
                            "unsupported algorithm {a:?}: expected one of {} (`none` is never accepted)",
                            JWT_ALGORITHMS.join(", ")
                        ),
                    );
                } else if HMAC_ALGORITHMS.contains(&a.as_str())
                    && hmac.as_ref().is_none_or(|h| h.algorithm != *a)
                {
                    d.error_at(
                        o,
                        &["algorithms", &i.to_string()],
                        format!("{a} needs an `hmac` key with algorithm {a}: HMAC algorithms never use public keys"),
                    );
                }
            }
            if let Some(h) = &hmac {
                if !list.contains(&h.algorithm) {
                    d.error_at(
                        o,
                        &["algorithms"],
                        format!(
                            "the hmac key uses {} but `algorithms` does not allow it",
                            h.algorithm
                        ),
                    );
                }
            }
            list.clone()
        }
        None => {
            let mut list = vec!["RS256".to_owned(), "ES256".to_owned()];
            list.extend(hmac.as_ref().map(|h| h.algorithm.clone()));
            list
        }
    };
    if let Some(url) = &raw.jwks_url {
        endpoint_url(url, o, "jwks_url", d);
    }
    let jwks_file = raw
        .jwks_file
        .as_ref()
        .map(|f| file_path(f, base, o, &["jwks_file"], d));
    if raw.jwks_url.is_none() && jwks_file.is_none() && public_keys.is_empty() && hmac.is_none() {
        d.error(
            o,
            "an issuer needs keys: jwks_url, jwks_file, public_keys or hmac",
        );
    }
    let def = JwksSettings::default();
    let jwks = match &raw.jwks {
        None => def,
        Some(j) => {
            let jo = o.at(&["jwks"]);
            let s = JwksSettings {
                refresh_interval: dur_in(
                    j.refresh_interval.as_deref(),
                    def.refresh_interval,
                    (Duration::from_secs(10), Duration::from_secs(86_400)),
                    &jo,
                    "refresh_interval",
                    d,
                ),
                min_refresh_interval: dur_in(
                    j.min_refresh_interval.as_deref(),
                    def.min_refresh_interval,
                    (Duration::from_secs(1), Duration::from_secs(3600)),
                    &jo,
                    "min_refresh_interval",
                    d,
                ),
                max_stale: dur_in(
                    j.max_stale.as_deref(),
                    def.max_stale,
                    (Duration::ZERO, Duration::from_secs(7 * 86_400)),
                    &jo,
                    "max_stale",
                    d,
                ),
                timeout: dur_in(
                    j.timeout.as_deref(),
                    def.timeout,
                    (Duration::from_millis(100), Duration::from_secs(60)),
                    &jo,
                    "timeout",
                    d,
                ),
            };
            if raw.jwks_url.is_none() {
                d.error_at(o, &["jwks"], "`jwks` settings need a `jwks_url`");
            }
            s
        }
    };
    let required_claims = raw
        .required_claims
        .clone()
        .unwrap_or_else(|| vec!["exp".to_owned()]);
    IssuerSpec {
        issuer: raw.issuer.clone(),
        audiences: raw.audiences.clone(),
        algorithms,
        jwks_url: raw.jwks_url.clone(),
        jwks_file,
        public_keys,
        hmac,
        leeway: dur_in(
            raw.leeway.as_deref(),
            Duration::from_secs(30),
            (Duration::ZERO, Duration::from_secs(300)),
            o,
            "leeway",
            d,
        ),
        required_claims,
        scopes_claim: raw
            .scopes_claim
            .clone()
            .unwrap_or_else(|| "scope".to_owned()),
        roles_claim: raw
            .roles_claim
            .clone()
            .unwrap_or_else(|| "roles".to_owned()),
        consumer_claim: raw
            .consumer_claim
            .clone()
            .unwrap_or_else(|| "client_id".to_owned()),
        plan_claim: raw.plan_claim.clone(),
        jwks,
    }
}

/// Parses `sha256:<64 hex>` (or bare hex) into bytes.
#[must_use]
pub fn parse_key_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn api_keys(raw: &RawApiKeys, o: &Origin, base: &Path, d: &mut Diagnostics) -> ApiKeySpec {
    let header = raw.header.clone().unwrap_or_else(|| "X-API-Key".to_owned());
    header_name(&header, o, "header", d);
    let mut keys = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let ko = o.at(&["keys", &i.to_string()]);
        if k.consumer.is_empty() {
            d.error_at(&ko, &["consumer"], "consumer must not be empty");
        }
        match parse_key_hash(&k.hash) {
            Some(sha256) => {
                if !seen.insert(sha256) {
                    d.error_at(&ko, &["hash"], "this key hash is listed twice");
                }
                keys.push(ApiKeyEntry {
                    consumer: k.consumer.clone(),
                    sha256,
                    plan: k.plan.clone(),
                    scopes: k.scopes.clone(),
                });
            }
            None => d.error_at(
                &ko,
                &["hash"],
                "invalid key hash: expected sha256: followed by 64 hex digits (run `portcullis hash-key`); keys are never written in clear",
            ),
        }
    }
    let file = raw
        .file
        .as_ref()
        .map(|f| file_path(f, base, o, &["file"], d));
    if keys.is_empty() && file.is_none() {
        d.error(o, "api_keys needs `keys` or a `file`");
    }
    ApiKeySpec {
        header: header.to_ascii_lowercase(),
        query: raw.query.clone(),
        keys,
        file,
    }
}

fn introspection(
    raw: &RawIntrospection,
    o: &Origin,
    base: &Path,
    d: &mut Diagnostics,
) -> IntrospectionSpec {
    endpoint_url(&raw.endpoint, o, "endpoint", d);
    if raw.client_id.is_empty() {
        d.error_at(o, &["client_id"], "client_id must not be empty");
    }
    IntrospectionSpec {
        endpoint: raw.endpoint.clone(),
        client_id: raw.client_id.clone(),
        client_secret: secret_source(
            raw.client_secret_file.as_ref(),
            raw.client_secret_env.as_ref(),
            base,
            o,
            ("client_secret_file", "client_secret_env"),
            d,
        ),
        cache_ttl: dur_in(
            raw.cache_ttl.as_deref(),
            Duration::from_secs(60),
            (Duration::ZERO, Duration::from_secs(3600)),
            o,
            "cache_ttl",
            d,
        ),
        timeout: dur_in(
            raw.timeout.as_deref(),
            Duration::from_secs(2),
            (Duration::from_millis(50), Duration::from_secs(30)),
            o,
            "timeout",
            d,
        ),
        audiences: raw.audiences.clone(),
        issuer: raw.issuer.clone(),
        consumer_claim: raw
            .consumer_claim
            .clone()
            .unwrap_or_else(|| "client_id".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(auth: &str) -> Result<crate::Config, Vec<String>> {
        let text = format!(
            r#"listeners: [{{ name: web, address: "127.0.0.1:8080" }}]
upstreams: {{ app: {{ backends: [{{ address: "127.0.0.1:9001" }}] }} }}
routes:
  - name: r
    upstream: app
    auth: {auth}
"#
        );
        crate::parse_str("t.yaml", &text)
            .map_err(|e| e.diagnostics.iter().map(ToString::to_string).collect())
    }

    fn errors(auth: &str) -> Vec<String> {
        match cfg(auth) {
            Ok(_) => vec![],
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_jwks_url_issuer_with_defaults() {
        let c = cfg(r#"{ jwt: { issuers: [{ issuer: "https://id.example", audiences: [api], jwks_url: "https://id.example/jwks" }] }, require_scopes: [orders:read] }"#).unwrap();
        let auth = c.routes[0].auth.as_ref().unwrap();
        let jwt = auth.jwt.as_ref().unwrap();
        assert_eq!(jwt.token_source, TokenSource::AuthorizationBearer);
        assert_eq!(jwt.issuers[0].algorithms, vec!["RS256", "ES256"]);
        assert_eq!(jwt.issuers[0].required_claims, vec!["exp"]);
        assert_eq!(jwt.issuers[0].leeway, Duration::from_secs(30));
        assert_eq!(auth.authorization.all_scopes, vec!["orders:read"]);
        assert_eq!(auth.upstream_headers.subject, "x-auth-subject");
        assert!(!auth.forward_credential);
    }

    #[test]
    fn rejects_alg_none_and_plain_http_jwks_with_paths() {
        let errs = errors(
            r#"{ jwt: { issuers: [{ issuer: "https://id.example", audiences: [api], algorithms: [none, RS256], jwks_url: "http://id.example/jwks" }] } }"#,
        );
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs.iter().any(|e| e.contains(
                "routes[0].auth.jwt.issuers[0].algorithms[0]: unsupported algorithm \"none\""
            )),
            "{errs:#?}"
        );
        assert!(errs.iter().any(|e| e.contains("routes[0].auth.jwt.issuers[0].jwks_url: \"http://id.example/jwks\" uses plain http")), "{errs:#?}");
    }

    #[test]
    fn rejects_hmac_algorithm_without_hmac_key() {
        let errs = errors(
            r#"{ jwt: { issuers: [{ issuer: i, audiences: [a], algorithms: [HS256], jwks_url: "https://i/jwks" }] } }"#,
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("algorithms[0]: HS256 needs an `hmac` key")),
            "{errs:#?}"
        );
    }

    #[test]
    fn rejects_inline_or_doubled_secrets_and_missing_files() {
        let errs = errors(
            r#"{ jwt: { issuers: [{ issuer: i, audiences: [a], hmac: { secret_file: /nonexistent/secret, secret_env: S } }] } }"#,
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("issuers[0].hmac: give exactly one of")),
            "{errs:#?}"
        );
        let errs = errors(
            r#"{ jwt: { issuers: [{ issuer: i, audiences: [a], hmac: { secret: hunter2 } }] } }"#,
        );
        assert!(
            errs.iter().any(|e| e.contains("unknown field `secret`")),
            "{errs:#?}"
        );
        let errs = errors(
            r#"{ jwt: { issuers: [{ issuer: i, audiences: [a], hmac: { secret_file: /nonexistent/secret } }] } }"#,
        );
        assert!(
            errs.iter().any(|e| e.contains("cannot find file")),
            "{errs:#?}"
        );
    }

    #[test]
    fn rejects_missing_audience_and_keys() {
        let errs = errors(r#"{ jwt: { issuers: [{ issuer: i, audiences: [] }] } }"#);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs
            .iter()
            .any(|e| e.contains("audiences: list at least one")));
        assert!(errs.iter().any(|e| e.contains("an issuer needs keys")));
    }

    #[test]
    fn rejects_anonymous_mixed_with_methods_and_routes_without_method() {
        let errs = errors(
            r#"{ anonymous: true, api_keys: { keys: [{ consumer: c, hash: "sha256:0000000000000000000000000000000000000000000000000000000000000000" }] } }"#,
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("auth.anonymous: an anonymous route")),
            "{errs:#?}"
        );
        let errs = errors("{ require_scopes: [a] }");
        assert!(
            errs.iter()
                .any(|e| e.contains("auth needs at least one method")),
            "{errs:#?}"
        );
        assert!(cfg("{ anonymous: true }").is_ok());
    }

    #[test]
    fn rejects_clear_text_api_keys() {
        let errs = errors(r#"{ api_keys: { keys: [{ consumer: acme, hash: "my-secret-key" }] } }"#);
        assert!(
            errs.iter()
                .any(|e| e.contains("api_keys.keys[0].hash: invalid key hash")),
            "{errs:#?}"
        );
        assert!(!errs.iter().any(|e| e.contains("my-secret-key")));
    }

    #[test]
    fn api_keys_default_to_x_api_key_header() {
        let c = cfg(r#"{ api_keys: { keys: [{ consumer: acme, plan: pro, scopes: [read], hash: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" }] } }"#).unwrap();
        let k = c.routes[0]
            .auth
            .as_ref()
            .unwrap()
            .api_keys
            .as_ref()
            .unwrap();
        assert_eq!(k.header, "x-api-key");
        assert_eq!(k.keys[0].sha256[0], 0x2c);
        assert_eq!(k.keys[0].plan.as_deref(), Some("pro"));
    }

    #[test]
    fn introspection_needs_a_secret_source_and_https() {
        let errs = errors(
            r#"{ introspection: { endpoint: "http://idp.example/introspect", client_id: gw } }"#,
        );
        assert!(
            errs.iter().any(|e| e.contains("uses plain http")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e
                    .contains("give exactly one of `client_secret_file` and `client_secret_env`")),
            "{errs:#?}"
        );
        assert!(cfg(r#"{ introspection: { endpoint: "http://127.0.0.1:9/introspect", client_id: gw, client_secret_env: GW_SECRET } }"#).is_ok());
    }

    #[test]
    fn rejects_two_token_sources_and_bad_header_names() {
        let errs = errors(
            r#"{ jwt: { token_header: "X Bad", token_cookie: c, issuers: [{ issuer: i, audiences: [a], jwks_url: "https://i/j" }] }, upstream_headers: { subject: "bad header" } }"#,
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("use at most one of token_header")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("upstream_headers.subject: invalid header name")),
            "{errs:#?}"
        );
    }

    #[test]
    fn parses_key_hashes_with_or_without_prefix() {
        let h = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
        assert_eq!(parse_key_hash(h), parse_key_hash(&format!("sha256:{h}")));
        assert!(parse_key_hash("sha256:zz").is_none());
    }
}
