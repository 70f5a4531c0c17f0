//! Arbitrary bytes as config files through the real loader after I/O: YAML parsing, splitting
//! into items, every validation and compilation step, and the rendering of every diagnostic.
//! A NUL byte splits the input into two files, which exercises the cross-file checks
//! (duplicate names, references to another file's pools). Errors are expected; a panic, a hang
//! or unbounded memory is a bug. `scripts/fuzz_smoke.sh` seeds the corpus with the shipped
//! `conf/` files at run time.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use portcullis_config::{parse_duration, parse_sources};

/// The files claim to live in conf/examples/, so the shipped examples' relative key and
/// certificate paths resolve when they are the seeds.
fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../conf/examples")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let files = match text.split_once('\0') {
        Some((a, b)) => vec![
            (base().join("a.yaml"), a.to_owned()),
            (base().join("b.yaml"), b.to_owned()),
        ],
        None => vec![(base().join("fuzz.yaml"), text.clone().into_owned())],
    };
    match parse_sources(files) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            for d in &e.diagnostics {
                let _ = d.to_string();
            }
        }
    }
    if text.len() <= 64 {
        let _ = parse_duration(&text);
    }
});
