//! Small context-aware checks that a regex alone expresses badly: shell brace expansion,
//! PHP comment folding, schemes split by whitespace, argument-name
//! heuristics and `Range` sanity. Pure functions over already normalised text.

/// Shell commands that brace expansion may assemble (`c{a,oun}t`, `{,ifconfig}`).
pub(crate) const BRACE_COMMANDS: &str = r"^(?:cat|ls|id|whoami|uname|ifconfig|ipconfig|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|dash|python\d?|perl|ruby|php|echo|ping|nslookup|rm|chmod|chown|env|printenv|ps|netstat|base64|head|tail|more|less|nl|tac|find|xargs|awk|sed|grep|sleep|kill|touch|cp|mv|tar|busybox|socat|telnet)(?:\s|$)";

/// PHP calls through variables, arrays or string pieces, matched on [`php_fold`] output.
pub(crate) const PHP_INDIRECT_CALL: &str = concat!(
    // `$a()`, `$__[$_[1]](7)`, `${$s}['x'](1)`, `$O{0}(1)`.
    r#"\$+(?:[a-z_]\w*|\{[^{}()]{1,40}\})(?:\[[^()\]][^()]{0,39}?\]|\{[^(){}]{1,40}\})*\("#,
    // `(x)('uname')`, `($y)(...)`, `(system)(ls)`, `(['system'])[0](...)`.
    r#"|\((?:\$\w+|[a-z_]\w*)\)(?:\[\d+\]|\{\d+\})*\(['"$]"#,
    r#"|\(\[?['"]?(?:system|exec|shell_exec|passthru|popen|proc_open|assert|eval|phpinfo)['"]?\]?(?:\[\d+\]|\{\d+\})*\)(?:\[\d+\]|\{\d+\})*\("#,
    // `[system][0](ls)`.
    r#"|\[['"]?(?:system|exec|shell_exec|passthru|popen|proc_open|assert|phpinfo)['"]?\](?:\[\d+\]|\{\d+\})+\("#,
    // `(sy.(st).em)(...)`.
    r#"|\((?:['"][a-z_]*['"]|\([a-z_'"]*\)|[a-z_]+)(?:\.(?:['"][a-z_]*['"]|\([a-z_'"]*\)|[a-z_]+))+\)\("#,
);

/// Expands the first shell brace group with a comma (`c{a,oun}t` becomes `cat count`) in a
/// value that is one word, the way a shell would before running it. `None` when there is
/// nothing to expand.
pub(crate) fn brace_expand(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() > 256 || s.contains(char::is_whitespace) {
        return None;
    }
    let open = s.find('{')?;
    let close = open + s.get(open..)?.find('}')?;
    let inner = s.get(open + 1..close)?;
    if !inner.contains(',') || inner.contains(['{', '$']) {
        return None;
    }
    let (pre, post) = (s.get(..open)?, s.get(close + 1..)?);
    let words: Vec<String> = inner
        .split(',')
        .take(16)
        .map(|alt| format!("{pre}{alt}{post}"))
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Removes PHP comments and all whitespace, so `$a /*x*/ [1] //y\n ()` reads `$a[1]()`.
pub(crate) fn php_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r
                .find("*/")
                .and_then(|i| r.get(i + 2..))
                .unwrap_or_default();
            continue;
        }
        if rest.starts_with("//") || c == '#' {
            rest = rest
                .find('\n')
                .and_then(|i| rest.get(i + 1..))
                .unwrap_or_default();
            continue;
        }
        if !c.is_whitespace() {
            out.push(c);
        }
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out
}

/// A `javascript:` or `vbscript:` scheme that only appears once whitespace and control
/// characters are removed (`ja\tvascript:`): browsers ignore them inside a URL scheme.
pub(crate) fn hidden_script_scheme(s: &str) -> bool {
    if !s.contains(':') || !s.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let squashed: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    ["javascript:", "vbscript:"]
        .iter()
        .any(|k| squashed.matches(k).count() > s.matches(k).count())
}

/// Argument names that say "a file or directory to load": a remote URL there is an include.
pub(crate) fn include_param(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "path", "dir", "root", "include", "require", "inc", "template", "module", "conf",
    ];
    name.split(|c: char| !c.is_ascii_alphanumeric()).any(|tok| {
        WORDS.iter().any(|k| {
            tok.eq_ignore_ascii_case(k)
                || tok.len() > k.len() + 2
                    && tok
                        .get(tok.len() - k.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(k))
        })
    })
}

/// Argument names that carry a session or login token, beyond the well-known list
/// (`weblogicsession`, `koa.sess`, `next-auth.session-token`, `meteor_login_token`).
pub(crate) fn session_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| {
        matches!(t, "sess" | "session" | "sessid" | "cfsid")
            || t.ends_with("session") && !t.ends_with("ssession")
    }) || n.contains("login_token")
        || n.contains("session-token")
        || n.contains("session_token")
}

/// A `Range` header a server should refuse: a byte range whose end comes before its start,
/// or so many ranges that serving them amplifies the response.
pub(crate) fn bad_range(v: &str) -> bool {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return false;
    };
    let ranges: Vec<&str> = spec.split(',').map(str::trim).collect();
    if ranges.len() > 16 {
        return true;
    }
    ranges.iter().any(|r| {
        let Some((a, b)) = r.split_once('-') else {
            return true;
        };
        match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) => b < a,
            (Err(_), Err(_)) => true,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_one_brace_group_into_words() {
        assert_eq!(brace_expand("c{a,oun}t").as_deref(), Some("cat count"));
        assert_eq!(brace_expand("{,whoami}").as_deref(), Some("whoami"));
        assert_eq!(brace_expand("{uname,-a}").as_deref(), Some("uname -a"));
        assert_eq!(brace_expand("a plain {x,y} sentence"), None);
        assert_eq!(brace_expand("{\"json\":1}"), None);
    }

    #[test]
    fn folds_php_comments_and_whitespace() {
        assert_eq!(php_fold("$f /* c */ [2] // x\n ( 1 )"), "$f[2](1)");
        assert_eq!(php_fold("a # note\nb"), "ab");
    }

    #[test]
    fn finds_schemes_hidden_by_whitespace() {
        assert!(hidden_script_scheme("java\tscript:go()"));
        assert!(hidden_script_scheme("v\nb s\tcript:x"));
        assert!(!hidden_script_scheme("javascript: the good parts"));
        assert!(!hidden_script_scheme("meet at 10: bring java script books"));
    }

    #[test]
    fn recognises_include_and_session_names() {
        assert!(include_param("cfg[basepath]"));
        assert!(include_param("template"));
        assert!(!include_param("redirect"));
        assert!(include_param("Site_TEMPLATE"));
        assert!(include_param("cfg[BasePath]"));
        assert!(!include_param("xpath"));
        assert!(!include_param("inch"));
        assert!(session_like("app.session-token"));
        assert!(session_like("tomcatsession"));
        assert!(!session_like("sessions_total"));
        assert!(!session_like("possession"));
    }

    #[test]
    fn judges_range_headers() {
        assert!(!bad_range("bytes=0-99"));
        assert!(!bad_range("bytes=100-"));
        assert!(!bad_range("bytes=-500"));
        assert!(bad_range("bytes=10-2"));
        let many = format!("bytes={}", vec!["0-1"; 40].join(","));
        assert!(bad_range(&many));
    }
}
