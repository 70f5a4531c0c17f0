//! Cross-site scripting by tokenising HTML, in the spirit of libinjection's XSS check: the
//! input is read as tags and attributes, and only what can run script is flagged (script-
//! capable tags, event-handler attributes, script URLs in URL attributes, script in styles).
//! Plain anchors, `<br>` and `<3` pass.

const TAGS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "style", "link", "meta",
    "base", "xml", "xss", "import", "isindex", "vmlframe", "set", "animate", "handler", "bgsound",
    "layer", "ilayer", "template", "portal", "noscript", "listener",
];

const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "background",
    "dynsrc",
    "lowsrc",
    "poster",
    "xlink:href",
    "folder",
    "values",
    "from",
    "to",
    "by",
    "code",
    "codebase",
    "srcdoc",
    "content",
    "url",
    "lowsrc",
    "ping",
    "cite",
    "longdesc",
    "profile",
    "usemap",
    "manifest",
    "icon",
    "archive",
    "classid",
    "datasrc",
    "xmlns",
];

const SCHEMES: &[&str] = &[
    "javascript:",
    "vbscript:",
    "livescript:",
    "data:text/html",
    "data:image/svg",
    "data:application/",
    "mocha:",
];

fn strip_url(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '\u{fffd}')
        .collect()
}

fn script_url(v: &str) -> bool {
    let s = strip_url(v);
    let s = s.trim_start_matches(['"', '\'', '`']);
    SCHEMES.iter().any(|p| s.starts_with(p))
}

fn script_style(v: &str) -> bool {
    let s = strip_url(v);
    s.contains("expression(")
        || s.contains("behavior:")
        || s.contains("-moz-binding")
        || s.contains("javascript:")
        || s.contains("@import")
        || s.contains("url(")
}

/// Whether `s` (normalised, lowercase) contains markup that can run script, with a reason.
#[must_use]
pub fn detect(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut tags = 0;
    while let Some(p) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        i += p + 1;
        tags += 1;
        if tags > 512 {
            break;
        }
        let after = s.get(i..).unwrap_or_default();
        let rest = after.trim_start_matches(['/', '\u{fffd}']);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'))
            .collect();
        if name.is_empty() && rest.len() < after.len() && rest.starts_with(char::is_whitespace) {
            // `<// style=...>`: old browsers read the attributes of a nameless end tag.
            if let Some(r) = attributes(rest.get(..tag_end(rest)).unwrap_or(rest)) {
                return Some(r);
            }
        }
        if name.is_empty() {
            if rest.starts_with("!entity") || rest.starts_with("![cdata[") {
                return Some("markup declaration");
            }
            continue;
        }
        let local = name.rsplit(':').next().unwrap_or(&name);
        if TAGS.contains(&local) {
            return Some("script-capable tag");
        }
        // Attributes up to the end of the tag (or the input: unterminated tags run in browsers).
        let body = rest.get(name.len()..).unwrap_or_default();
        let end = tag_end(body);
        if let Some(r) = attributes(body.get(..end).unwrap_or(body)) {
            return Some(r);
        }
    }
    script_context(s)
}

/// End of a tag body, skipping quoted values.
fn tag_end(body: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '>') => return i,
            _ => {}
        }
    }
    body.len()
}

fn attributes(body: &str) -> Option<&'static str> {
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while chars.get(i).is_some_and(|c| {
            c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '`' | '\u{fffd}') || c.is_control()
        }) {
            i += 1;
        }
        let start = i;
        while chars.get(i).is_some_and(|c| {
            !c.is_whitespace() && !matches!(c, '=' | '/' | '>' | '"' | '\'') && !c.is_control()
        }) {
            i += 1;
        }
        let name: String = chars.get(start..i).unwrap_or_default().iter().collect();
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        let mut value = String::new();
        if chars.get(i) == Some(&'=') {
            i += 1;
            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
            match chars.get(i) {
                Some(q @ ('"' | '\'' | '`')) => {
                    let q = *q;
                    i += 1;
                    while let Some(c) = chars.get(i) {
                        i += 1;
                        if *c == q {
                            break;
                        }
                        value.push(*c);
                    }
                }
                _ => {
                    while let Some(c) = chars.get(i) {
                        if c.is_whitespace() || *c == '>' {
                            break;
                        }
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        }
        if name.is_empty() {
            if i == start {
                i += 1;
            }
            continue;
        }
        if name.len() > 4 && name.starts_with("on") && name.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Some("event handler attribute");
        }
        if name == "style" && script_style(&value) {
            return Some("script in style");
        }
        if matches!(name.as_str(), "dataformatas" | "datafld" | "xmlns:xlink")
            || name.starts_with("xlink:") && script_url(&value)
        {
            return Some("data binding attribute");
        }
        if URL_ATTRS.contains(&name.as_str()) && script_url(&value) {
            return Some("script url");
        }
    }
    None
}

/// Words one of which every check of [`script_context_unfiltered`] but the attribute
/// breakout needs in its text; see [`may_be_script`].
const ANCHORS: &[&str] = &[
    "script:",
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "function",
    "fetch",
    "import",
    "document",
    "fromcharcode",
    "atob",
    "constructor",
    "window[",
    "window.location=",
    "self[",
    "top[",
    ".innerhtml=",
];

/// The [`ANCHORS`] as one automaton, stepped byte by byte by [`may_be_script`]. `None` only
/// if it could not be built, and then every value takes the full checks.
static ANCHOR_DFA: std::sync::LazyLock<Option<aho_corasick::dfa::DFA>> =
    std::sync::LazyLock::new(|| aho_corasick::dfa::DFA::new(ANCHORS).ok());

/// Whether `s` may reach a verdict in the checks of [`script_context_unfiltered`] other
/// than [`attribute_breakout`]: a necessary condition, cheap enough for every User-Agent
/// (`Mozilla/5.0 (Windows NT 10.0; ...)` has the `(` and `.` that let a value through the
/// byte test, and then paid for a copy, a dozen substring searches and four replacements).
///
/// Why it is necessary. Each of those checks searches `s`, or `flat`, for a fixed text:
/// a scheme (`javascript:`, `vbscript:`: contains `script:`), a sink called at the start or
/// with `new function(` (contains its name or `function`), a sink of `SINKS` (each is an
/// anchor or contains one: `document.write`), or a DOM access (`document...`, `window[`,
/// `window.location=`, `self[`, `top[`, `.innerhtml=`). `flat` is `s` with characters
/// removed: `strip_url` drops whitespace, controls and U+FFFD; the later rewriting drops
/// `(` and `)` only (`)[`, `).`, `(document`, `(self`), and comments only when `flat` has
/// `/*`, which needs a `*` in `s`. So, with no `*` in `s`, `flat` is `s` minus characters
/// of the class `squeezed` removes here (whitespace, controls, U+FFFD, parentheses). A text
/// found in `s` or `flat` holds an anchor without any of those characters; dropping
/// characters around an anchor that holds none of them leaves it whole, so the anchor is in
/// `squeezed`. With a `*` in `s`, or without the automaton, the answer is `true`.
fn may_be_script(s: &str) -> bool {
    let Some(dfa) = ANCHOR_DFA.as_ref() else {
        return true;
    };
    if s.contains('*') {
        return true;
    }
    use aho_corasick::{automaton::Automaton, Anchored};
    let Ok(mut sid) = dfa.start_state(Anchored::No) else {
        return true;
    };
    // Byte by byte: an ASCII byte is its own character, and the bytes of any other
    // character (all 0x80 and above) are fed or skipped together, by what the character is.
    let bytes = s.as_bytes();
    let mut skip_until = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii() {
            // `char::is_whitespace` and `is_control` on ASCII: `\t`..`\r`, space, and
            // every byte below 0x20 or 0x7f.
            if b <= b' ' || b == 0x7f || b == b'(' || b == b')' {
                continue;
            }
        } else if i < skip_until {
            continue;
        } else if is_utf8_lead(b) {
            let c = s
                .get(i..)
                .and_then(|r| r.chars().next())
                .unwrap_or('\u{fffd}');
            if c.is_whitespace() || c.is_control() || c == '\u{fffd}' {
                skip_until = i + c.len_utf8();
                continue;
            }
        }
        sid = dfa.next_state(Anchored::No, sid, b);
        if dfa.is_match(sid) {
            return true;
        }
    }
    false
}

/// Whether `b` starts a multi-byte UTF-8 character (rather than continuing one).
fn is_utf8_lead(b: u8) -> bool {
    b >= 0xc0
}

/// Script without tags: a `javascript:` URL with code, or a break out of a JS string into a
/// call of a well-known sink.
fn script_context(s: &str) -> Option<&'static str> {
    if !has_script_byte(s) {
        return None;
    }
    if !may_be_script(s) {
        // Only the breakout is left, and it is the same check in the same place of the
        // order as in the full path below.
        return attribute_breakout(s).then_some("event handler attribute");
    }
    script_context_unfiltered(s)
}

/// Every check of [`script_context_unfiltered`] needs one of these bytes: most API values
/// (names, numbers, prose without quotes) end here, before any allocation or substring
/// search.
fn has_script_byte(s: &str) -> bool {
    s.bytes()
        .any(|c| matches!(c, b'(' | b'`' | b'[' | b':' | b'"' | b'\'' | b'.'))
}

/// [`script_context`] without the anchor filter (for a value that passed
/// [`has_script_byte`]); kept whole so the property test can compare the two.
fn script_context_unfiltered(s: &str) -> Option<&'static str> {
    let flat = strip_url(s);
    for scheme in ["javascript:", "vbscript:"] {
        if let Some(p) = flat.find(scheme) {
            let code = flat.get(p + scheme.len()..).unwrap_or_default();
            if code.contains('(') || code.contains('`') || code.contains('=') {
                return Some("script url");
            }
        }
    }
    // A value that is itself a call of a dialog or eval sink, or builds a function from a
    // string.
    let trimmed = s.trim_start_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
    if [
        "alert(",
        "prompt(",
        "confirm(",
        "eval(",
        "settimeout(",
        "setinterval(",
    ]
    .iter()
    .any(|p| trimmed.len() > p.len() && trimmed.starts_with(p))
        || s.contains("new function(")
    {
        return Some("script call");
    }
    const SINKS: &[&str] = &[
        "alert",
        "prompt",
        "confirm",
        "eval",
        "settimeout",
        "setinterval",
        "fetch",
        "import",
        "document.write",
        "fromcharcode",
        "atob",
        "constructor",
    ];
    let b = flat.as_bytes();
    // Every sink form below is a call: without `(` or a backtick there is none.
    let has_call = flat.contains(['(', '`']);
    for sink in SINKS.iter().filter(|_| has_call) {
        let mut from = 0;
        while let Some(p) = flat.get(from..).and_then(|r| r.find(sink)) {
            let at = from + p;
            from = at + sink.len();
            let after = b.get(from).copied();
            let before = at.checked_sub(1).and_then(|k| b.get(k)).copied();
            let word_start = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
            // A sink called indirectly (`alert.call(null,1)`, `(prompt)(1)`) is code, never prose.
            let rest = flat.get(from..).unwrap_or_default();
            if word_start
                && (rest.starts_with(".call(")
                    || rest.starts_with(".apply(")
                    || rest.starts_with(".bind(")
                    || (before == Some(b'(') && rest.starts_with(")(")))
            {
                return Some("script call");
            }
            // A call needs something after its opening bracket: `eval(` alone at the end of
            // a value runs nothing (it is a syntax error), it only names the function.
            if !matches!(after, Some(b'(' | b'`')) || from + 1 >= b.len() {
                continue;
            }
            if matches!(
                before,
                Some(
                    b'"' | b'\''
                        | b';'
                        | b'-'
                        | b'+'
                        | b'|'
                        | b'&'
                        | b'{'
                        | b'('
                        | b'`'
                        | b'>'
                        | b'='
                        | b'*'
                        | b'/'
                        | b'!'
                        | b'~'
                        | b':'
                )
            ) {
                return Some("script call");
            }
        }
    }
    // Comments and grouping parentheses around object names do not change what runs.
    let flat = if flat.contains("/*") || flat.contains(')') {
        strip_js_comments(&flat)
            .replace(")[", "[")
            .replace(").", ".")
            .replace("(document", "document")
            .replace("(self", "self")
    } else {
        flat
    };
    if flat.contains("document.cookie") || flat.contains("document.domain") {
        return Some("dom access");
    }
    // A quote that closes an attribute value followed by a new event handler.
    if attribute_breakout(s) {
        return Some("event handler attribute");
    }
    if ["document[", "window[", "self[", "top["].iter().any(|o| {
        flat.match_indices(o).any(|(i, _)| {
            let key = flat.get(i + o.len()..).unwrap_or_default();
            let key = key.trim_start_matches(['"', '\'', '`']);
            ["cookie", "domain", "location", "write", "alert", "eval"]
                .iter()
                .any(|k| key.starts_with(k))
        })
    }) {
        return Some("dom access");
    }
    if flat.contains("document.cookie")
        || flat.contains("document.domain")
        || flat.contains("window.location=")
        || flat.contains(".innerhtml=")
    {
        return Some("dom access");
    }
    None
}

fn strip_js_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(rest.get(..i).unwrap_or_default());
        rest = match rest.get(i + 2..).and_then(|r| r.find("*/").map(|j| (r, j))) {
            Some((r, j)) => r.get(j + 2..).unwrap_or_default(),
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `' onfocus=...`: a quote, optional blanks or slashes, then `on<letters>=`.
fn attribute_breakout(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, c)| {
        if !matches!(c, b'"' | b'\'' | b'`') {
            return false;
        }
        let mut j = i + 1;
        while b
            .get(j)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/')
        {
            j += 1;
        }
        if j == i + 1 {
            return false;
        }
        // `' style=x:expression(..)`: a new style attribute that runs script.
        if b.get(j..j + 5) == Some(b"style") {
            let mut k = j + 5;
            while b.get(k).is_some_and(u8::is_ascii_whitespace) {
                k += 1;
            }
            return b.get(k) == Some(&b'=') && script_style(s.get(k + 1..).unwrap_or_default());
        }
        if b.get(j..j + 2) != Some(b"on") {
            return false;
        }
        let start = j + 2;
        let mut k = start;
        while b.get(k).is_some_and(u8::is_ascii_lowercase) {
            k += 1;
        }
        while b.get(k).is_some_and(u8::is_ascii_whitespace) {
            k += 1;
        }
        (3..=24).contains(&(k - start)) && b.get(k) == Some(&b'=')
    })
}

#[cfg(test)]
mod tests {
    use super::{
        detect, has_script_byte, may_be_script, script_context, script_context_unfiltered,
    };

    /// The anchor filter must never change an answer: random strings built from script
    /// fragments, separators the flattening removes, comments and browser User-Agent
    /// pieces get the same answer from the filtered and the unfiltered checks.
    #[test]
    fn the_anchor_filter_never_changes_an_answer() {
        const PIECES: &[&str] = &[
            " ",
            " ",
            "\t",
            "\n",
            "\u{a0}",
            "\u{fffd}",
            "\u{1}",
            "x",
            "1",
            "a",
            "=",
            ";",
            ":",
            ".",
            ",",
            "-",
            "+",
            "/",
            "*",
            "/*",
            "*/",
            "(",
            ")",
            "[",
            "]",
            "`",
            "'",
            "\"",
            "{",
            "<",
            ">",
            "!",
            "~",
            "|",
            "&",
            "alert",
            "prompt",
            "confirm",
            "eval",
            "settimeout",
            "setinterval",
            "fetch",
            "import",
            "document",
            "write",
            "cookie",
            "domain",
            "fromcharcode",
            "atob",
            "constructor",
            "new",
            "function",
            "window",
            "self",
            "top",
            "location",
            "innerhtml",
            "javascript",
            "vbscript",
            "script",
            "java",
            "scr",
            "ipt",
            "docu",
            "ment",
            "win",
            "dow",
            "al",
            "ert",
            "call",
            "apply",
            "bind",
            "on",
            "onload",
            "onfocus",
            "style",
            "expression",
            "url",
            "behavior",
            "@import",
            "mozilla/5.0",
            "windows nt 10.0",
            "applewebkit/537.36",
            "(khtml, like gecko)",
            "é",
            "文",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut flagged, mut skipped) = (0, 0);
        for _ in 0..300_000 {
            let len = 1 + next() % 10;
            let mut s = String::new();
            for _ in 0..len {
                let i = usize::try_from(next() % PIECES.len() as u64).unwrap();
                s.push_str(PIECES[i]);
            }
            let full = if has_script_byte(&s) {
                script_context_unfiltered(&s)
            } else {
                None
            };
            assert_eq!(script_context(&s), full, "{s:?}");
            flagged += usize::from(full.is_some());
            skipped += usize::from(has_script_byte(&s) && !may_be_script(&s));
        }
        assert!(flagged > 1000, "too few scripts generated: {flagged}");
        assert!(skipped > 3000, "too few values skipped: {skipped}");
    }

    /// Known script with a separator that the flattening removes (or a comment) put at
    /// every position, so a word split by it is tried at every split point.
    #[test]
    fn the_anchor_filter_sees_words_split_by_removed_characters() {
        const PAYLOADS: &[&str] = &[
            "x=document.cookie",
            "\";alert(1)//",
            "javascript:go(1)",
            "vbscript:msgbox(1)",
            "(window)['location']",
            "top['alert'](1)",
            "self['eval'](1)",
            "a.innerhtml=1",
            "window.location=1",
            "new function('x')",
            "'-confirm`1`-'",
            "prompt.call(null,1)",
            "[].constructor.constructor('x')()",
            "x=(document).domain",
        ];
        const SEPARATORS: &[&str] = &[" ", "\t", "\u{fffd}", "\u{2028}", "(", ")", "/**/", "/*x*/"];
        let mut flagged = 0;
        for p in PAYLOADS {
            for (i, _) in p.char_indices() {
                for sep in SEPARATORS {
                    let s = format!("{}{sep}{}", &p[..i], &p[i..]);
                    let full = if has_script_byte(&s) {
                        script_context_unfiltered(&s)
                    } else {
                        None
                    };
                    assert_eq!(script_context(&s), full, "{s:?}");
                    flagged += usize::from(full.is_some());
                }
            }
        }
        assert!(flagged > 500, "too few scripts: {flagged}");
    }

    #[test]
    fn the_anchor_filter_skips_browser_user_agents() {
        for ua in [
            "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) \
             chrome/125.0.0.0 safari/537.36",
            "mozilla/5.0 (x11; linux x86_64) firefox/126.0",
            "mozilla/5.0 (iphone; cpu iphone os 17_5 like mac os x) applewebkit/605.1.15 \
             (khtml, like gecko) version/17.5 mobile/15e148 safari/604.1",
        ] {
            assert!(!may_be_script(ua), "{ua}");
        }
        assert!(may_be_script("x=docu ment.cookie"));
        assert!(may_be_script("(al)(ert)(1)"));
    }

    fn xss(s: &str) -> bool {
        detect(&s.to_lowercase()).is_some()
    }

    #[test]
    fn detects_script_tags_and_handlers() {
        assert!(xss("<ScRiPt>alert(1)</script>"));
        assert!(xss("<img src=x onerror=alert(1)>"));
        assert!(xss("<svg/onload=prompt(1)"));
        assert!(xss("<a href=\" javascript:go()\">x</a>"));
        assert!(xss("<div style=\"width:expression(alert(1))\">"));
    }

    #[test]
    fn detects_javascript_string_breakouts() {
        assert!(xss("\";alert(document.domain)//"));
        assert!(xss("'-confirm`1`-'"));
        assert!(xss("javascript:fetch('//x.example')"));
        assert!(xss("prompt.apply(window,[7])"));
        assert!(xss("x=(confirm)(9)"));
        assert!(xss("top['alert'](3)"));
        assert!(xss("document['domain']"));
        assert!(xss("confirm()"));
        assert!(xss("x' onpointerenter=go() '"));
        assert!(xss("(document)['cookie']"));
        assert!(xss("document /*x*/ . cookie"));
        assert!(xss("x = new Function('return 1')"));
        assert!(xss("\" style = color:expression(go()) \""));
        assert!(xss("' style=background:url(//x.example/a)"));
    }

    #[test]
    fn passes_style_words_after_quotes() {
        assert!(!xss("it's 'style' = casual"));
        assert!(!xss("the \"style=modern\" option"));
        assert!(!xss("'style': 'color:red'"));
    }

    #[test]
    fn passes_harmless_markup_and_text() {
        assert!(!xss("see <a href=\"/docs/intro.html\">the docs</a>"));
        assert!(!xss("line one<br/>line two"));
        assert!(!xss("i <3 rust & 2 < 3"));
        assert!(!xss("JavaScript: the good parts"));
        assert!(!xss("please alert(the team) tomorrow"));
        assert!(!xss("once upon a time"));
        assert!(!xss("the recall(s) were issued; see the call log"));
        assert!(!xss("(alert) level raised (twice)"));
        assert!(!xss("the document[1] section"));
        assert!(!xss("Confirm (yes/no)"));
        assert!(!xss("it's 'online' = available"));
        assert!(!xss("the document (cookie policy) page"));
        assert!(!xss("a new function (see below)"));
    }

    #[test]
    fn a_sink_name_without_arguments_is_not_a_call() {
        assert!(!xss("/docs/eval("));
        assert!(!xss("alert("));
        assert!(!xss("see eval`"));
        assert!(xss("/docs/eval(x)"));
        assert!(xss("alert(1"));
        assert!(xss("'-alert`1`-'"));
    }
}
