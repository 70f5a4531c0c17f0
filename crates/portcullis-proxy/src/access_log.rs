//! One JSON line per request on stdout, written by a dedicated thread so a slow stdout never
//! blocks a request; lines are dropped (and counted) rather than queued without bound.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use prometheus::IntCounter;
use serde::Serialize;

/// Lines queued before new ones are dropped.
const QUEUE: usize = 65_536;

/// One access-log record. Contains no header values besides the user agent and never the
/// query values named for redaction.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 time the request finished.
    pub time: String,
    /// Request id (generated or propagated).
    pub request_id: &'a str,
    /// Client address.
    pub client: Option<IpAddr>,
    /// Method.
    pub method: &'a str,
    /// Host.
    pub host: Option<&'a str>,
    /// Path with redacted query.
    pub path: &'a str,
    /// Response status (0 when none was sent).
    pub status: u16,
    /// Matched route.
    pub route: Option<&'a str>,
    /// Upstream pool.
    pub upstream: Option<&'a str>,
    /// Backend the response came from.
    pub backend: Option<SocketAddr>,
    /// Request body bytes read.
    pub bytes_in: usize,
    /// Response body bytes sent.
    pub bytes_out: usize,
    /// Milliseconds from request head to the end of the response.
    pub latency_ms: f64,
    /// Stable reason of a deny, if the gateway refused the request.
    pub deny_reason: Option<&'a str>,
    /// Detail of the deny (rule ids), never secrets.
    pub deny_detail: Option<&'a str>,
    /// WAF rules that fired (`score=N rules=id@target ...`), in block and detect mode.
    pub waf: Option<&'a str>,
    /// Authenticated subject, if any (never the credential).
    pub subject: Option<&'a str>,
    /// Authenticated consumer (API-key owner), if any.
    pub consumer: Option<&'a str>,
    /// Attempts made upstream.
    pub attempts: usize,
    /// User agent.
    pub user_agent: Option<&'a str>,
    /// The error that ended the request, if any.
    pub error: Option<&'static str>,
}

/// The sending side of the access log.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Vec<u8>>,
    dropped: IntCounter,
}

impl AccessLog {
    /// Starts the writer thread.
    pub fn start(dropped: IntCounter) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(&rx))?;
        Ok(Self { tx, dropped })
    }

    /// Queues one record.
    pub fn write(&self, record: &AccessRecord<'_>) {
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, record).is_err() {
            return;
        }
        line.push(b'\n');
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

fn write_loop(rx: &Receiver<Vec<u8>>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(&line);
        // Batch whatever is already queued, then flush so lines appear promptly.
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(&more);
        }
        let _ = out.flush();
    }
}

/// The path and query as logged: values of the named query parameters replaced by `[REDACTED]`.
#[must_use]
pub fn redact_query(path: &str, query: Option<&str>, redact: &[String]) -> String {
    let Some(query) = query else {
        return path.to_owned();
    };
    let mut out = String::with_capacity(path.len() + query.len() + 1);
    out.push_str(path);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let decoded = percent_decode_lower(name);
        if value.is_some() && redact.contains(&decoded) {
            out.push_str(name);
            out.push_str("=[REDACTED]");
        } else {
            out.push_str(pair);
        }
    }
    out
}

fn percent_decode_lower(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
                continue;
            }
        } else if b == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_named_parameters_whatever_their_encoding_or_case() {
        let names = vec!["token".to_owned(), "api_key".to_owned()];
        assert_eq!(
            redact_query("/a", Some("q=1&Token=abc&%61pi_key=s3cret&x"), &names),
            "/a?q=1&Token=[REDACTED]&%61pi_key=[REDACTED]&x"
        );
        assert_eq!(redact_query("/a", None, &names), "/a");
    }
}
