//! Builds a request head from arbitrary bytes (method and version from the first byte, the
//! target from the first line, one header per further line) and asks the framing rules about
//! it. Beyond "never panics", every head they let through must be unambiguous: one Host at
//! most, one Content-Length of plain digits, never Content-Length with Transfer-Encoding on
//! HTTP/1.1, a bounded target.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use libfuzzer_sys::fuzz_target;
use portcullis_core::framing::{self, MAX_TARGET_BYTES};

const METHODS: &[&str] = &[
    "GET", "POST", "OPTIONS", "CONNECT", "PUT", "HEAD", "PATCH", "X-Y",
];
const VERSIONS: &[Version] = &[
    Version::HTTP_11,
    Version::HTTP_10,
    Version::HTTP_2,
    Version::HTTP_09,
];
/// A line starting with a byte below this length names the header by index: the fuzzer then
/// reaches the interesting names without having to spell them.
const NAMES: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "connection",
    "te",
    "x-forwarded-for",
    "expect",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let method =
        Method::from_bytes(METHODS[usize::from(first & 7)].as_bytes()).unwrap_or(Method::GET);
    let version = VERSIONS[usize::from((first >> 3) & 3)];
    let mut lines = rest.split(|b| *b == b'\n');
    let target = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        let parsed = match line.split_first() {
            Some((&i, value)) if usize::from(i) < NAMES.len() => {
                Some((HeaderName::from_static(NAMES[usize::from(i)]), value))
            }
            _ => line.iter().position(|b| *b == b':').and_then(|colon| {
                let name = HeaderName::from_bytes(&line[..colon]).ok()?;
                Some((name, line[colon + 1..].trim_ascii()))
            }),
        };
        if let Some((name, value)) = parsed {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(name, value);
            }
        }
    }

    if framing::check(&method, version, target, &headers).is_some() {
        return;
    }
    // Accepted: it must be unambiguous.
    assert!(target.len() <= MAX_TARGET_BYTES);
    assert!(headers.get_all(http::header::HOST).iter().count() <= 1);
    let lengths: Vec<_> = headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .collect();
    assert!(lengths.len() <= 1);
    if let Some(cl) = lengths.first() {
        assert!(cl.as_bytes().iter().all(u8::is_ascii_digit) && !cl.is_empty());
        assert!(cl
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some());
    }
    let te = headers.contains_key(http::header::TRANSFER_ENCODING);
    if te && version != Version::HTTP_2 {
        assert!(
            lengths.is_empty(),
            "Content-Length together with Transfer-Encoding"
        );
        assert_ne!(version, Version::HTTP_10);
    }
});
