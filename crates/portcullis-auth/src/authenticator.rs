//! The per-route [`Authenticator`] and the process-wide [`AuthShared`] state it draws on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use portcullis_config::{AuthorizationSpec, IssuerSpec, RouteAuth, TokenSource};
use portcullis_core::{Clock, Deny, Identity, RequestView};

use crate::apikey::{ApiKeyFile, ApiKeys};
use crate::cache::{token_key, TtlCache};
use crate::deny::Challenge;
use crate::error::AuthError;
use crate::introspect::{IntrospectFailure, Introspector};
use crate::jwks::JwksSource;
use crate::jwt::{self, JwtFailure, JwtVerifier};
use crate::metrics::AuthMetrics;
use crate::ClientCertIdentity;

/// Default capacity of the verified-token cache.
pub const DEFAULT_TOKEN_CACHE: usize = 100_000;
/// Default capacity of the introspection cache.
pub const DEFAULT_INTROSPECTION_CACHE: usize = 50_000;
/// Longest a request waits for a JWKS fetch triggered by an unknown `kid`.
const UNKNOWN_KID_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct CachedJwt {
    identity: Arc<Identity>,
    issuer: usize,
    generation: u64,
}

#[derive(Debug)]
struct Inner {
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    metrics: Arc<AuthMetrics>,
    jwks: Mutex<HashMap<String, Weak<JwksSource>>>,
    key_files: Mutex<HashMap<PathBuf, Weak<ApiKeyFile>>>,
    tokens: TtlCache<CachedJwt>,
    introspection: TtlCache<Option<Arc<Identity>>>,
}

/// Process-wide auth state, created once and kept across config reloads: JWKS caches keyed by
/// URL, API-key files keyed by path, the verified-token and introspection caches, the HTTP
/// client and the counters. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct AuthShared {
    inner: Arc<Inner>,
}

impl AuthShared {
    /// State with default cache sizes.
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, AuthError> {
        Self::with_capacity(clock, DEFAULT_TOKEN_CACHE, DEFAULT_INTROSPECTION_CACHE)
    }

    /// State with the given cache capacities (entries).
    pub fn with_capacity(
        clock: Arc<dyn Clock>,
        token_cache: usize,
        introspection_cache: usize,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            inner: Arc::new(Inner {
                clock,
                client: crate::fetch::client()?,
                metrics: Arc::new(AuthMetrics::default()),
                jwks: Mutex::new(HashMap::new()),
                key_files: Mutex::new(HashMap::new()),
                tokens: TtlCache::new(token_cache),
                introspection: TtlCache::new(introspection_cache),
            }),
        })
    }

    /// The counters.
    #[must_use]
    pub fn metrics(&self) -> &AuthMetrics {
        &self.inner.metrics
    }

    fn jwks_source(&self, spec: &IssuerSpec) -> Option<Arc<JwksSource>> {
        let url = spec.jwks_url.as_ref()?;
        let mut map = self.inner.jwks.lock();
        if let Some(existing) = map.get(url).and_then(Weak::upgrade) {
            existing.update_settings(spec.jwks);
            return Some(existing);
        }
        let src = Arc::new(JwksSource::new(url.clone(), spec.jwks));
        map.insert(url.clone(), Arc::downgrade(&src));
        Some(src)
    }

    fn key_file(&self, path: &PathBuf) -> Result<Arc<ApiKeyFile>, AuthError> {
        let mut map = self.inner.key_files.lock();
        if let Some(existing) = map.get(path).and_then(Weak::upgrade) {
            existing.reload_if_changed()?;
            return Ok(existing);
        }
        let f = Arc::new(ApiKeyFile::load(path)?);
        map.insert(path.clone(), Arc::downgrade(&f));
        Ok(f)
    }

    /// One pass of background work: fetch every JWKS whose cache lifetime ran out (or that was
    /// never fetched) and re-read changed API-key files. Sources no route uses any more are
    /// forgotten. Call it right after building the routes (to warm the caches) and then
    /// periodically, off the request path; [`AuthShared::run_refresh_loop`] does that.
    pub async fn refresh_due(&self) {
        let sources: Vec<Arc<JwksSource>> = {
            let mut map = self.inner.jwks.lock();
            map.retain(|_, w| w.strong_count() > 0);
            map.values().filter_map(Weak::upgrade).collect()
        };
        let inner = &self.inner;
        let fetches = sources
            .iter()
            .map(|s| s.refresh_if_due(&inner.client, inner.clock.as_ref(), &inner.metrics));
        futures_join_all(fetches).await;
        let files: Vec<Arc<ApiKeyFile>> = {
            let mut map = self.inner.key_files.lock();
            map.retain(|_, w| w.strong_count() > 0);
            map.values().filter_map(Weak::upgrade).collect()
        };
        for f in files {
            if let Err(e) = f.reload_if_changed() {
                AuthMetrics::inc(&inner.metrics.api_key_reload_failures);
                tracing::warn!(error = %e, "API-key file reload failed; keeping the previous keys");
            }
        }
    }

    /// Runs [`AuthShared::refresh_due`] every `tick` forever: spawn it on a background runtime.
    pub async fn run_refresh_loop(self, tick: Duration) {
        loop {
            self.refresh_due().await;
            tokio::time::sleep(tick).await;
        }
    }

    /// Spawns [`AuthShared::run_refresh_loop`] on `handle`.
    pub fn spawn_refresher(
        &self,
        handle: &tokio::runtime::Handle,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        handle.spawn(self.clone().run_refresh_loop(tick))
    }
}

/// Awaits all futures concurrently (a tiny `join_all` without the futures crate).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in &mut pending {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    all_done = false;
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Identity headers sent upstream.
#[derive(Debug, Clone)]
struct IdentityHeaders {
    subject: HeaderName,
    consumer: HeaderName,
    scopes: HeaderName,
    plan: HeaderName,
}

/// A route's authentication and authorization, compiled from its validated settings. Built on
/// every config load; cheap to ask.
#[derive(Debug)]
pub struct Authenticator {
    shared: AuthShared,
    anonymous: bool,
    jwt: Option<JwtVerifier>,
    token_source: TokenSource,
    api_keys: Option<ApiKeys>,
    introspection: Option<Introspector>,
    client_cert: bool,
    authorization: AuthorizationSpec,
    headers: IdentityHeaders,
    strip: Vec<HeaderName>,
    forward_credential: bool,
    challenge: Challenge,
}

/// The identity header names used when a route does not rename them: `x-auth-subject`,
/// `x-auth-consumer`, `x-auth-scopes`, `x-auth-plan`. A client must never be able to set these:
/// the proxy strips them from every inbound request, on routes without auth too (an
/// [`Authenticator`]'s [`Authenticator::strip_headers`] already includes them).
#[must_use]
pub fn default_identity_headers() -> [HeaderName; 4] {
    [
        HeaderName::from_static("x-auth-subject"),
        HeaderName::from_static("x-auth-consumer"),
        HeaderName::from_static("x-auth-scopes"),
        HeaderName::from_static("x-auth-plan"),
    ]
}

fn header_name(name: &str) -> Result<HeaderName, AuthError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| AuthError::HeaderName(name.to_owned()))
}

/// What the request carries.
enum Credential<'a> {
    None,
    Token(Cow<'a, str>),
    Bad(&'static str),
}

impl Authenticator {
    /// Compiles a route's settings: loads keys and secrets, registers JWKS URLs and key files
    /// with `shared` (reusing what an earlier config registered).
    pub fn from_spec(spec: &RouteAuth, shared: &AuthShared) -> Result<Self, AuthError> {
        let jwt = spec
            .jwt
            .as_ref()
            .map(|j| JwtVerifier::load(j, &|i| shared.jwks_source(i)))
            .transpose()?;
        let token_source = spec
            .jwt
            .as_ref()
            .map_or(TokenSource::AuthorizationBearer, |j| j.token_source.clone());
        let api_keys = match &spec.api_keys {
            None => None,
            Some(a) => {
                let file = a.file.as_ref().map(|p| shared.key_file(p)).transpose()?;
                Some(ApiKeys::new(
                    header_name(&a.header)?,
                    a.query.clone(),
                    a.keys.clone(),
                    file,
                ))
            }
        };
        let introspection = spec
            .introspection
            .as_ref()
            .map(Introspector::load)
            .transpose()?;
        let h = &spec.upstream_headers;
        let headers = IdentityHeaders {
            subject: header_name(&h.subject)?,
            consumer: header_name(&h.consumer)?,
            scopes: header_name(&h.scopes)?,
            plan: header_name(&h.plan)?,
        };
        // The default names are stripped too: a route that renames its identity headers must
        // not let a client smuggle the defaults to a backend that still reads them.
        let mut strip = default_identity_headers().to_vec();
        for h in [
            &headers.subject,
            &headers.consumer,
            &headers.scopes,
            &headers.plan,
        ] {
            if !strip.contains(h) {
                strip.push(h.clone());
            }
        }
        let bearer = jwt.is_some() || introspection.is_some();
        if !spec.forward_credential {
            if bearer {
                match &token_source {
                    TokenSource::AuthorizationBearer => strip.push(http::header::AUTHORIZATION),
                    TokenSource::Header(n) => strip.push(header_name(n)?),
                    TokenSource::Cookie(_) | TokenSource::Query(_) => {}
                }
            }
            if let Some(k) = &api_keys {
                if !strip.contains(&k.header) {
                    strip.push(k.header.clone());
                }
            }
        }
        Ok(Self {
            shared: shared.clone(),
            anonymous: spec.anonymous,
            jwt,
            token_source,
            api_keys,
            introspection,
            client_cert: spec.client_cert,
            authorization: spec.authorization.clone(),
            headers,
            strip,
            forward_credential: spec.forward_credential,
            challenge: Challenge {
                realm: spec.realm.clone(),
                bearer,
                api_key_header: spec.api_keys.as_ref().map(|a| a.header.clone()),
            },
        })
    }

    /// Who the client is. `Ok(None)` only on explicitly anonymous routes. A missing credential
    /// is a 401 without an error code; an invalid one a 401 `invalid_token`. The first
    /// credential found decides (API key, then bearer token, then client certificate): a bad
    /// credential never falls through to another method.
    pub async fn authenticate(
        &self,
        req: &RequestView<'_>,
        client_cert: Option<&ClientCertIdentity>,
    ) -> Result<Option<Identity>, Deny> {
        if self.anonymous {
            return Ok(None);
        }
        if let Some(keys) = &self.api_keys {
            match api_key_credential(keys, req) {
                Credential::None => {}
                Credential::Bad(why) => {
                    return Err(self.challenge.invalid("auth_invalid", why, false))
                }
                Credential::Token(k) => {
                    return keys.lookup(&k).map(Some).ok_or_else(|| {
                        self.challenge
                            .invalid("auth_invalid", "the API key is not valid", false)
                    })
                }
            }
        }
        if self.jwt.is_some() || self.introspection.is_some() {
            match token_credential(&self.token_source, req) {
                Credential::None => {}
                Credential::Bad(why) => {
                    return Err(self.challenge.invalid("auth_invalid", why, true))
                }
                Credential::Token(t) => return self.bearer(&t).await.map(Some),
            }
        }
        if self.client_cert {
            if let Some(c) = client_cert {
                return Ok(Some(crate::authz::cert_identity(c)));
            }
        }
        Err(self.challenge.missing())
    }

    async fn bearer(&self, token: &str) -> Result<Identity, Deny> {
        let looks_like_jws = token.bytes().filter(|b| *b == b'.').count() == 2;
        match (&self.jwt, &self.introspection) {
            (Some(v), None) | (Some(v), Some(_))
                if looks_like_jws || self.introspection.is_none() =>
            {
                self.verify_jwt(v, token).await.map_err(|f| {
                    let reason = if f == JwtFailure::Expired {
                        "auth_expired"
                    } else {
                        "auth_invalid"
                    };
                    self.challenge.invalid(reason, f.description(), true)
                })
            }
            (_, Some(i)) => {
                let inner = &self.shared.inner;
                let now = inner.clock.unix().as_secs();
                i.check(
                    token,
                    &inner.client,
                    &inner.introspection,
                    now,
                    &inner.metrics,
                )
                .await
                .map_err(|f| match f {
                    IntrospectFailure::Unavailable => self.challenge.unavailable(),
                    IntrospectFailure::Expired => {
                        self.challenge
                            .invalid("auth_expired", "the token has expired", true)
                    }
                    IntrospectFailure::Inactive => {
                        self.challenge
                            .invalid("auth_invalid", "the token is not active", true)
                    }
                    IntrospectFailure::Audience => self.challenge.invalid(
                        "auth_invalid",
                        "the token is not meant for this service",
                        true,
                    ),
                })
            }
            (Some(_), None) | (None, None) => Err(self.challenge.missing()),
        }
    }

    async fn verify_jwt(&self, v: &JwtVerifier, token: &str) -> Result<Identity, JwtFailure> {
        let inner = &self.shared.inner;
        if token.len() > v.max_token_bytes {
            return Err(JwtFailure::Malformed("the token is too large"));
        }
        let now = inner.clock.unix().as_secs();
        let key = token_key(&v.namespace, token);
        if let Some(hit) = inner.tokens.get(&key, now) {
            let current = v
                .issuers
                .get(hit.issuer)
                .and_then(|i| i.jwks.as_ref())
                .map_or(0, |j| j.generation());
            if current == hit.generation {
                AuthMetrics::inc(&inner.metrics.token_cache_hits);
                return Ok((*hit.identity).clone());
            }
            inner.tokens.remove(&key);
        }
        AuthMetrics::inc(&inner.metrics.token_cache_misses);
        let p = jwt::parse(token)?;
        let (index, issuer) = v.issuer(&p.claims).ok_or(JwtFailure::UnknownIssuer)?;
        if !issuer.allows(p.alg) {
            return Err(JwtFailure::Algorithm);
        }
        let mut generation = issuer.jwks.as_ref().map_or(0, |j| j.generation());
        let keys = issuer
            .jwks
            .as_ref()
            .map(|j| j.keys(inner.clock.now()))
            .unwrap_or_default();
        match (issuer.verify_signature(&p, &keys), &issuer.jwks) {
            (Err(JwtFailure::UnknownKey), Some(source)) => {
                let fetched = source
                    .refresh_for_unknown_kid(
                        &inner.client,
                        &inner.clock,
                        &inner.metrics,
                        UNKNOWN_KID_WAIT,
                    )
                    .await;
                // Throttled, but another request's fetch may just have brought the key.
                if !fetched && source.generation() == generation {
                    return Err(JwtFailure::UnknownKey);
                }
                generation = source.generation();
                issuer.verify_signature(&p, &source.keys(inner.clock.now()))?;
            }
            (result, _) => result?,
        }
        let exp = issuer.check_claims(&p.claims, now)?;
        let identity = issuer.identity(&p.claims);
        let horizon = now.saturating_add(v.cache_ttl);
        let until = exp.map_or(horizon, |e| e.min(horizon));
        inner.tokens.insert(
            key,
            CachedJwt {
                identity: Arc::new(identity.clone()),
                issuer: index,
                generation,
            },
            until,
            now,
        );
        Ok(identity)
    }

    /// Whether `identity` may use the route: otherwise 403 with reason `insufficient_scope`
    /// (and an RFC 6750 `insufficient_scope` challenge for bearer credentials).
    pub fn authorize(
        &self,
        identity: &Identity,
        client_cert: Option<&ClientCertIdentity>,
    ) -> Result<(), Deny> {
        crate::authz::authorize(&self.authorization, identity, client_cert).map_err(|why| {
            let bearer = matches!(identity.method, "jwt" | "introspection");
            self.challenge
                .forbidden(why, bearer, &self.authorization.all_scopes)
        })
    }

    /// [`Authenticator::authenticate`] then [`Authenticator::authorize`].
    pub async fn check(
        &self,
        req: &RequestView<'_>,
        client_cert: Option<&ClientCertIdentity>,
    ) -> Result<Option<Identity>, Deny> {
        let id = self.authenticate(req, client_cert).await?;
        if let Some(id) = &id {
            self.authorize(id, client_cert)?;
        }
        Ok(id)
    }

    /// Identity headers to set on the upstream request. Values that are not valid header
    /// values (control characters) are left out rather than sent mangled.
    #[must_use]
    pub fn upstream_headers(&self, id: &Identity) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(4);
        let mut put = |name: &HeaderName, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    out.push((name.clone(), v));
                }
            }
        };
        put(&self.headers.subject, id.subject.clone());
        put(&self.headers.consumer, id.consumer.clone());
        put(&self.headers.scopes, Some(id.scopes.join(" ")));
        put(&self.headers.plan, id.plan.clone());
        out
    }

    /// Headers to remove from every inbound request before it goes upstream: the route's
    /// identity headers and the default ones ([`default_identity_headers`]) (a client must never
    /// set them itself) and, unless the credential is forwarded, the header that carried it
    /// (`authorization`, the custom token header, the API-key header). Credentials in cookies
    /// or the query are not covered.
    #[must_use]
    pub fn strip_headers(&self) -> &[HeaderName] {
        &self.strip
    }

    /// Whether the original credential goes upstream.
    #[must_use]
    pub fn forward_credential(&self) -> bool {
        self.forward_credential
    }

    /// Whether the route is explicitly anonymous.
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }
}

fn api_key_credential<'a>(keys: &ApiKeys, req: &RequestView<'a>) -> Credential<'a> {
    let mut values = req.headers.get_all(&keys.header).iter();
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => return Credential::Bad("more than one API key was sent"),
        (Some(v), None) => {
            return match v.to_str() {
                Ok(s) if !s.trim().is_empty() => Credential::Token(Cow::Borrowed(s.trim())),
                _ => Credential::Bad("the API key is empty or not text"),
            }
        }
        _ => {}
    }
    if let (Some(name), Some(q)) = (&keys.query, req.query) {
        if let Some(v) = query_param(q, name) {
            return Credential::Token(v);
        }
    }
    Credential::None
}

fn token_credential<'a>(source: &TokenSource, req: &RequestView<'a>) -> Credential<'a> {
    match source {
        TokenSource::AuthorizationBearer => {
            let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
            let (first, second) = (values.next(), values.next());
            if second.is_some() {
                return Credential::Bad("more than one Authorization header was sent");
            }
            let Some(v) = first else {
                return Credential::None;
            };
            let Ok(s) = v.to_str() else {
                return Credential::Bad("the Authorization header is not text");
            };
            let s = s.trim();
            let (scheme, rest) = s.split_once(' ').unwrap_or((s, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Credential::None;
            }
            let token = rest.trim();
            if token.is_empty() {
                Credential::Bad("the bearer token is empty")
            } else {
                Credential::Token(Cow::Borrowed(token))
            }
        }
        TokenSource::Header(name) => match req.headers.get(name.as_str()) {
            None => Credential::None,
            Some(v) => match v.to_str() {
                Ok(s) if !s.trim().is_empty() => Credential::Token(Cow::Borrowed(s.trim())),
                _ => Credential::Bad("the token header is empty or not text"),
            },
        },
        TokenSource::Cookie(name) => {
            for v in req.headers.get_all(http::header::COOKIE) {
                let Ok(s) = v.to_str() else { continue };
                for pair in s.split(';') {
                    if let Some((k, val)) = pair.trim().split_once('=') {
                        if k == name && !val.is_empty() {
                            return Credential::Token(Cow::Borrowed(val.trim_matches('"')));
                        }
                    }
                }
            }
            Credential::None
        }
        TokenSource::Query(name) => req
            .query
            .and_then(|q| query_param(q, name))
            .map_or(Credential::None, Credential::Token),
    }
}

/// The first value of a query parameter, percent-decoded (`+` as space).
fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name && !v.is_empty() {
            if !v.contains(['%', '+']) {
                return Some(Cow::Borrowed(v));
            }
            let bytes = v.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let hex = bytes
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        match hex {
                            Some(x) => {
                                out.push(x);
                                i += 2;
                            }
                            None => out.push(b'%'),
                        }
                    }
                    other => out.push(other),
                }
                i += 1;
            }
            return String::from_utf8(out).ok().map(Cow::Owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_identity_headers_match_the_config_defaults() {
        let d = portcullis_config::IdentityHeaderNames::default();
        let names: Vec<String> = default_identity_headers()
            .iter()
            .map(|h| h.as_str().to_owned())
            .collect();
        assert_eq!(names, [d.subject, d.consumer, d.scopes, d.plan]);
    }

    #[test]
    fn query_params_are_percent_decoded() {
        assert_eq!(
            query_param("a=1&key=a%2Bb+c", "key").as_deref(),
            Some("a+b c")
        );
        assert_eq!(query_param("key=plain", "key").as_deref(), Some("plain"));
        assert_eq!(query_param("other=1", "key"), None);
    }
}
