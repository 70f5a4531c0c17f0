//! Feeds arbitrary bytes through every decoder and detector, then through the whole WAF as a
//! query string, a header value and a body of each parsed content type: none may panic or
//! loop.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_config::{WafMode, WafSpec};
use portcullis_core::RequestView;
use portcullis_waf::{decode, sqli, xss, Waf};

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "application/json",
    "application/xml",
    "text/plain",
];

fn waf() -> &'static Waf {
    static WAF: OnceLock<Waf> = OnceLock::new();
    // Detect mode: every stage runs even when an early one would have blocked.
    let spec = WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    };
    WAF.get_or_init(|| match Waf::from_spec(&spec) {
        Ok(w) => w,
        Err(e) => panic!("default spec must compile: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let raw = decode::utf8_lenient(data);
    let _ = decode::percent_decode(data, true);
    let _ = decode::html_entities(&raw);
    let _ = decode::js_unescape(&raw);
    let _ = decode::base64_text(&raw);
    let _ = decode::collapse_path(&raw);
    let norm = decode::normalise(&raw);
    let _ = decode::shell_fold(&norm);
    let _ = sqli::detect(&norm);
    let _ = xss::detect(&norm);

    // The whole pipeline: the same bytes as query, path, a header and a body.
    let ct = CONTENT_TYPES[usize::from(data.first().copied().unwrap_or(0)) % CONTENT_TYPES.len()];
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(ct));
    headers.insert("content-length", HeaderValue::from(data.len()));
    if let Ok(v) = HeaderValue::from_bytes(data) {
        headers.insert("x-fuzz", v.clone());
        headers.insert("range", v.clone());
        headers.insert("cookie", v);
    }
    let path = format!("/{}", raw.replace(['?', ' '], ""));
    let req = RequestView {
        method: "POST",
        path: &path,
        query: Some(&raw),
        host: Some("fuzz.test"),
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "fuzz",
    };
    let w = waf();
    if let Ok(head) = w.check_head(&req) {
        let _ = w.check_body(&req, &head, data, false);
    }
    let _ = w.inspect_response(Some("application/json"), data);
});
