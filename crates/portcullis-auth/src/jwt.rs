//! JWT verification, in this order, each step cheap before expensive:
//! size cap -> verified-token cache -> compact-JWS shape (three non-empty base64url segments, no
//! padding) -> header (strict JSON object, `alg` a string and not duplicated, no `crit`, `b64`,
//! `jku`, `x5u`, `jwk`, `enc`, `zip`) -> payload (a JSON object, bounded depth) -> issuer from
//! `iss` (exact match with a configured issuer) -> `alg` on the issuer's allow-list -> key
//! selection by `kid` within one algorithm family -> signature -> `exp`, `nbf`, `aud`, required
//! claims. Nothing in a token ever names a URL, a file or a key we then use.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use portcullis_config::{IssuerSpec, JwtSpec};
use portcullis_core::Identity;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::AuthError;
use crate::jwks::{parse_jwks, JwksSource, VerifyKey};
use crate::secret::Secret;

/// Why a token was refused. Each maps to a fixed description: never the token's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtFailure {
    Malformed(&'static str),
    Algorithm,
    UnknownIssuer,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    BadAudience,
    BadClaim(&'static str),
    MissingClaim,
}

impl JwtFailure {
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Malformed(why) | Self::BadClaim(why) => why,
            Self::Algorithm => "the token algorithm is not accepted",
            Self::UnknownIssuer => "the token issuer is not trusted",
            Self::UnknownKey => "no trusted key matches the token",
            Self::BadSignature => "the token signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::BadAudience => "the token is not meant for this service",
            Self::MissingClaim => "the token lacks a required claim",
        }
    }
}

/// The JOSE header members we read. Serde rejects a duplicated `alg` (the parser-differential
/// attack) and a non-string or missing `alg`.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<IgnoredAny>,
    b64: Option<IgnoredAny>,
    jku: Option<IgnoredAny>,
    x5u: Option<IgnoredAny>,
    jwk: Option<IgnoredAny>,
    enc: Option<IgnoredAny>,
    zip: Option<IgnoredAny>,
}

/// A token split and decoded, signature not yet checked.
pub(crate) struct Parsed<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) claims: Map<String, Value>,
    signing_input: &'t str,
    signature_b64: &'t str,
    signature: Vec<u8>,
}

const MAX_KID: usize = 256;

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_segment(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Splits and decodes a compact JWS without trusting anything in it.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, JwtFailure> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtFailure::Malformed("the token is not a compact JWS"));
    };
    if !is_b64url(h) || !is_b64url(p) || !is_b64url(s) {
        return Err(JwtFailure::Malformed(
            "the token is not three base64url segments",
        ));
    }
    let header_bytes =
        decode_segment(h).ok_or(JwtFailure::Malformed("the token header is not base64url"))?;
    let header: JoseHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| JwtFailure::Malformed("the token header is invalid"))?;
    if header.crit.is_some() || header.b64.is_some() {
        return Err(JwtFailure::Malformed(
            "the token uses JWS extensions that are not supported",
        ));
    }
    if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() {
        return Err(JwtFailure::Malformed(
            "the token header names its own key, which is never trusted",
        ));
    }
    if header.enc.is_some() || header.zip.is_some() {
        return Err(JwtFailure::Malformed("encrypted tokens are not accepted"));
    }
    if header.kid.as_ref().is_some_and(|k| k.len() > MAX_KID) {
        return Err(JwtFailure::Malformed("the token key id is too long"));
    }
    let alg = Algorithm::from_str(&header.alg).map_err(|_| JwtFailure::Algorithm)?;
    let payload =
        decode_segment(p).ok_or(JwtFailure::Malformed("the token payload is not base64url"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| JwtFailure::Malformed("the token payload is not a JSON object"))?;
    let signature = decode_segment(s).ok_or(JwtFailure::Malformed(
        "the token signature is not base64url",
    ))?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtFailure::Malformed("the token is not a compact JWS"))?;
    Ok(Parsed {
        alg,
        kid: header.kid,
        claims,
        signing_input,
        signature_b64: s,
        signature,
    })
}

/// Checks a signature with one key. ECDSA signatures must be the fixed-size `r || s` form with
/// neither half zero (CVE-2022-21449 "psychic signatures"; aws-lc rejects them too).
fn signature_ok(p: &Parsed<'_>, key: &DecodingKey) -> bool {
    let half = match p.alg {
        Algorithm::ES256 => Some(32),
        Algorithm::ES384 => Some(48),
        _ => None,
    };
    if let Some(half) = half {
        if p.signature.len() != half * 2 {
            return false;
        }
        let (r, s) = p.signature.split_at(half);
        if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
            return false;
        }
    }
    jsonwebtoken::crypto::verify(p.signature_b64, p.signing_input.as_bytes(), key, p.alg)
        .unwrap_or(false)
}

/// One trusted issuer, compiled.
#[derive(Debug)]
pub(crate) struct IssuerVerifier {
    pub(crate) issuer: String,
    audiences: Vec<String>,
    algs: Vec<Algorithm>,
    leeway: u64,
    required_claims: Vec<String>,
    scopes_claim: String,
    roles_claim: String,
    consumer_claim: String,
    plan_claim: Option<String>,
    static_keys: Vec<Arc<VerifyKey>>,
    pub(crate) jwks: Option<Arc<JwksSource>>,
}

/// Most keys one token is tried against (tokens without `kid` against a multi-key JWKS).
const MAX_CANDIDATES: usize = 4;

fn min_hmac_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

impl IssuerVerifier {
    /// Loads static keys; `jwks` is the shared source for `jwks_url`, if any.
    pub(crate) fn load(
        spec: &IssuerSpec,
        jwks: Option<Arc<JwksSource>>,
    ) -> Result<Self, AuthError> {
        let mut static_keys = Vec::new();
        if let Some(path) = &spec.jwks_file {
            let bytes = std::fs::read(path).map_err(|e| AuthError::Read {
                path: path.clone(),
                source: e,
            })?;
            let keys = parse_jwks(&bytes, true).map_err(|detail| AuthError::Key {
                what: path.display().to_string(),
                detail,
            })?;
            static_keys.extend(keys);
        }
        for pk in &spec.public_keys {
            let bytes = std::fs::read(&pk.file).map_err(|e| AuthError::Read {
                path: pk.file.clone(),
                source: e,
            })?;
            let bad = |detail: String| AuthError::Key {
                what: pk.file.display().to_string(),
                detail,
            };
            let alg = Algorithm::from_str(&pk.algorithm).map_err(|e| bad(e.to_string()))?;
            let key = match alg {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&bytes),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&bytes),
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                    return Err(bad("HMAC keys go under `hmac`".to_owned()))
                }
                _ => DecodingKey::from_rsa_pem(&bytes),
            }
            .map_err(|e| bad(e.to_string()))?;
            static_keys.push(Arc::new(VerifyKey {
                kid: pk.kid.clone(),
                algs: vec![alg],
                key,
                fingerprint: Sha256::digest(&bytes).into(),
            }));
        }
        if let Some(h) = &spec.hmac {
            let secret = Secret::load(&h.secret)?;
            let bytes = if h.base64 {
                let text = secret.expose_str().unwrap_or("").trim();
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(text.trim_end_matches('='))
                    })
                    .map_err(|_| AuthError::Key {
                        what: format!("the hmac secret of issuer {}", spec.issuer),
                        detail: "not base64".to_owned(),
                    })?
            } else {
                secret.expose().to_vec()
            };
            let alg = Algorithm::from_str(&h.algorithm).map_err(|e| AuthError::Key {
                what: format!("the hmac key of issuer {}", spec.issuer),
                detail: e.to_string(),
            })?;
            if bytes.len() < min_hmac_len(alg) {
                return Err(AuthError::WeakSecret {
                    issuer: spec.issuer.clone(),
                    len: bytes.len(),
                    min: min_hmac_len(alg),
                });
            }
            let mut fp = Sha256::new();
            fp.update(b"hmac\0");
            fp.update(&bytes);
            static_keys.push(Arc::new(VerifyKey {
                kid: h.kid.clone(),
                algs: vec![alg],
                key: DecodingKey::from_secret(&bytes),
                fingerprint: fp.finalize().into(),
            }));
        }
        let algs = spec
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::from_str(a).ok())
            .collect();
        Ok(Self {
            issuer: spec.issuer.clone(),
            audiences: spec.audiences.clone(),
            algs,
            leeway: spec.leeway.as_secs(),
            required_claims: spec.required_claims.clone(),
            scopes_claim: spec.scopes_claim.clone(),
            roles_claim: spec.roles_claim.clone(),
            consumer_claim: spec.consumer_claim.clone(),
            plan_claim: spec.plan_claim.clone(),
            static_keys,
            jwks,
        })
    }

    pub(crate) fn fingerprint_into(&self, h: &mut Sha256) {
        for k in &self.static_keys {
            h.update(k.fingerprint);
        }
    }

    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algs.contains(&alg)
    }

    /// Keys to try. A token that names a `kid` is checked only against keys carrying exactly
    /// that id: a key published or configured without an id cannot be the one a token names, and
    /// letting it answer for any id would make `kid` meaningless (and a route holding one HMAC
    /// secret accept tokens minted for a key it never trusted). A `kid` that names a key of
    /// another family is refused outright (key confusion). A token without a `kid` is tried
    /// against every key of its algorithm, a bounded number of them.
    fn candidates(
        &self,
        p: &Parsed<'_>,
        jwks_keys: &[Arc<VerifyKey>],
    ) -> Result<Vec<Arc<VerifyKey>>, JwtFailure> {
        let all = self.static_keys.iter().chain(jwks_keys.iter());
        let fits = |k: &&Arc<VerifyKey>| k.algs.contains(&p.alg);
        let picked: Vec<Arc<VerifyKey>> = match &p.kid {
            Some(kid) => {
                let named: Vec<&Arc<VerifyKey>> = all
                    .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .collect();
                let ok: Vec<Arc<VerifyKey>> = named.iter().copied().filter(fits).cloned().collect();
                if ok.is_empty() && !named.is_empty() {
                    return Err(JwtFailure::Algorithm);
                }
                ok
            }
            None => all.filter(fits).cloned().collect(),
        };
        Ok(picked.into_iter().take(MAX_CANDIDATES).collect())
    }

    /// Verifies the signature with the keys at hand; `Err(UnknownKey)` when none applies.
    pub(crate) fn verify_signature(
        &self,
        p: &Parsed<'_>,
        jwks_keys: &[Arc<VerifyKey>],
    ) -> Result<(), JwtFailure> {
        let keys = self.candidates(p, jwks_keys)?;
        if keys.is_empty() {
            return Err(JwtFailure::UnknownKey);
        }
        if keys.iter().any(|k| signature_ok(p, &k.key)) {
            Ok(())
        } else {
            Err(JwtFailure::BadSignature)
        }
    }

    /// Time and audience checks, after the signature. Returns the token's `exp`, if any.
    pub(crate) fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<Option<u64>, JwtFailure> {
        let now = i128::from(now);
        let leeway = i128::from(self.leeway);
        let exp = numeric(claims, "exp", "the exp claim is not a number")?;
        if let Some(exp) = exp {
            if now > exp + leeway {
                return Err(JwtFailure::Expired);
            }
        }
        if let Some(nbf) = numeric(claims, "nbf", "the nbf claim is not a number")? {
            if now + leeway < nbf {
                return Err(JwtFailure::NotYetValid);
            }
        }
        numeric(claims, "iat", "the iat claim is not a number")?;
        for name in &self.required_claims {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(JwtFailure::MissingClaim);
            }
        }
        let aud_ok = match claims.get("aud") {
            None | Some(Value::Null) => false,
            Some(Value::String(a)) => self.audiences.contains(a),
            Some(Value::Array(list)) => list.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|x| x == a))
            }),
            Some(_) => {
                return Err(JwtFailure::BadClaim(
                    "the aud claim is not a string or list",
                ))
            }
        };
        if !aud_ok {
            return Err(JwtFailure::BadAudience);
        }
        Ok(exp.and_then(|e| u64::try_from(e).ok()))
    }

    /// The identity a verified token stands for.
    pub(crate) fn identity(&self, claims: &Map<String, Value>) -> Identity {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut scopes = words(claims.get(&self.scopes_claim));
        if scopes.is_empty() && self.scopes_claim == "scope" {
            scopes = words(claims.get("scp"));
        }
        let roles = words(lookup_path(claims, &self.roles_claim));
        Identity {
            method: "jwt",
            subject: string("sub"),
            consumer: string(&self.consumer_claim).or_else(|| string("azp")),
            plan: self.plan_claim.as_deref().and_then(string),
            scopes,
            roles,
            claims: flatten_claims(claims),
        }
    }
}

fn numeric(
    claims: &Map<String, Value>,
    name: &str,
    bad: &'static str,
) -> Result<Option<i128>, JwtFailure> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i128::from(i)))
            } else if let Some(u) = n.as_u64() {
                Ok(Some(i128::from(u)))
            } else {
                match n.as_f64() {
                    #[allow(clippy::cast_possible_truncation)]
                    Some(f) if f.is_finite() && f.abs() < 1e18 => Ok(Some(f.floor() as i128)),
                    _ => Err(JwtFailure::BadClaim(bad)),
                }
            }
        }
        Some(_) => Err(JwtFailure::BadClaim(bad)),
    }
}

/// Scopes or roles: a space-separated string or a list of strings.
fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A dotted path such as `realm_access.roles`.
fn lookup_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Most claim entries copied into an identity, and the longest value.
const MAX_CLAIMS: usize = 64;
const MAX_CLAIM_VALUE: usize = 256;

/// Scalar claims (and lists of scalars, one entry per item; objects one level deep as `a.b`)
/// become `Identity::claims`, bounded.
pub(crate) fn flatten_claims(claims: &Map<String, Value>) -> Vec<(String, String)> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) if s.len() <= MAX_CLAIM_VALUE => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let mut out = Vec::new();
    let mut push = |name: String, v: &Value| match v {
        Value::Array(items) => {
            for i in items {
                if let Some(s) = scalar(i) {
                    out.push((name.clone(), s));
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                out.push((name, s));
            }
        }
    };
    for (k, v) in claims {
        if let Value::Object(inner) = v {
            for (k2, v2) in inner {
                push(format!("{k}.{k2}"), v2);
            }
        } else {
            push(k.clone(), v);
        }
    }
    out.truncate(MAX_CLAIMS);
    out
}

/// A route's JWT settings, compiled.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    pub(crate) issuers: Vec<IssuerVerifier>,
    pub(crate) max_token_bytes: usize,
    pub(crate) cache_ttl: u64,
    /// Separates this policy's cache entries from other policies' (a token verified for one
    /// audience must not pass on a route expecting another).
    pub(crate) namespace: [u8; 32],
}

impl JwtVerifier {
    pub(crate) fn load(
        spec: &JwtSpec,
        jwks_for: &dyn Fn(&IssuerSpec) -> Option<Arc<JwksSource>>,
    ) -> Result<Self, AuthError> {
        let mut issuers = Vec::new();
        let mut h = Sha256::new();
        h.update(format!("{spec:?}").as_bytes());
        for i in &spec.issuers {
            let v = IssuerVerifier::load(i, jwks_for(i))?;
            v.fingerprint_into(&mut h);
            issuers.push(v);
        }
        Ok(Self {
            issuers,
            max_token_bytes: spec.max_token_bytes,
            cache_ttl: spec.cache_ttl.as_secs(),
            namespace: h.finalize().into(),
        })
    }

    pub(crate) fn issuer(&self, claims: &Map<String, Value>) -> Option<(usize, &IssuerVerifier)> {
        let iss = claims.get("iss")?.as_str()?;
        self.issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn rejects_duplicate_alg_members() {
        let t = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","alg":"none"}"#),
            b64("{}")
        );
        assert!(matches!(parse(&t), Err(JwtFailure::Malformed(_))));
    }

    #[test]
    fn rejects_alg_none_in_any_case() {
        for alg in ["none", "None", "NONE", ""] {
            let t = format!(
                "{}.{}.c2ln",
                b64(&format!(r#"{{"alg":"{alg}"}}"#)),
                b64("{}")
            );
            assert!(matches!(parse(&t), Err(JwtFailure::Algorithm)), "{alg}");
        }
    }

    #[test]
    fn rejects_padding_and_standard_base64() {
        let good = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        assert!(parse(&format!("{good}.c2ln")).is_ok());
        assert!(parse(&format!("{good}.c2ln=")).is_err());
        assert!(parse(&format!("{good}.c2+n")).is_err());
        assert!(parse(&format!("{good}.")).is_err());
        assert!(parse(&format!("{good}.c2ln.x")).is_err());
    }

    #[test]
    fn rejects_embedded_keys_and_critical_extensions() {
        for h in [
            r#"{"alg":"RS256","jku":"https://attacker.example/jwks.json"}"#,
            r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#,
            r#"{"alg":"RS256","x5u":"file:///etc/passwd"}"#,
            r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
        ] {
            let t = format!("{}.{}.c2ln", b64(h), b64("{}"));
            assert!(matches!(parse(&t), Err(JwtFailure::Malformed(_))), "{h}");
        }
    }

    #[test]
    fn payload_must_be_a_json_object() {
        for p in ["[1,2]", "not json", "\"s\""] {
            let t = format!("{}.{}.c2ln", b64(r#"{"alg":"HS256"}"#), b64(p));
            assert!(parse(&t).is_err(), "{p}");
        }
    }

    #[test]
    fn flattens_scalar_and_list_claims_within_bounds() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"tenant":"acme","groups":["a","b"],"org":{"id":7},"deep":{"x":{"y":1}}}"#,
        )
        .unwrap();
        let flat = flatten_claims(&claims);
        assert!(flat.contains(&("tenant".into(), "acme".into())));
        assert!(flat.contains(&("groups".into(), "b".into())));
        assert!(flat.contains(&("org.id".into(), "7".into())));
        assert!(!flat.iter().any(|(k, _)| k.starts_with("deep")));
    }
}
