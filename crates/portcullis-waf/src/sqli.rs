//! SQL injection by tokenising, in the spirit of libinjection: the input is split into SQL
//! tokens three times (as written, as if it continued a single-quoted string, as if it
//! continued a double-quoted string) and the token sequence, not the raw text, decides. Prose
//! ("select your plan from the menu", "O'Brien") does not form the sequences an injection needs.

/// Token classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// String literal; `closed` when its closing quote was seen.
    Str { closed: bool },
    /// Number (decimal, hex `0x..`, binary `0b..`).
    Num,
    /// SQL keyword that starts or shapes a statement.
    Keyword,
    /// `UNION`.
    Union,
    /// `AND`, `OR`, `XOR`, `&&`, `||`, `NOT`.
    Logic,
    /// Comparison operators, including `LIKE`, `IS`, `IN`, `BETWEEN`, `REGEXP`.
    Compare,
    /// Arithmetic and bitwise operators.
    Arith,
    /// A word followed by `(`.
    Func,
    /// Any other word.
    Word,
    /// `@var` or `@@var`.
    Var,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// `--`, `#` or `/* */` comment.
    Comment,
    /// `.`.
    Dot,
    /// Anything else.
    Other,
}

/// One token: its class and its lowercase text (for keywords and functions), borrowed from
/// the input so tokenising allocates nothing per token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
}

const KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "insert",
    "into",
    "values",
    "update",
    "set",
    "delete",
    "drop",
    "create",
    "alter",
    "table",
    "database",
    "exec",
    "execute",
    "declare",
    "having",
    "group",
    "order",
    "by",
    "limit",
    "offset",
    "procedure",
    "waitfor",
    "delay",
    "shutdown",
    "truncate",
    "case",
    "when",
    "then",
    "else",
    "end",
    "distinct",
    "all",
    "top",
    "load_file",
    "outfile",
    "dumpfile",
    "information_schema",
    "sysobjects",
    "syscolumns",
    "pg_catalog",
    "grant",
    "revoke",
    "begin",
    "handler",
    "null",
    "true",
    "false",
    "collate",
    "cast",
    "convert",
    "char",
    "nchar",
    "varchar",
    "as",
    "join",
    "asc",
    "desc",
];

const LOGIC: &[&str] = &["and", "or", "xor", "not", "div", "mod"];
const COMPARE: &[&str] = &[
    "like", "is", "in", "between", "regexp", "rlike", "sounds", "glob", "match", "against",
];

/// Functions that have little use outside an injection.
const DANGEROUS_FUNCS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "sp_executesql",
    "sp_oacreate",
    "dbms_pipe",
    "utl_inaddr",
    "utl_http",
    "randomblob",
    "get_lock",
    "name_const",
    "geometrycollection",
    "multipoint",
    "polygon",
    "exp",
    "json_keys",
    "gtid_subset",
    "make_set",
    "elt",
    "ctxsys",
    "dbms_xmlgen",
    "xmltype",
];

/// Functions whose names hardly occur outside SQL.
const SQL_SPECIFIC_FUNCS: &[&str] = &[
    "concat_ws",
    "group_concat",
    "unhex",
    "db_name",
    "user_name",
    "schema_name",
    "table_name",
    "column_name",
    "current_user",
    "system_user",
    "session_user",
    "load_file",
    "char_length",
    "substring_index",
    "ascii",
    "hex",
    "version",
    "database",
    "mid",
    "ord",
    "chr",
    "is_srvrolemember",
    "has_dbaccess",
    "object_id",
    "col_name",
    "sha1",
    "md5",
    "charindex",
    "patindex",
    "quotename",
    "uncompress",
    "compress",
    "aes_decrypt",
    "aes_encrypt",
    "st_latfromgeohash",
    "pg_read_file",
    "pg_ls_dir",
    "lo_import",
    "lo_export",
    "current_database",
    "string_agg",
    "array_agg",
    "xmlagg",
    "listagg",
    "to_char",
    "to_number",
    "nvl",
    "decode",
    "instr",
];

/// Functions that make a comparison or breakout look like SQL.
const SQL_FUNCS: &[&str] = &[
    "concat",
    "concat_ws",
    "group_concat",
    "char",
    "chr",
    "ascii",
    "substring",
    "substr",
    "mid",
    "hex",
    "unhex",
    "version",
    "database",
    "user",
    "current_user",
    "system_user",
    "schema",
    "count",
    "length",
    "len",
    "if",
    "iif",
    "ifnull",
    "isnull",
    "nullif",
    "coalesce",
    "cast",
    "convert",
    "ord",
    "lower",
    "upper",
    "md5",
    "sha1",
    "rand",
    "floor",
    "now",
    "left",
    "right",
    "select",
    "waitfor",
    "db_name",
    "user_name",
    "host_name",
    "reverse",
    "replace",
    "instr",
    "position",
    "case",
    "exists",
];

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$') || b >= 0x80
}

/// Tokenises `s` (lowercase expected). `quote` starts the input inside a string literal.
pub(crate) fn tokenize<'a>(s: &'a str, quote: Option<u8>, max: usize) -> Vec<Token<'a>> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let push = |toks: &mut Vec<Token<'a>>, kind: Kind, text: &'a str| {
        toks.push(Token { kind, text });
    };
    if let Some(q) = quote {
        let end = b.iter().position(|&c| c == q);
        match end {
            Some(e) => {
                push(&mut toks, Kind::Str { closed: true }, "");
                i = e + 1;
            }
            None => return toks,
        }
    }
    while toks.len() < max {
        let Some(&c) = b.get(i) else { break };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0xa0 => i += 1,
            b'\'' | b'"' | b'`' => {
                let rest = b.get(i + 1..).unwrap_or_default();
                match rest.iter().position(|&x| x == c) {
                    Some(e) if c == b'`' => {
                        // Backticks quote identifiers.
                        push(&mut toks, Kind::Word, "`");
                        i += e + 2;
                    }
                    Some(e) => {
                        push(&mut toks, Kind::Str { closed: true }, "");
                        i += e + 2;
                    }
                    None => {
                        push(&mut toks, Kind::Str { closed: false }, "");
                        i = b.len();
                    }
                }
            }
            b'0'..=b'9' => {
                let n = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|x| x.is_ascii_alphanumeric() || **x == b'.')
                    .count();
                let text = s.get(i..i + n).unwrap_or_default();
                let numeric = text.starts_with("0x")
                    || text.starts_with("0b")
                    || text
                        .bytes()
                        .all(|x| x.is_ascii_digit() || x == b'.' || x == b'e');
                push(
                    &mut toks,
                    if numeric { Kind::Num } else { Kind::Word },
                    text,
                );
                i += n.max(1);
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let n = 1 + b
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|x| x.is_ascii_alphanumeric())
                    .count();
                push(&mut toks, Kind::Num, "");
                i += n;
            }
            b'@' => {
                let n = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .skip_while(|x| **x == b'@')
                    .take_while(|x| is_word_byte(**x))
                    .count();
                let at = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|x| **x == b'@')
                    .count();
                push(&mut toks, Kind::Var, "");
                i += at + n;
            }
            b'-' | b'#' if c == b'#' || b.get(i + 1) == Some(&b'-') => {
                let end = b
                    .get(i..)
                    .and_then(|r| r.iter().position(|&x| x == b'\n'))
                    .map_or(b.len(), |p| i + p);
                // Keep the comment's text: a short tail (`--`, `-- -`, `#`) ends an injection,
                // a long one is prose ("#2 circular needle").
                push(&mut toks, Kind::Comment, s.get(i..end).unwrap_or_default());
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // MySQL runs `/*!50000 code */`: treat its body as code.
                if b.get(i + 2) == Some(&b'!') {
                    i += 3;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    continue;
                }
                let end = b
                    .get(i + 2..)
                    .and_then(|r| r.windows(2).position(|w| w == b"*/"));
                match end {
                    Some(e) => {
                        // A comment glued between two words (un/**/ion) is not whitespace in
                        // SQL, but it is in evasions aimed at naive filters: keep it as a
                        // comment token; the fingerprint skips comments.
                        push(&mut toks, Kind::Comment, "/*");
                        i += e + 4;
                    }
                    None => {
                        push(&mut toks, Kind::Comment, "/*");
                        i = b.len();
                    }
                }
            }
            b'*' if b.get(i + 1) == Some(&b'/') => i += 2,
            b'(' => {
                push(&mut toks, Kind::LParen, "(");
                i += 1;
            }
            b')' => {
                push(&mut toks, Kind::RParen, ")");
                i += 1;
            }
            b',' => {
                push(&mut toks, Kind::Comma, ",");
                i += 1;
            }
            b';' => {
                push(&mut toks, Kind::Semi, ";");
                i += 1;
            }
            b'.' => {
                push(&mut toks, Kind::Dot, ".");
                i += 1;
            }
            b'=' | b'<' | b'>' | b'!' => {
                let n = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|x| matches!(x, b'=' | b'<' | b'>' | b'!'))
                    .count();
                let kind = if s.get(i..i + n) == Some("!") {
                    Kind::Logic
                } else {
                    Kind::Compare
                };
                push(&mut toks, kind, s.get(i..i + n).unwrap_or_default());
                i += n;
            }
            b'&' | b'|' => {
                if b.get(i + 1) == Some(&c) {
                    push(&mut toks, Kind::Logic, if c == b'&' { "&&" } else { "||" });
                    i += 2;
                } else {
                    push(&mut toks, Kind::Arith, "");
                    i += 1;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'~' => {
                push(&mut toks, Kind::Arith, s.get(i..=i).unwrap_or_default());
                i += 1;
            }
            c if is_word_byte(c) => {
                let n = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|x| is_word_byte(**x))
                    .count();
                let word = s.get(i..i + n).unwrap_or_default();
                i += n;
                let next_non_space = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .find(|x| !x.is_ascii_whitespace());
                let kind = if word == "union" {
                    Kind::Union
                } else if LOGIC.contains(&word) {
                    Kind::Logic
                } else if COMPARE.contains(&word) {
                    Kind::Compare
                } else if next_non_space == Some(&b'(') {
                    Kind::Func
                } else if KEYWORDS.contains(&word) {
                    Kind::Keyword
                } else {
                    Kind::Word
                };
                push(&mut toks, kind, word);
            }
            _ => {
                push(&mut toks, Kind::Other, "");
                i += 1;
            }
        }
    }
    toks
}

fn is_value(t: &Token<'_>) -> bool {
    matches!(
        t.kind,
        Kind::Num | Kind::Str { .. } | Kind::Var | Kind::Func | Kind::LParen
    ) || (t.kind == Kind::Word && t.text != "`")
        || (t.kind == Kind::Keyword && matches!(t.text, "null" | "true" | "false"))
}

fn is_kw(t: Option<&Token<'_>>, words: &[&str]) -> bool {
    t.is_some_and(|t| {
        matches!(t.kind, Kind::Keyword | Kind::Func | Kind::Word) && words.contains(&t.text)
    })
}

const STACKED: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "create", "alter", "exec", "execute",
    "declare", "shutdown", "truncate", "waitfor", "set", "grant", "begin", "handler", "call",
    "rename", "load", "if", "union",
];

/// Why a token sequence is an injection, if it is.
// One arm per pattern reads better than guards folded into the match.
#[allow(clippy::collapsible_match)]
fn judge(toks: &[Token<'_>], quoted: bool) -> Option<&'static str> {
    // Comments are whitespace to the grammar below.
    let t: Vec<&Token<'_>> = toks.iter().filter(|t| t.kind != Kind::Comment).collect();
    let trailing_comment = toks
        .last()
        .is_some_and(|t| t.kind == Kind::Comment && t.text.trim().len() <= 4);
    for (i, tok) in t.iter().enumerate() {
        let next = t.get(i + 1).copied();
        let after = t.get(i + 2).copied();
        match tok.kind {
            Kind::Union => {
                let mut j = i + 1;
                while t
                    .get(j)
                    .is_some_and(|x| x.kind == Kind::LParen || is_kw(Some(x), &["all", "distinct"]))
                {
                    j += 1;
                }
                if is_kw(t.get(j).copied(), &["select"]) {
                    return Some("union select");
                }
            }
            Kind::Semi if is_kw(next, STACKED) && stacked(&t, i + 1) => {
                return Some("stacked query")
            }
            Kind::Func
                if DANGEROUS_FUNCS.contains(&tok.text)
                    || SQL_SPECIFIC_FUNCS.contains(&tok.text) =>
            {
                return Some("dangerous sql function")
            }
            Kind::Keyword | Kind::Word
                if matches!(
                    tok.text,
                    "information_schema" | "sysobjects" | "syscolumns" | "pg_catalog" | "mysql"
                ) && next.is_some_and(|n| n.kind == Kind::Dot) =>
            {
                return Some("catalog access")
            }
            Kind::Keyword if tok.text == "waitfor" && is_kw(next, &["delay", "time"]) => {
                return Some("time delay")
            }
            Kind::Keyword
                if matches!(tok.text, "into") && is_kw(next, &["outfile", "dumpfile"]) =>
            {
                return Some("file write")
            }
            Kind::Keyword if tok.text == "select" => {
                if select_statement(&t, i) {
                    return Some("select statement");
                }
            }
            Kind::Keyword if tok.text == "insert" && is_kw(next, &["into"]) => {
                if t.iter()
                    .skip(i)
                    .any(|x| x.text == "values" || x.text == "select")
                {
                    return Some("insert statement");
                }
            }
            Kind::Keyword if tok.text == "drop" && is_kw(next, &["table", "database"]) => {
                return Some("drop statement")
            }
            Kind::Keyword if tok.text == "delete" && is_kw(next, &["from"]) => {
                return Some("delete statement")
            }
            Kind::Keyword
                if tok.text == "update"
                    && next.is_some_and(|n| n.kind == Kind::Word)
                    && is_kw(after, &["set"]) =>
            {
                return Some("update statement")
            }
            Kind::Keyword
                if matches!(tok.text, "exec" | "execute")
                    && next.is_some_and(|n| {
                        n.text.starts_with("xp_")
                            || n.text.starts_with("sp_")
                            || n.kind == Kind::Var
                    }) =>
            {
                return Some("procedure call")
            }
            Kind::Keyword if tok.text == "declare" && next.is_some_and(|n| n.kind == Kind::Var) => {
                return Some("declare")
            }
            _ => {}
        }
    }
    // Boolean or comparison injection: value, logic operator, then a comparison or a call.
    let start = usize::from(quoted);
    if quoted {
        // Input breaks out of a string: 'x' ... What follows the break decides.
        let mut j = 1;
        while t.get(j).is_some_and(|x| x.kind == Kind::RParen) {
            j += 1;
        }
        let n = t.get(j).copied();
        match n.map(|x| x.kind) {
            None if trailing_comment && t.len() == 1 && toks.len() <= 3 => {
                return Some("string breakout with comment")
            }
            Some(Kind::Logic) => {
                if tautology(&t, j + 1) || trailing_comment {
                    return Some("string breakout with boolean");
                }
            }
            Some(Kind::Compare | Kind::Arith) => {
                if t.get(j + 1).is_some_and(|x| is_value(x))
                    && (t.get(j + 2).is_some_and(|x| x.kind == Kind::Logic) || trailing_comment)
                {
                    return Some("string breakout with expression");
                }
            }
            Some(Kind::Keyword)
                if n.is_some_and(|x| {
                    matches!(
                        x.text,
                        "having" | "group" | "order" | "procedure" | "limit" | "waitfor"
                    )
                }) =>
            {
                return Some("string breakout with clause")
            }
            _ => {}
        }
    }
    for i in start..t.len() {
        let tok = t.get(i).copied();
        if tok.is_some_and(|x| x.kind == Kind::Logic && x.text != "!" && x.text != "not")
            && i > 0
            && t.get(i - 1).is_some_and(|p| {
                matches!(
                    p.kind,
                    Kind::Num | Kind::RParen | Kind::Str { closed: true }
                ) || (p.kind == Kind::Word && i == 1)
            })
            && tautology(&t, i + 1)
        {
            return Some("boolean expression");
        }
    }
    // order by / group by probing: 1 order by 1--
    if t.first()
        .is_some_and(|x| matches!(x.kind, Kind::Num | Kind::Str { .. }))
        && is_kw(t.get(1).copied(), &["order", "group"])
        && is_kw(t.get(2).copied(), &["by"])
        && t.get(3).is_some_and(|x| x.kind == Kind::Num)
    {
        return Some("order by probe");
    }
    None
}

/// Whether the statement after `;` at `k` continues like SQL rather than prose.
fn stacked(t: &[&Token<'_>], k: usize) -> bool {
    let Some(kw) = t.get(k) else { return false };
    let n = t.get(k + 1).copied();
    let nk = n.map(|x| x.kind);
    match kw.text {
        "shutdown" => true,
        "select" => {
            select_statement(t, k) || matches!(nk, Some(Kind::Num | Kind::Var | Kind::Func))
        }
        "drop" | "truncate" | "create" | "alter" | "rename" => is_kw(
            n,
            &[
                "table",
                "database",
                "user",
                "procedure",
                "function",
                "view",
                "index",
                "schema",
            ],
        ),
        "exec" | "execute" | "call" => matches!(nk, Some(Kind::Word | Kind::Var | Kind::Func)),
        "waitfor" => is_kw(n, &["delay", "time"]),
        "declare" | "set" => nk == Some(Kind::Var),
        "insert" => is_kw(n, &["into"]),
        "update" => nk == Some(Kind::Word) && is_kw(t.get(k + 2).copied(), &["set"]),
        "delete" => is_kw(n, &["from"]),
        "if" => nk == Some(Kind::LParen) || kw.kind == Kind::Func,
        _ => n.is_some_and(|x| matches!(x.kind, Kind::Num | Kind::Var | Kind::Str { .. })),
    }
}

/// `a = b`, `'a'='a'`, `1`, `sleep(..)`, `(select ..)` after a logic operator.
fn tautology(t: &[&Token<'_>], i: usize) -> bool {
    let mut i = i;
    while t
        .get(i)
        .is_some_and(|x| x.kind == Kind::LParen || (x.kind == Kind::Logic && x.text == "not"))
    {
        i += 1;
    }
    let Some(a) = t.get(i) else { return false };
    if a.kind == Kind::Func && (SQL_FUNCS.contains(&a.text) || DANGEROUS_FUNCS.contains(&a.text)) {
        return true;
    }
    if a.kind == Kind::Keyword && matches!(a.text, "select" | "exists") {
        return true;
    }
    if !is_value(a) {
        return false;
    }
    // Skip a dotted name or a function argument list.
    let mut j = i + 1;
    while t.get(j).is_some_and(|x| x.kind == Kind::Dot) {
        j += 2;
    }
    match t.get(j) {
        Some(op) if op.kind == Kind::Compare => {
            let mut k = j + 1;
            while t.get(k).is_some_and(|x| x.kind == Kind::LParen) {
                k += 1;
            }
            t.get(k)
                .is_some_and(|b| is_value(b) || b.kind == Kind::Keyword)
        }
        Some(op) if op.kind == Kind::Arith => {
            // 1 or 2-1=1, 'a'||'b'
            t.get(j + 1).is_some_and(|b| is_value(b))
                && t.get(j + 2).is_some_and(|x| x.kind == Kind::Compare)
        }
        None => matches!(a.kind, Kind::Num | Kind::Str { closed: false }) && i >= 2,
        _ => false,
    }
}

/// `select <list> from <name>` with a list that looks like columns, not prose.
fn select_statement(t: &[&Token<'_>], i: usize) -> bool {
    let mut j = i + 1;
    let mut items = 0;
    let mut prev_word = false;
    while let Some(x) = t.get(j) {
        if x.kind == Kind::Keyword && x.text == "from" {
            return items > 0;
        }
        match x.kind {
            Kind::Word | Kind::Num | Kind::Str { .. } | Kind::Var => {
                if prev_word {
                    // Two bare words in a row: prose ("select your plan from").
                    return false;
                }
                prev_word = true;
                items += 1;
            }
            Kind::Comma | Kind::Dot | Kind::Arith => prev_word = false,
            Kind::Func | Kind::LParen | Kind::RParen => {
                prev_word = false;
                items += 1;
            }
            Kind::Keyword if matches!(x.text, "distinct" | "all" | "top" | "null") => {
                prev_word = false;
            }
            Kind::Keyword if x.text == "as" => prev_word = false,
            _ => return false,
        }
        j += 1;
        if j > i + 64 {
            return false;
        }
    }
    // `select 1,2,3` and `select @@version` stand alone too when they are short column lists.
    items >= 2 && t.get(i + 2).is_some_and(|x| x.kind == Kind::Comma)
}

/// Whether `s` (normalised, lowercase) is a SQL injection, with a short reason.
#[must_use]
pub fn detect(s: &str) -> Option<&'static str> {
    const MAX_TOKENS: usize = 256;
    if s.len() < 2 {
        return None;
    }
    if let Some(r) = judge(&tokenize(s, None, MAX_TOKENS), false) {
        return Some(r);
    }
    for q in [b'\'', b'"'] {
        if s.as_bytes().contains(&q) {
            let toks = tokenize(s, Some(q), MAX_TOKENS);
            if let Some(r) = judge(&toks, true) {
                return Some(r);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::detect;

    fn sqli(s: &str) -> bool {
        detect(&s.to_lowercase()).is_some()
    }

    #[test]
    fn detects_union_select() {
        assert!(sqli("-1 UNION ALL SELECT username, password FROM users--"));
        assert!(sqli("1 union/**/select null,null"));
        assert!(sqli("1 /*!50000union*/ /*!50000select*/ 1,2"));
    }

    #[test]
    fn detects_string_breakout_tautologies() {
        assert!(sqli("x' OR 'x'='x"));
        assert!(sqli("admin'--"));
        assert!(sqli("') or ('a'='a"));
        assert!(sqli("\" or 1=1 --"));
        assert!(sqli("abc' and sleep(3) and 'a'='a"));
    }

    #[test]
    fn detects_numeric_tautologies_and_stacked_queries() {
        assert!(sqli("7 or 1=1"));
        assert!(sqli("12; DROP TABLE accounts"));
        assert!(sqli("1 AND (SELECT 4 FROM dual)=4"));
        assert!(sqli("1; waitfor delay '0:0:9'"));
        assert!(sqli("2 and benchmark(900000,md5(1))"));
    }

    #[test]
    fn detects_catalog_access_and_file_writes() {
        assert!(sqli(
            "0 union(select table_name from information_schema.tables)"
        ));
        assert!(sqli("1 into outfile '/var/www/x.php'"));
    }

    #[test]
    fn passes_names_with_apostrophes() {
        assert!(!sqli("O'Brien"));
        assert!(!sqli("Rock 'n' roll"));
        assert!(!sqli("it's the customer's order"));
    }

    #[test]
    fn passes_sql_keywords_in_prose() {
        assert!(!sqli("select your plan from the menu"));
        assert!(!sqli("Please update your profile and set a password"));
        assert!(!sqli("3 or 4 rooms"));
        assert!(!sqli("drop me a line; select a date"));
        assert!(!sqli("\"black\" and \"white\""));
        assert!(!sqli("we union members select leaders"));
    }
}
