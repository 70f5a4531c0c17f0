//! Decoding and normalisation applied before matching. Every function is total (never panics),
//! bounded (a fixed number of passes) and works on arbitrary input, so the fuzz target drives
//! them directly.

use base64::Engine as _;

/// Most percent-decoding passes (double and triple encoding are common evasions; more is noise).
const MAX_PASSES: usize = 3;

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: Option<&u8>, b: Option<&u8>) -> Option<u8> {
    Some(hex_val(*a?)? << 4 | hex_val(*b?)?)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// One pass of percent-decoding, including IIS `%uXXXX`. `plus` turns `+` into a space (form
/// encoding). Invalid escapes stay as written.
#[must_use]
pub fn percent_decode(input: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let Some(v) = hex2(input.get(i + 1), input.get(i + 2)) {
                out.push(v);
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                let digits = input.get(i + 2..i + 6).unwrap_or_default();
                if digits.len() == 4 && digits.iter().all(u8::is_ascii_hexdigit) {
                    let cp = digits.iter().fold(0u32, |acc, d| {
                        acc << 4 | u32::from(hex_val(*d).unwrap_or(0))
                    });
                    push_char(
                        &mut out,
                        fold_fullwidth(char::from_u32(cp).unwrap_or('\u{fffd}')),
                    );
                    i += 6;
                    continue;
                }
            }
        }
        out.push(if plus && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

/// Full-width ASCII forms (U+FF01..U+FF5E) fold to ASCII: IIS and some back ends do the same.
fn fold_fullwidth(c: char) -> char {
    let cp = c as u32;
    if (0xff01..=0xff5e).contains(&cp) {
        char::from_u32(cp - 0xff01 + 0x21).unwrap_or(c)
    } else {
        c
    }
}

/// Bytes to text, accepting overlong UTF-8 forms (`%c0%ae` is `.`) the way lenient back ends
/// do; other invalid bytes become U+FFFD.
#[must_use]
pub fn utf8_lenient(input: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(input) {
        if s.is_ascii() {
            return s.to_owned();
        }
        return s.chars().map(fold_fullwidth).collect();
    }
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let (len, init) = match b {
            0x00..=0x7f => {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            0xc0..=0xdf => (2, u32::from(b & 0x1f)),
            0xe0..=0xef => (3, u32::from(b & 0x0f)),
            0xf0..=0xf7 => (4, u32::from(b & 0x07)),
            _ => {
                out.push('\u{fffd}');
                i += 1;
                continue;
            }
        };
        let cont = input.get(i + 1..i + len).unwrap_or_default();
        if cont.len() + 1 == len && cont.iter().all(|c| c & 0xc0 == 0x80) {
            let cp = cont
                .iter()
                .fold(init, |acc, c| acc << 6 | u32::from(c & 0x3f));
            out.push(fold_fullwidth(char::from_u32(cp).unwrap_or('\u{fffd}')));
            i += len;
        } else {
            out.push('\u{fffd}');
            i += 1;
        }
    }
    out
}

/// Repeated percent-decoding (bounded), then lenient UTF-8.
#[must_use]
pub fn url_decode_multi(input: &str, plus: bool) -> String {
    let mut cur = input.as_bytes().to_vec();
    for pass in 0..MAX_PASSES {
        if !(cur.contains(&b'%') || plus && pass == 0 && cur.contains(&b'+')) {
            break;
        }
        let next = percent_decode(&cur, plus && pass == 0);
        if next == cur {
            break;
        }
        cur = next;
    }
    utf8_lenient(&cur)
}

const ENTITIES: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("amp", '&'),
    ("nbsp", ' '),
    ("colon", ':'),
    ("semi", ';'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lbrace", '{'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("lowbar", '_'),
    ("hyphen", '-'),
    ("dash", '-'),
    ("rbrace", '}'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("comma", ','),
    ("period", '.'),
    ("excl", '!'),
    ("num", '#'),
    ("equals", '='),
    ("grave", '`'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("plus", '+'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("quest", '?'),
    ("ast", '*'),
    ("vert", '|'),
];

/// Decodes HTML character references: numeric (`&#60;`, `&#x3c;`, with or without `;`, with
/// leading zeros) and the named ones attackers use.
#[must_use]
pub fn html_entities(input: &str) -> String {
    if !input.contains('&') {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('&') {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        if let Some((c, used)) = entity(after) {
            out.push(c);
            rest = after.get(used..).unwrap_or_default();
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn entity(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        let (radix, start) = if matches!(b.get(1), Some(b'x' | b'X')) {
            (16, 2)
        } else {
            (10, 1)
        };
        let digits = s
            .get(start..)?
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() && char::from(*c).is_digit(radix))
            .count();
        if digits == 0 || digits > 10 {
            return None;
        }
        let cp = u32::from_str_radix(s.get(start..start + digits)?, radix).ok()?;
        let mut used = start + digits;
        if b.get(used) == Some(&b';') {
            used += 1;
        }
        return Some((char::from_u32(cp).unwrap_or('\u{fffd}'), used));
    }
    let lower: String = s
        .chars()
        .take(8)
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    for (name, c) in ENTITIES {
        if lower.starts_with(name) {
            let mut used = name.len();
            if b.get(used) == Some(&b';') {
                used += 1;
            } else if lower.len() != name.len() {
                continue;
            }
            return Some((*c, used));
        }
    }
    None
}

/// Decodes JavaScript and CSS escapes: `\xNN`, `\uNNNN`, `\u{N}`, octal `\NNN` and CSS `\NN `.
/// Other backslash escapes lose the backslash (`\'` is `'`).
#[must_use]
pub fn js_unescape(input: &str) -> String {
    if !input.contains('\\') {
        return input.to_owned();
    }
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let take_hex = |from: usize, max: usize| -> (u32, usize) {
            let mut v = 0u32;
            let mut n = 0;
            while n < max {
                match chars.get(from + n).and_then(|c| c.to_digit(16)) {
                    Some(d) => {
                        v = v.saturating_mul(16).saturating_add(d);
                        n += 1;
                    }
                    None => break,
                }
            }
            (v, n)
        };
        match chars.get(i + 1) {
            Some('x') => {
                let (v, n) = take_hex(i + 2, 2);
                if n == 2 {
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    i += 4;
                } else {
                    out.push('x');
                    i += 2;
                }
            }
            Some('u') if chars.get(i + 2) == Some(&'{') => {
                let (v, n) = take_hex(i + 3, 6);
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                i += 3 + n + usize::from(chars.get(i + 3 + n) == Some(&'}'));
            }
            Some('u') => {
                let (v, n) = take_hex(i + 2, 4);
                if n == 4 {
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    i += 6;
                } else {
                    out.push('u');
                    i += 2;
                }
            }
            Some(d) if d.is_ascii_hexdigit() => {
                // CSS (\3c, \00003c) or octal (\074): hex digits, optional trailing space.
                let (v, n) = take_hex(i + 1, 6);
                let octal = chars
                    .get(i + 1..i + 1 + n)
                    .is_some_and(|ds| n == 3 && ds.iter().all(|c| ('0'..='7').contains(c)));
                let value = if octal {
                    chars
                        .get(i + 1..i + 4)
                        .map(|ds| {
                            ds.iter()
                                .fold(0u32, |a, c| a * 8 + c.to_digit(8).unwrap_or(0))
                        })
                        .unwrap_or(v)
                } else {
                    v
                };
                out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                i += 1 + n + usize::from(!octal && chars.get(i + 1 + n) == Some(&' '));
            }
            Some(other) => {
                out.push(*other);
                i += 2;
            }
            None => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

/// If the whole value looks like base64 (standard or URL-safe, at least 16 characters) and
/// decodes to mostly printable text, that text.
#[must_use]
pub fn base64_text(input: &str) -> Option<String> {
    let t = input.trim();
    if !base64_text_checks(t) {
        return None;
    }
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    // Most candidates are short words with capitals (`Widget number 3`) that decode to
    // bytes which are not text: restore and decode those on the stack, with the same
    // engines in the same order, so only text that is kept is allocated.
    const STACK: usize = 256;
    if t.len() <= STACK {
        let mut restored = [0u8; STACK];
        for (dst, &b) in restored.iter_mut().zip(t.as_bytes()) {
            *dst = if b == b' ' { b'+' } else { b };
        }
        let restored = restored.get(..t.len())?;
        let end = restored.len() - restored.iter().rev().take_while(|&&b| b == b'=').count();
        let trimmed = restored.get(..end)?;
        // Room for the engines' estimate of any input up to STACK bytes, so the decode
        // cannot fail for want of space (and would fall back to the heap if it did).
        let mut out = [0u8; STACK / 4 * 3];
        let decoded = match STANDARD_NO_PAD.decode_slice(trimmed, &mut out) {
            Err(base64::DecodeSliceError::DecodeError(_)) => {
                URL_SAFE_NO_PAD.decode_slice(trimmed, &mut out)
            }
            other => other,
        };
        match decoded {
            Ok(n) => return printable_text(out.get(..n)?),
            Err(base64::DecodeSliceError::DecodeError(_)) => return None,
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => {}
        }
    }
    base64_text_heap(t)
}

/// Whether the trimmed value `t` is a candidate for [`base64_text`] at all.
fn base64_text_checks(t: &str) -> bool {
    if t.len() < 12 || t.len() > 64 * 1024 {
        return false;
    }
    // Form decoding turns the `+` of standard base64 into a space: a space counts as `+`.
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b' '))
    {
        return false;
    }
    // Words and numbers are valid base64 too: require a mix of cases or digits.
    let has_upper = t.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = t.bytes().any(|b| b.is_ascii_lowercase());
    has_upper && has_lower
}

/// The decoding of [`base64_text`] for a candidate of any length, on the heap.
fn base64_text_heap(t: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let restored;
    let t = if t.contains(' ') {
        restored = t.replace(' ', "+");
        restored.as_str()
    } else {
        t
    };
    let trimmed = t.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    printable_text(&bytes)
}

/// `bytes` as text when they are UTF-8 and at least nine tenths printable.
fn printable_text(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_ascii_whitespace())
        .count();
    (printable * 10 >= text.chars().count() * 9).then(|| text.to_owned())
}

/// [`normalise`] without a copy when there is nothing to do: ASCII with no escape and no
/// upper-case letter (keys, numbers, most identifiers) is its own normal form.
pub(crate) fn normalise_cow(value: &str) -> std::borrow::Cow<'_, str> {
    if value
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase() && !matches!(b, b'%' | b'&' | b'\\' | 0))
    {
        return std::borrow::Cow::Borrowed(value);
    }
    std::borrow::Cow::Owned(normalise(value))
}

/// The text a detector sees for a value already URL-decoded once by the parser: further
/// percent-decoding, HTML entities, JS escapes, NUL removal and lowercase.
#[must_use]
pub fn normalise(value: &str) -> String {
    // Most values carry no escape of any kind: nothing to decode, only case to fold. This is
    // what the general path below computes for them, without its copies.
    if !value.contains(['%', '&', '\\', '\0']) {
        if value.is_ascii() {
            return value.to_ascii_lowercase();
        }
        return value
            .chars()
            .map(fold_fullwidth)
            .collect::<String>()
            .to_lowercase();
    }
    let mut s = if value.contains('%') {
        url_decode_multi(value, false)
    } else {
        value.to_owned()
    };
    for _ in 0..2 {
        let next = js_unescape(&html_entities(&s));
        if next == s {
            break;
        }
        s = next;
        if s.contains('%') {
            s = url_decode_multi(&s, false);
        }
    }
    s.retain(|c| c != '\0');
    // Full-width forms typed or pasted as characters, not only as escapes.
    if !s.is_ascii() {
        s = s.chars().map(fold_fullwidth).collect();
    }
    s.to_lowercase()
}

/// Collapses `//`, `/./` and `/../` in an already decoded path (backslashes count as slashes).
/// Leading `..` that would climb above the root are dropped.
#[must_use]
pub fn collapse_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Removes shell quoting tricks (`c''at`, `c\at`, `$@`, `${IFS}`, `^`) so command names
/// become visible to the command-injection signatures.
#[must_use]
pub fn shell_fold(s: &str) -> String {
    if !s.contains(['$', '\\', '^', '\'', '"']) {
        return s.to_owned();
    }
    let s = s
        .replace("${ifs}", " ")
        .replace("$ifs", " ")
        .replace("$@", "")
        .replace("$*", "");
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p));
        let next = chars.get(i + 1);
        let word = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == '/');
        match c {
            '\\' | '^' => {}
            '\'' | '"' if word(prev) || word(next) => {}
            _ => out.push(*c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_cow_borrows_only_what_is_already_normal() {
        for v in ["sku", "19.99", "c-123", "a b", "", "mary@example.com"] {
            assert!(
                matches!(normalise_cow(v), std::borrow::Cow::Borrowed(_)),
                "{v}"
            );
        }
        for v in [
            "SKU-1",
            "%27",
            "a&#60;b",
            "\\x3c",
            "nul\0",
            "caf\u{e9}",
            "\u{ff1c}",
        ] {
            assert!(
                matches!(normalise_cow(v), std::borrow::Cow::Owned(_)),
                "{v}"
            );
            assert_eq!(normalise_cow(v), normalise(v), "{v}");
        }
    }

    #[test]
    fn decodes_double_percent_encoding() {
        assert_eq!(url_decode_multi("%253Cscript%253E", false), "<script>");
    }

    #[test]
    fn decodes_iis_unicode_and_fullwidth() {
        assert_eq!(url_decode_multi("%u003c%uff53", false), "<s");
    }

    #[test]
    fn decodes_overlong_utf8_dot() {
        assert_eq!(url_decode_multi("%c0%ae%c0%ae/", false), "../");
    }

    #[test]
    fn leaves_broken_escapes_alone() {
        assert_eq!(url_decode_multi("100%+sure%zz%", true), "100% sure%zz%");
    }

    #[test]
    fn decodes_numeric_and_named_entities() {
        assert_eq!(html_entities("&#60;a&#x3E;&lt;&colon&amp;x"), "<a><:&x");
        assert_eq!(html_entities("AT&T &unknown;"), "AT&T &unknown;");
    }

    #[test]
    fn decodes_js_and_css_escapes() {
        assert_eq!(js_unescape(r"\x3cb\u003e\u{41}\074"), "<b>A<");
        assert_eq!(js_unescape(r"\3c x"), "<x");
        assert_eq!(js_unescape(r"it\'s"), "it's");
    }

    #[test]
    fn decodes_base64_only_when_it_looks_encoded() {
        assert_eq!(
            base64_text("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==").as_deref(),
            Some("<script>alert(1)</script>")
        );
        assert_eq!(base64_text("helloworldhelloworld"), None);
        assert_eq!(base64_text("short"), None);
    }

    #[test]
    fn normalises_layers_of_encoding_and_case() {
        assert_eq!(normalise("%26lt%3BSCRIPT%26gt%3B"), "<script>");
    }

    /// What `normalise` computed before its fast path, for values without escapes.
    fn normalise_slow(value: &str) -> String {
        let mut s = value.to_owned();
        s.retain(|c| c != '\0');
        if !s.is_ascii() {
            s = s.chars().map(fold_fullwidth).collect();
        }
        s.to_lowercase()
    }

    #[test]
    fn plain_values_are_only_case_folded() {
        for v in [
            "Blue Widgets",
            "SKU-00042",
            "ÉCOLE ＡＢＣ",
            "İstanbul",
            "",
            "19.99",
        ] {
            assert_eq!(normalise(v), normalise_slow(v), "{v}");
        }
        assert_eq!(normalise("ＡＢＣ"), "abc");
    }

    #[test]
    fn base64_on_the_stack_decodes_as_on_the_heap() {
        use base64::Engine as _;
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ];
        let mut state: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for i in 0..20_000u64 {
            let len = usize::try_from(next() % 200).unwrap();
            let plain: Vec<u8> = (0..len)
                .map(|_| {
                    let b = u8::try_from(next() % 256).unwrap();
                    // Mostly text, so that many decode to something kept.
                    if next() % 8 == 0 {
                        b
                    } else {
                        b' ' + b % 95
                    }
                })
                .collect();
            let mut enc = engines[usize::try_from(i % 2).unwrap()].encode(&plain);
            // Spaces for plus signs, lost padding, stray characters, cut ends.
            match next() % 5 {
                0 => enc = enc.replace('+', " "),
                1 => enc = enc.trim_end_matches('=').to_owned(),
                2 if !enc.is_empty() => {
                    enc.insert(usize::try_from(next()).unwrap() % enc.len(), '-')
                }
                3 => enc.truncate(usize::try_from(next()).unwrap() % (enc.len() + 1)),
                _ => {}
            }
            let t = enc.trim();
            let stack = base64_text(&enc);
            decoded += usize::from(stack.is_some());
            if t.len() >= 12 {
                let heap = if base64_text_checks(t) {
                    base64_text_heap(t)
                } else {
                    None
                };
                assert_eq!(stack, heap, "{enc:?}");
            }
        }
        assert!(decoded > 500, "too few decoded: {decoded}");
    }

    #[test]
    fn decodes_base64_whose_plus_signs_became_spaces() {
        // `<b>>?` encodes with `+`; form decoding turned it into a space.
        let encoded = base64::engine::general_purpose::STANDARD.encode("<b>>?<b>>?<b>>?");
        assert!(encoded.contains('+'), "{encoded}");
        let spaced = encoded.replace('+', " ");
        assert_eq!(base64_text(&spaced).as_deref(), Some("<b>>?<b>>?<b>>?"));
        assert_eq!(base64_text("Deliver to the back door, ring twice"), None);
    }

    #[test]
    fn collapses_dot_segments_and_double_slashes() {
        assert_eq!(collapse_path("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(collapse_path("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(collapse_path("/api/"), "/api/");
    }

    #[test]
    fn folds_shell_quoting_tricks() {
        assert_eq!(shell_fold("c'a't /e\"t\"c/pa\\sswd"), "cat /etc/passwd");
        assert_eq!(shell_fold("cat${ifs}/etc"), "cat /etc");
    }
}
