//! Feeds arbitrary bytes through every decoder and detector: none may panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_waf::{decode, sqli, xss};

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
});
