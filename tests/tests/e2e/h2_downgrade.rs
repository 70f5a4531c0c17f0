//! HTTP/2 downgrade: a client speaks HTTP/2 (h2c, prior knowledge) and the gateway forwards
//! HTTP/1.1. Fields HTTP/2 carries as length-prefixed strings (a CRLF in a value, a space in
//! `:method`, a `transfer-encoding` header, a `content-length` the DATA frames disagree with)
//! would become request smuggling if copied into HTTP/1 text. Each is sent here as raw frames,
//! because a conforming client library (the `h2` crate, `http`'s types) refuses to build them,
//! and for each the gateway must refuse the stream, or the backend must receive exactly one
//! well-formed HTTP/1.1 request with nothing injected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::Gateway;

/// What the recording backend saw on one connection.
#[derive(Debug, Default)]
struct Conn {
    bytes: Vec<u8>,
    closed: bool,
}

/// An HTTP/1.1 backend that keeps every byte it receives, per connection, and answers each
/// complete, well-formed request with `200 ok`. It stops answering on a connection at the first
/// byte it cannot parse strictly.
struct Recorder {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<Arc<Mutex<Conn>>>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<Arc<Mutex<Conn>>>>> = Arc::default();
        let all = Arc::clone(&conns);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let conn = Arc::new(Mutex::new(Conn::default()));
                all.lock().push(Arc::clone(&conn));
                tokio::spawn(async move {
                    let mut answered = 0usize;
                    let mut chunk = [0u8; 8192];
                    loop {
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let complete = {
                            let mut c = conn.lock();
                            c.bytes.extend_from_slice(&chunk[..n]);
                            parse(&c.bytes).requests.len()
                        };
                        while answered < complete {
                            answered += 1;
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend: recorder\r\n\r\nok";
                            if sock.write_all(answer).await.is_err() {
                                break;
                            }
                        }
                    }
                    conn.lock().closed = true;
                });
            }
        });
        Recorder { addr, conns }
    }

    /// Every connection parsed: requests, and how each connection's bytes end.
    fn parsed(&self) -> Vec<(Parsed, bool)> {
        self.conns
            .lock()
            .iter()
            .map(|c| {
                let c = c.lock();
                (parse(&c.bytes), c.closed)
            })
            .collect()
    }

    fn raw(&self) -> Vec<u8> {
        self.conns
            .lock()
            .iter()
            .flat_map(|c| c.lock().bytes.clone())
            .collect()
    }

    fn requests(&self) -> Vec<Request> {
        self.parsed()
            .into_iter()
            .flat_map(|(p, _)| p.requests)
            .collect()
    }
}

/// One HTTP/1.1 request, as parsed strictly.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How a connection's bytes end after its complete requests.
#[derive(Debug, PartialEq)]
enum Tail {
    /// Nothing left.
    Empty,
    /// The start of a request that has not fully arrived (yet).
    Incomplete,
    /// Bytes no strict HTTP/1.1 parser accepts.
    Malformed(String),
}

#[derive(Debug)]
struct Parsed {
    requests: Vec<Request>,
    tail: Tail,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses back-to-back HTTP/1.1 requests as a strict backend would: single spaces in the request
/// line, token header names, no control characters in values, one unambiguous framing.
fn parse(mut bytes: &[u8]) -> Parsed {
    let mut requests = Vec::new();
    let tail = loop {
        if bytes.is_empty() {
            break Tail::Empty;
        }
        match parse_one(bytes) {
            Ok(Some((req, used))) => {
                requests.push(req);
                bytes = &bytes[used..];
            }
            Ok(None) => break Tail::Incomplete,
            Err(e) => break Tail::Malformed(e),
        }
    };
    Parsed { requests, tail }
}

fn parse_one(bytes: &[u8]) -> Result<Option<(Request, usize)>, String> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "head is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(format!("request line {line:?}"));
    };
    if method.is_empty()
        || !method.bytes().all(is_tchar)
        || !target.starts_with('/')
        || !target.bytes().all(|b| (0x21..0x7f).contains(&b))
        || version != "HTTP/1.1"
    {
        return Err(format!("request line {line:?}"));
    }
    let mut headers = Vec::new();
    for h in lines {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("header line {h:?}"));
        };
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!("header name {name:?}"));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!("header value {value:?}"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let req = |body: Vec<u8>| Request {
        line: line.to_owned(),
        headers: headers.clone(),
        body,
    };
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let codings: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .map(|(_, v)| v.as_str())
        .collect();
    if headers.iter().filter(|(n, _)| n == "host").count() != 1 {
        return Err("not exactly one Host".to_owned());
    }
    let body_start = end + 4;
    match (&lengths[..], &codings[..]) {
        ([], []) => Ok(Some((req(Vec::new()), body_start))),
        ([cl], []) => {
            if cl.is_empty() || !cl.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("content-length {cl:?}"));
            }
            let n: usize = cl.parse().map_err(|_| format!("content-length {cl:?}"))?;
            Ok((bytes.len() >= body_start + n).then(|| {
                (
                    req(bytes[body_start..body_start + n].to_vec()),
                    body_start + n,
                )
            }))
        }
        ([], ["chunked"]) => {
            let mut at = body_start;
            let mut body = Vec::new();
            loop {
                let Some(eol) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                let size = std::str::from_utf8(&bytes[at..at + eol])
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .ok_or_else(|| "chunk size".to_owned())?;
                at += eol + 2;
                if size == 0 {
                    // No trailers expected: the last chunk is followed by the empty line.
                    return match bytes.get(at..at + 2) {
                        None => Ok(None),
                        Some(b"\r\n") => Ok(Some((req(body), at + 2))),
                        Some(_) => Err("trailers after the last chunk".to_owned()),
                    };
                }
                if bytes.len() < at + size + 2 {
                    return Ok(None);
                }
                body.extend_from_slice(&bytes[at..at + size]);
                if &bytes[at + size..at + size + 2] != b"\r\n" {
                    return Err("chunk not followed by CRLF".to_owned());
                }
                at += size + 2;
            }
        }
        _ => Err(format!(
            "framing: content-length {lengths:?}, transfer-encoding {codings:?}"
        )),
    }
}

// --- A raw HTTP/2 client: just enough framing and HPACK to send what libraries refuse to. ---

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix, the prefix's other bits set to `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | u8::try_from(value).unwrap());
        return;
    }
    out.push(first | u8::try_from(max).unwrap());
    value -= max;
    while value >= 128 {
        out.push(u8::try_from(value % 128).unwrap() | 0x80);
        value /= 128;
    }
    out.push(u8::try_from(value).unwrap());
}

/// A header block of literal fields without indexing, with literal names and raw (not Huffman)
/// strings, so that any byte goes through exactly as written (RFC 7541 6.2.2).
fn header_block(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 0, 7, name.len());
        out.extend_from_slice(name);
        hpack_int(&mut out, 0, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

fn read_int(block: &[u8], at: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut value = usize::from(*block.get(*at)?) & max;
    *at += 1;
    if value < max {
        return Some(value);
    }
    let mut shift = 0;
    loop {
        let b = *block.get(*at)?;
        *at += 1;
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
}

/// Huffman-coded digits (RFC 7541 appendix B: `0`-`2` have 5-bit codes 0-2, `3`-`9` 6-bit codes
/// 0x19-0x1f), which is all a `:status` value holds.
fn huffman_digits(bytes: &[u8], digits: usize) -> Option<String> {
    let bit = |i: usize| bytes.get(i / 8).map(|b| (b >> (7 - i % 8)) & 1);
    let mut i = 0;
    let mut out = String::new();
    for _ in 0..digits {
        let mut code = 0u8;
        for _ in 0..5 {
            code = code << 1 | bit(i)?;
            i += 1;
        }
        if code > 2 {
            code = code << 1 | bit(i)?;
            i += 1;
            if !(0x19..=0x1f).contains(&code) {
                return None;
            }
            code = code - 0x19 + 3;
        }
        out.push(char::from(b'0' + code));
    }
    Some(out)
}

/// The `:status` of a response header block: the first field of a fresh connection's first
/// response, so never a dynamic-table reference.
fn status_of(block: &[u8]) -> Option<u16> {
    const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let mut at = 0;
    // Skip dynamic table size updates.
    while block.get(at)? & 0xe0 == 0x20 {
        read_int(block, &mut at, 5)?;
    }
    let first = *block.get(at)?;
    if first & 0x80 != 0 {
        let index = read_int(block, &mut at, 7)?;
        return STATIC.get(index.checked_sub(8)?).copied();
    }
    let index = if first & 0x40 != 0 {
        read_int(block, &mut at, 6)?
    } else {
        read_int(block, &mut at, 4)?
    };
    if !(8..=14).contains(&index) {
        return None;
    }
    let huffman = block.get(at)? & 0x80 != 0;
    let len = read_int(block, &mut at, 7)?;
    let raw = block.get(at..at + len)?;
    let text = if huffman {
        huffman_digits(raw, 3)?
    } else {
        String::from_utf8(raw.to_vec()).ok()?
    };
    text.parse().ok()
}

/// How the gateway answered one stream.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Status(u16),
    Reset(u32),
    GoAway(u32),
    Closed,
}

impl Answer {
    fn refused(&self) -> bool {
        match self {
            Answer::Status(s) => (400..500).contains(s),
            Answer::Reset(_) | Answer::GoAway(_) | Answer::Closed => true,
        }
    }
}

/// Opens an h2c connection, sends one request on stream 1 (the header block, then `data` in one
/// DATA frame when given) and waits for its response head or its refusal.
async fn exchange(addr: SocketAddr, fields: &[(Vec<u8>, Vec<u8>)], data: Option<&[u8]>) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let flags = END_HEADERS | if data.is_none() { END_STREAM } else { 0 };
    out.extend(frame(HEADERS, flags, 1, &header_block(fields)));
    if let Some(d) = data {
        out.extend(frame(DATA, END_STREAM, 1, d));
    }
    // The gateway may refuse and close before reading everything: a failed write is an answer.
    if s.write_all(&out).await.is_err() {
        return Answer::Closed;
    }
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            while buf.len() >= 9 {
                let len =
                    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                let (kind, flags) = (buf[3], buf[4]);
                let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
                let payload = buf[9..9 + len].to_vec();
                buf.drain(..9 + len);
                match kind {
                    SETTINGS if flags & ACK == 0 => {
                        let _ = s.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                    }
                    PING if flags & ACK == 0 => {
                        let _ = s.write_all(&frame(PING, ACK, 0, &payload)).await;
                    }
                    HEADERS if stream == 1 => {
                        let mut block = &payload[..];
                        if flags & PADDED != 0 {
                            let pad = usize::from(block[0]);
                            block = &block[1..block.len() - pad];
                        }
                        if flags & PRIORITY != 0 {
                            block = &block[5..];
                        }
                        let status = status_of(block)
                            .unwrap_or_else(|| panic!("cannot read :status from {block:02x?}"));
                        return Answer::Status(status);
                    }
                    RST_STREAM if stream == 1 => {
                        return Answer::Reset(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                    }
                    GOAWAY => {
                        let last =
                            u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                        let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                        // A graceful GOAWAY that still covers stream 1: its answer follows.
                        if code != 0 || last < 1 {
                            return Answer::GoAway(code);
                        }
                    }
                    _ => {}
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return Answer::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the gateway neither answered nor refused within 5 s")
}

/// What a case must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Refused: stream reset, GOAWAY, closed, or 4xx; nothing complete reaches the backend.
    Refused,
    /// Either refused, or forwarded as one well-formed request.
    Either,
    /// Forwarded as one well-formed request (controls: prove the test sees what passes).
    Forwarded,
}

struct Case {
    what: &'static str,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    data: Option<&'static [u8]>,
    expect: Expect,
}

/// A GET for `/ok` with `x-case: N`, `edits` replacing pseudo-headers of the same name and
/// adding every other field (regular fields after the pseudo-headers, as RFC 9113 8.3 wants).
fn fields(n: usize, edits: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut f: Vec<(Vec<u8>, Vec<u8>)> = [
        (&b":method"[..], &b"GET"[..]),
        (b":scheme", b"http"),
        (b":path", b"/ok"),
        (b":authority", b"gw.test"),
    ]
    .iter()
    .map(|(n, v)| (n.to_vec(), v.to_vec()))
    .collect();
    for (name, value) in edits {
        match f.iter_mut().find(|(n, _)| n == name && n.starts_with(b":")) {
            Some(slot) => slot.1 = value.to_vec(),
            None => f.push((name.to_vec(), value.to_vec())),
        }
    }
    f.push((b"x-case".to_vec(), n.to_string().into_bytes()));
    f
}

fn cases() -> Vec<Case> {
    use Expect::{Either, Forwarded, Refused};
    // Every injected byte sequence carries the word `smuggled`: it must never reach the backend.
    #[allow(clippy::type_complexity)]
    let table: Vec<(
        &'static str,
        Vec<(&[u8], &[u8])>,
        Option<&'static [u8]>,
        Expect,
    )> = vec![
        ("plain GET", vec![], None, Forwarded),
        (
            "POST with a matching content-length",
            vec![(b":method", b"POST"), (b"content-length", b"5")],
            Some(b"hello"),
            Forwarded,
        ),
        (
            "POST without content-length",
            vec![(b":method", b"POST")],
            Some(b"hello"),
            Forwarded,
        ),
        // Pseudo-header injection.
        (
            ":path with a space",
            vec![(b":path", b"/a smuggled")],
            None,
            Refused,
        ),
        (
            ":path with CRLF and a header",
            vec![(b":path", b"/a\r\nx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            ":path with a second request",
            vec![(b":path", b"/a HTTP/1.1\r\nhost: a\r\n\r\nGET /smuggled")],
            None,
            Refused,
        ),
        (
            ":path that is not a path",
            vec![(b":path", b"smuggled")],
            None,
            Refused,
        ),
        (
            ":method with a space",
            vec![(b":method", b"GET /smuggled")],
            None,
            Refused,
        ),
        (
            ":method with CRLF",
            vec![(b":method", b"GET\r\nx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            ":authority with CRLF",
            vec![(b":authority", b"gw.test\r\nx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            ":authority with userinfo",
            vec![(b":authority", b"smuggled@gw.test")],
            None,
            Refused,
        ),
        (
            ":authority and host disagree",
            vec![(b"host", b"smuggled.test")],
            None,
            Refused,
        ),
        (
            "pseudo-header after a regular one",
            vec![(b"x-first", b"1"), (b":smuggled", b"1")],
            None,
            Refused,
        ),
        // Header-field injection.
        (
            "value with CRLF",
            vec![(b"x-a", b"1\r\nx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            "value with LF",
            vec![(b"x-a", b"1\nx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            "value with CR",
            vec![(b"x-a", b"1\rx-smuggled: 1")],
            None,
            Refused,
        ),
        (
            "value with NUL",
            vec![(b"x-a", b"1\0smuggled")],
            None,
            Refused,
        ),
        (
            "name with a colon",
            vec![(b"x-smuggled:1", b"1")],
            None,
            Refused,
        ),
        (
            "name with a space",
            vec![(b"x smuggled", b"1")],
            None,
            Refused,
        ),
        (
            "name with CRLF",
            vec![(b"x-a\r\nx-smuggled", b"1")],
            None,
            Refused,
        ),
        ("empty name", vec![(b"", b"smuggled")], None, Refused),
        // RFC 9113 8.2.1 calls it malformed; lowercasing it is also safe.
        ("uppercase name", vec![(b"X-Upper", b"1")], None, Either),
        // Connection-specific fields (RFC 9113 8.2.2).
        (
            "transfer-encoding: chunked with a chunked body hiding a request",
            vec![(b":method", b"POST"), (b"transfer-encoding", b"chunked")],
            Some(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n"),
            Refused,
        ),
        (
            "connection: close",
            vec![(b"connection", b"close")],
            None,
            Refused,
        ),
        (
            "keep-alive",
            vec![(b"keep-alive", b"timeout=5")],
            None,
            Refused,
        ),
        (
            "upgrade: websocket",
            vec![(b"connection", b"upgrade"), (b"upgrade", b"websocket")],
            None,
            Refused,
        ),
        ("upgrade alone", vec![(b"upgrade", b"h2c")], None, Refused),
        (
            "proxy-connection",
            vec![(b"proxy-connection", b"keep-alive")],
            None,
            Refused,
        ),
        (
            "te other than trailers",
            vec![(b"te", b"gzip")],
            None,
            Refused,
        ),
        ("te: trailers", vec![(b"te", b"trailers")], None, Either),
        // content-length against the DATA frames.
        (
            "content-length above the data",
            vec![(b":method", b"POST"), (b"content-length", b"100")],
            Some(b"hello"),
            Refused,
        ),
        (
            "content-length below the data, the rest a request",
            vec![(b":method", b"POST"), (b"content-length", b"5")],
            Some(b"helloGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n"),
            Refused,
        ),
        (
            "two different content-lengths",
            vec![
                (b":method", b"POST"),
                (b"content-length", b"5"),
                (b"content-length", b"6"),
            ],
            Some(b"hello"),
            Refused,
        ),
        (
            "content-length that is not a number",
            vec![(b":method", b"POST"), (b"content-length", b"5, 5")],
            Some(b"hello"),
            Refused,
        ),
        (
            "content-length without data",
            vec![(b"content-length", b"5")],
            None,
            Refused,
        ),
    ];
    table
        .into_iter()
        .enumerate()
        .map(|(n, (what, edits, data, expect))| Case {
            what,
            fields: fields(n, &edits),
            data,
            expect,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrade_to_http1_never_forwards_injected_or_ambiguous_requests() {
    let backend = Recorder::start().await;
    let gw = Gateway::start(&format!(
        "upstreams:\n  pool:\n    backends: [{{ address: \"{}\" }}]\nroutes:\n  - name: all\n    upstream: pool\n",
        backend.addr
    ))
    .await;

    let cases = cases();
    let mut answers = Vec::new();
    let mut refused_by = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let answer = exchange(gw.addr, &case.fields, case.data).await;
        let tag = n.to_string();
        let seen: Vec<Request> = backend
            .requests()
            .into_iter()
            .filter(|r| r.header("x-case") == [tag.as_str()])
            .collect();
        match (case.expect, &answer) {
            (Expect::Refused, a) => {
                assert!(a.refused(), "{}: want refused, got {a:?}", case.what);
            }
            (Expect::Forwarded, a) => {
                assert_eq!(a, &Answer::Status(200), "{}: want forwarded", case.what);
            }
            (Expect::Either, a) => {
                assert!(
                    a.refused() || a == &Answer::Status(200),
                    "{}: got {a:?}",
                    case.what
                );
            }
        }
        if answer == Answer::Status(200) {
            assert_eq!(seen.len(), 1, "{}: forwarded once: {seen:?}", case.what);
            let r = &seen[0];
            let (method, body): (&str, &[u8]) = match case.data {
                Some(d) => ("POST", d),
                None => ("GET", b""),
            };
            assert_eq!(r.line, format!("{method} /ok HTTP/1.1"), "{}", case.what);
            assert_eq!(r.body, body, "{}", case.what);
            assert_eq!(r.header("host"), ["gw.test"], "{}", case.what);
            for hop in [
                "connection",
                "keep-alive",
                "te",
                "upgrade",
                "proxy-connection",
            ] {
                assert!(r.header(hop).is_empty(), "{}: {hop} forwarded", case.what);
            }
        } else {
            assert!(
                seen.is_empty(),
                "{}: refused ({answer:?}) but reached the backend: {seen:?}",
                case.what
            );
            refused_by.push(format!("{}: {answer:?}", case.what));
        }
        answers.push(answer);
    }
    eprintln!("refused:\n  {}", refused_by.join("\n  "));

    // The backend saw nothing but well-formed requests, one per forwarded case, and a request
    // cut short only on a connection the gateway then closed (never followed by more bytes).
    let forwarded = answers
        .iter()
        .filter(|a| **a == Answer::Status(200))
        .count();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let parsed = backend.parsed();
        let open_incomplete = parsed
            .iter()
            .any(|(p, closed)| p.tail == Tail::Incomplete && !closed);
        if !open_incomplete || Instant::now() > deadline {
            for (p, closed) in &parsed {
                assert!(
                    !matches!(p.tail, Tail::Malformed(_)),
                    "malformed bytes reached the backend: {:?}",
                    p.tail
                );
                assert!(
                    p.tail == Tail::Empty || *closed,
                    "a connection holds a partial request and is still open"
                );
            }
            let total: usize = parsed.iter().map(|(p, _)| p.requests.len()).sum();
            assert_eq!(total, forwarded, "{parsed:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw = backend.raw();
    assert!(
        !raw.windows(8).any(|w| w.eq_ignore_ascii_case(b"smuggled")),
        "injected bytes reached the backend:\n{}",
        String::from_utf8_lossy(&raw)
    );

    // And the gateway still serves HTTP/2 afterwards.
    assert_eq!(
        exchange(gw.addr, &fields(999, &[]), None).await,
        Answer::Status(200)
    );
}
