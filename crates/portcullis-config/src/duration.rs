//! Durations written as `500ms`, `2s`, `1m`, `1h` or `1d`.

use std::time::Duration;

/// Parses a duration such as `250ms`, `2s`, `1m30s`, `1h` or `1d`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(portcullis_config::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(portcullis_config::parse_duration("5 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("expected a duration such as 500ms, 2s, 1m or 1h, got an empty string".into());
    }
    let bad = || {
        format!("invalid duration {text:?}: expected a number and a unit (ms, s, m, h, d), e.g. 500ms, 2s, 1m30s")
    };
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h1m"), Ok(Duration::from_secs(3660)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        for bad in ["", "10", "s", "2 sec", "1.5s", "-1s", "3y"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }
}
