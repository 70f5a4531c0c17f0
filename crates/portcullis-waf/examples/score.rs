//! Scores the WAF in process against a corpus in the shared JSONL format (see
//! shared/corpora/README.md): `cargo run --release -p portcullis-waf --example score -- FILE
//! [--where key.path=value] [--misses OUT.jsonl] [--verdicts OUT.tsv] [--paranoia N]`. Prints
//! detection and false-positive rates per set and for the file, with the default spec (block,
//! paranoia 1). `--verdicts` writes one line per request (id, score, rules that fired) so two
//! builds can be diffed: a performance change must leave that file identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_config::WafSpec;
use portcullis_core::RequestView;
use portcullis_waf::Waf;

#[derive(Default)]
struct Tally {
    tp: u64,
    fn_: u64,
    tn: u64,
    fp: u64,
}

fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = args
        .first()
        .expect("usage: score FILE [--where k=v] [--misses OUT] [--verdicts OUT] [--paranoia N]");
    let mut filter: Option<(String, String)> = None;
    let mut misses: Option<std::fs::File> = None;
    let mut verdicts: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut spec = WafSpec::default();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--where" => {
                let (k, v) = it.next().unwrap().split_once('=').unwrap();
                filter = Some((k.to_owned(), v.to_owned()));
            }
            "--misses" => misses = Some(std::fs::File::create(it.next().unwrap()).unwrap()),
            "--verdicts" => {
                let f = std::fs::File::create(it.next().unwrap()).unwrap();
                verdicts = Some(std::io::BufWriter::new(f));
            }
            "--paranoia" => spec.paranoia = it.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let waf = Waf::from_spec(&spec).unwrap();
    let mut sets: BTreeMap<String, Tally> = BTreeMap::new();
    let mut skipped = 0u64;
    let reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    let started = std::time::Instant::now();
    let mut n = 0u64;
    for line in reader.lines() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some((k, want)) = &filter {
            let got = lookup(&v, k).map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if got.as_deref() != Some(want.as_str()) {
                continue;
            }
        }
        if v.get("raw_only").and_then(serde_json::Value::as_bool) == Some(true) {
            skipped += 1;
            continue;
        }
        let method = v["method"].as_str().unwrap_or("GET");
        let target = v["path"].as_str().unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut headers = HeaderMap::new();
        let mut host = None;
        for pair in v["headers"].as_array().into_iter().flatten() {
            let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) else {
                continue;
            };
            if name.eq_ignore_ascii_case("host") {
                host = Some(
                    value
                        .split(':')
                        .next()
                        .unwrap_or(value)
                        .to_ascii_lowercase(),
                );
            }
            if let (Ok(n), Ok(val)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(n, val);
            }
        }
        let body = v["body"].as_str().unwrap_or("").as_bytes().to_vec();
        if v.get("auto_content_length")
            .and_then(serde_json::Value::as_bool)
            != Some(false)
            && !body.is_empty()
            && !headers.contains_key(http::header::CONTENT_LENGTH)
            && !headers.contains_key(http::header::TRANSFER_ENCODING)
        {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        if host.is_none() && v.get("auto_host").and_then(serde_json::Value::as_bool) != Some(false)
        {
            host = Some("localhost".to_owned());
        }
        let req = RequestView {
            method,
            path,
            query,
            host: host.as_deref(),
            headers: &headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: "corpus",
        };
        let limit = waf.body_inspect_limit();
        let verdict = waf.check_head(&req).and_then(|head| {
            let truncated = body.len() > limit;
            let slice = body.get(..limit.min(body.len())).unwrap_or(&body);
            waf.check_body(&req, &head, slice, truncated)
        });
        n += 1;
        if let Some(w) = verdicts.as_mut() {
            let what = match &verdict {
                Ok(f) => format!("pass score={} rules={}", f.score, f.summary()),
                Err(d) => format!("{} {}", d.status, d.log_detail.clone().unwrap_or_default()),
            };
            writeln!(w, "{}\t{what}", v["id"].as_str().unwrap_or("?")).unwrap();
        }
        let blocked = verdict.is_err();
        let expect_block = v["expect"].as_str() == Some("block");
        let set = format!(
            "{}/{}",
            v["source"].as_str().unwrap_or("?"),
            v["set"].as_str().unwrap_or("?")
        );
        let t = sets.entry(set).or_default();
        match (expect_block, blocked) {
            (true, true) => t.tp += 1,
            (true, false) => t.fn_ += 1,
            (false, false) => t.tn += 1,
            (false, true) => t.fp += 1,
        }
        if expect_block != blocked {
            if let Some(f) = misses.as_mut() {
                let detail = verdict.err().and_then(|d| d.log_detail).unwrap_or_default();
                let mut o = v.clone();
                o["waf_detail"] = serde_json::Value::String(detail);
                o.as_object_mut().unwrap().remove("raw_b64");
                writeln!(f, "{o}").unwrap();
            }
        }
    }
    let elapsed = started.elapsed();
    let mut all = Tally::default();
    println!(
        "{:<60} {:>6} {:>6} {:>8} {:>6} {:>6} {:>8}",
        "set", "TP", "FN", "detect%", "TN", "FP", "fp%"
    );
    let pct = |a: u64, b: u64| {
        if a + b == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", 100.0 * a as f64 / (a + b) as f64)
        }
    };
    for (name, t) in &sets {
        println!(
            "{:<60} {:>6} {:>6} {:>8} {:>6} {:>6} {:>8}",
            name,
            t.tp,
            t.fn_,
            pct(t.tp, t.fn_),
            t.tn,
            t.fp,
            pct(t.fp, t.tn)
        );
        all.tp += t.tp;
        all.fn_ += t.fn_;
        all.tn += t.tn;
        all.fp += t.fp;
    }
    println!(
        "{:<60} {:>6} {:>6} {:>8} {:>6} {:>6} {:>8}",
        "TOTAL",
        all.tp,
        all.fn_,
        pct(all.tp, all.fn_),
        all.tn,
        all.fp,
        pct(all.fp, all.tn)
    );
    println!(
        "requests {n}, raw-only skipped {skipped}, {:.1} us/request",
        elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
    );
}
