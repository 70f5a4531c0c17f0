//! Response data-loss prevention: payment card numbers (13-19 digits, Luhn-checked), national
//! identifiers (US SSN, UK NINO, IBAN with its mod-97 check) and secrets (private keys, AWS
//! access keys, GitHub/Slack/Stripe/Google tokens, JWTs). Matches are masked with `*` (same
//! length, so Content-Length arithmetic stays simple) or the response is blocked.

use portcullis_config::WafSpec;
use portcullis_core::Deny;
use regex::bytes::Regex;

use crate::WafError;

/// What response DLP decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlpOutcome {
    /// Nothing found (or DLP off): send the body as is.
    Pass,
    /// Something found and masked: send this body instead (same length as the input).
    Masked(Vec<u8>),
    /// Something found and the route blocks: answer with this deny.
    Block(Deny),
}

/// A second check on a regex match (Luhn, mod 97, ...).
type Check = fn(&[u8]) -> bool;

struct Detector {
    kind: &'static str,
    re: Regex,
    check: fn(&[u8]) -> bool,
}

pub(crate) struct Dlp {
    block: bool,
    detectors: Vec<Detector>,
}

fn always(_: &[u8]) -> bool {
    true
}

/// Luhn checksum over the digits of `s`.
pub(crate) fn luhn(s: &[u8]) -> bool {
    let digits: Vec<u32> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban(s: &[u8]) -> bool {
    let s: Vec<u8> = s
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .copied()
        .collect();
    if s.len() < 15 || s.len() > 34 {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn(s: &[u8]) -> bool {
    let d: Vec<u8> = s.iter().filter(|b| b.is_ascii_digit()).copied().collect();
    let area = d.get(..3).unwrap_or_default();
    area != b"000"
        && area != b"666"
        && d.first() != Some(&b'9')
        && d.get(3..5) != Some(b"00")
        && d.get(5..) != Some(b"0000")
}

impl Dlp {
    pub(crate) fn from_spec(spec: &WafSpec) -> Result<Option<Self>, WafError> {
        if spec.dlp_inspect_bytes == 0 {
            return Ok(None);
        }
        let mut list: Vec<(&'static str, &'static str, Check)> = Vec::new();
        if spec.dlp_cards {
            list.push(("card", r"\b(?:\d[ -]?){12,18}\d\b", luhn));
        }
        if spec.dlp_national_ids {
            list.push(("ssn", r"\b\d{3}-\d{2}-\d{4}\b", ssn));
            list.push((
                "nino",
                r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
                always,
            ));
            list.push((
                "iban",
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
                iban,
            ));
        }
        if spec.dlp_secrets {
            list.push(("private_key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----", always));
            list.push(("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", always));
            list.push(("github_token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", always));
            list.push(("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", always));
            list.push(("stripe_key", r"\b[sr]k_live_[A-Za-z0-9]{20,}\b", always));
            list.push(("google_key", r"\bAIza[0-9A-Za-z_-]{35}\b", always));
            list.push((
                "jwt",
                r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
                always,
            ));
        }
        let mut detectors = Vec::new();
        for (kind, pattern, check) in list {
            let re = Regex::new(pattern).map_err(|source| WafError::Pattern {
                pattern: pattern.to_owned(),
                source,
            })?;
            detectors.push(Detector { kind, re, check });
        }
        Ok(Some(Self {
            block: spec.dlp_block,
            detectors,
        }))
    }

    pub(crate) fn inspect(&self, content_type: Option<&str>, body: &[u8]) -> DlpOutcome {
        // Binary media cannot be masked safely; text, JSON, XML and unknown types are scanned.
        if let Some(ct) = content_type {
            let ct = ct.to_ascii_lowercase();
            if ct.starts_with("image/")
                || ct.starts_with("video/")
                || ct.starts_with("audio/")
                || ct.contains("octet-stream")
                || ct.contains("zip")
                || ct.contains("pdf")
            {
                return DlpOutcome::Pass;
            }
        }
        let mut out: Option<Vec<u8>> = None;
        let mut kinds: Vec<&'static str> = Vec::new();
        for d in &self.detectors {
            for m in d.re.find_iter(body) {
                if !(d.check)(m.as_bytes()) {
                    continue;
                }
                if !kinds.contains(&d.kind) {
                    kinds.push(d.kind);
                }
                if self.block {
                    continue;
                }
                let buf = out.get_or_insert_with(|| body.to_vec());
                if let Some(slice) = buf.get_mut(m.range()) {
                    let keep_last = if d.kind == "card" { 4 } else { 0 };
                    let digits = slice.iter().filter(|b| b.is_ascii_alphanumeric()).count();
                    let mut seen = 0;
                    for b in slice.iter_mut() {
                        if b.is_ascii_alphanumeric() {
                            seen += 1;
                            if seen + keep_last <= digits {
                                *b = b'*';
                            }
                        }
                    }
                }
            }
        }
        if kinds.is_empty() {
            return DlpOutcome::Pass;
        }
        if self.block {
            return DlpOutcome::Block(
                Deny::new(
                    502,
                    "dlp_blocked",
                    "response withheld by data-loss prevention",
                )
                .with_log_detail(format!("dlp: {}", kinds.join(","))),
            );
        }
        out.map_or(DlpOutcome::Pass, DlpOutcome::Masked)
    }
}
