//! Authorization of an authenticated identity: scopes (all / any), roles (any), claim values
//! and the client certificate. Pure and synchronous.

use portcullis_config::{AuthorizationSpec, ClientCertRule};
use portcullis_core::Identity;

use crate::ClientCertIdentity;

/// `Err` carries a fixed description for the client.
pub(crate) fn authorize(
    spec: &AuthorizationSpec,
    id: &Identity,
    cert: Option<&ClientCertIdentity>,
) -> Result<(), &'static str> {
    let has_scope = |s: &String| id.scopes.iter().any(|x| x == s);
    if !spec.all_scopes.iter().all(has_scope) {
        return Err("the credential lacks a required scope");
    }
    if !spec.any_scope.is_empty() && !spec.any_scope.iter().any(has_scope) {
        return Err("the credential lacks a required scope");
    }
    if !spec.any_role.is_empty() && !spec.any_role.iter().any(|r| id.roles.contains(r)) {
        return Err("the credential lacks a required role");
    }
    for (name, accepted) in &spec.claims {
        let ok = id
            .claims
            .iter()
            .any(|(k, v)| k == name && accepted.contains(v));
        if !ok {
            return Err("the credential lacks a required claim value");
        }
    }
    if let Some(rule) = &spec.client_cert {
        if !cert.is_some_and(|c| cert_matches(rule, c)) {
            return Err("a matching client certificate is required");
        }
    }
    Ok(())
}

fn cert_matches(rule: &ClientCertRule, c: &ClientCertIdentity) -> bool {
    rule.subjects.contains(&c.subject)
        || c.dns_sans
            .iter()
            .any(|s| rule.dns_sans.contains(&s.to_ascii_lowercase()))
        || c.uri_sans.iter().any(|s| rule.uri_sans.contains(s))
        || rule
            .fingerprints_sha256
            .contains(&c.fingerprint_sha256.replace(':', "").to_ascii_lowercase())
}

/// The identity a verified client certificate stands for.
pub(crate) fn cert_identity(c: &ClientCertIdentity) -> Identity {
    let mut claims = Vec::new();
    claims.extend(c.dns_sans.iter().map(|s| ("dns_san".to_owned(), s.clone())));
    claims.extend(c.uri_sans.iter().map(|s| ("uri_san".to_owned(), s.clone())));
    claims.push((
        "fingerprint_sha256".to_owned(),
        c.fingerprint_sha256.clone(),
    ));
    Identity {
        method: "client_cert",
        subject: Some(c.subject.clone()),
        consumer: c
            .uri_sans
            .first()
            .or(c.dns_sans.first())
            .cloned()
            .or_else(|| Some(c.subject.clone())),
        plan: None,
        scopes: Vec::new(),
        roles: Vec::new(),
        claims,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scopes: &[&str]) -> Identity {
        Identity {
            method: "jwt",
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: vec!["admin".into()],
            claims: vec![("tenant".into(), "acme".into())],
            ..Identity::default()
        }
    }

    #[test]
    fn requires_every_listed_scope() {
        let spec = AuthorizationSpec {
            all_scopes: vec!["a".into(), "b".into()],
            ..AuthorizationSpec::default()
        };
        assert!(authorize(&spec, &id(&["a", "b", "c"]), None).is_ok());
        assert!(authorize(&spec, &id(&["a"]), None).is_err());
    }

    #[test]
    fn any_scope_role_and_claim_values() {
        let spec = AuthorizationSpec {
            any_scope: vec!["x".into(), "a".into()],
            any_role: vec!["admin".into(), "ops".into()],
            claims: vec![("tenant".into(), vec!["acme".into(), "beta".into()])],
            ..AuthorizationSpec::default()
        };
        assert!(authorize(&spec, &id(&["a"]), None).is_ok());
        assert!(authorize(&spec, &id(&["b"]), None).is_err());
        let mut other = id(&["a"]);
        other.claims = vec![("tenant".into(), "evil".into())];
        assert!(authorize(&spec, &other, None).is_err());
    }

    #[test]
    fn client_cert_rule_needs_a_matching_certificate() {
        let spec = AuthorizationSpec {
            client_cert: Some(ClientCertRule {
                uri_sans: vec!["spiffe://example/ns/a".into()],
                ..ClientCertRule::default()
            }),
            ..AuthorizationSpec::default()
        };
        let good = ClientCertIdentity {
            subject: "CN=a".into(),
            uri_sans: vec!["spiffe://example/ns/a".into()],
            ..ClientCertIdentity::default()
        };
        let bad = ClientCertIdentity {
            subject: "CN=b".into(),
            ..ClientCertIdentity::default()
        };
        assert!(authorize(&spec, &id(&[]), Some(&good)).is_ok());
        assert!(authorize(&spec, &id(&[]), Some(&bad)).is_err());
        assert!(authorize(&spec, &id(&[]), None).is_err());
    }
}
