//! The gate in front of `dashboard.query_as`: a small SQL tokenizer that
//! understands strings ('..', E'..'), quoted identifiers, dollar quotes and
//! comments, and a classifier that accepts exactly one SELECT / INSERT / UPDATE /
//! DELETE (writes with RETURNING) and refuses everything that could change the
//! session: SET, RESET, SET ROLE, DO, COPY, transaction control, several
//! statements, and calls of functions such as `set_config` or `dblink` — also
//! when hidden in a quoted identifier or schema-qualified.
//!
//! This is the first line. The extension also parses the statement with
//! Postgres' own parser, runs it with the caller's settings saved, and checks
//! afterwards that role and claims are untouched (src/impersonation.rs).

use crate::error::{Code, FbError, FbResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An unquoted word, lower-cased.
    Word(String),
    /// A "quoted identifier", as written (unescaped).
    Quoted(String),
    /// A string constant of any kind ('..', E'..', $tag$..$tag$).
    Str,
    /// A number or a $n parameter.
    Num,
    /// One punctuation or operator character.
    Punct(char),
}

fn syntax(msg: impl Into<String>) -> FbError {
    FbError::new(Code::SyntaxError, msg)
}

/// Split SQL into tokens, dropping comments and whitespace.
pub fn tokenize(sql: &str) -> FbResult<Vec<Tok>> {
    let s: Vec<char> = sql.chars().collect();
    let n = s.len();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_start = |c: char| c.is_alphabetic() || c == '_' || (c as u32) >= 0x80;
    let ident_cont = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || (c as u32) >= 0x80;
    while i < n {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && i + 1 < n && s[i + 1] == '-' {
            while i < n && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && i + 1 < n && s[i + 1] == '*' {
            // Postgres block comments nest.
            let mut depth = 0;
            loop {
                if i + 1 >= n {
                    return Err(syntax("unterminated /* comment"));
                }
                if s[i] == '/' && s[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (c == 'u' || c == 'U') && i + 2 < n && s[i + 1] == '&' && (s[i + 2] == '\'' || s[i + 2] == '"') {
            // U&'..' / U&".." can spell any name with escapes: not needed here.
            return Err(FbError::denied("Unicode-escaped strings and identifiers (U&'...') are not allowed in query_as"));
        } else if c == '\'' || ((c == 'e' || c == 'E') && i + 1 < n && s[i + 1] == '\'') {
            let backslash = c != '\'';
            i += if backslash { 2 } else { 1 };
            loop {
                if i >= n {
                    return Err(syntax("unterminated string constant"));
                }
                if backslash && s[i] == '\\' {
                    i += 2;
                    continue;
                }
                if s[i] == '\'' {
                    if i + 1 < n && s[i + 1] == '\'' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push(Tok::Str);
        } else if c == '"' {
            i += 1;
            let mut name = String::new();
            loop {
                if i >= n {
                    return Err(syntax("unterminated quoted identifier"));
                }
                if s[i] == '"' {
                    if i + 1 < n && s[i + 1] == '"' {
                        name.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(s[i]);
                i += 1;
            }
            out.push(Tok::Quoted(name));
        } else if c == '$' {
            if i + 1 < n && s[i + 1].is_ascii_digit() {
                i += 1;
                while i < n && s[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Tok::Num);
                continue;
            }
            // $tag$ ... $tag$
            let mut j = i + 1;
            while j < n && s[j] != '$' && ident_cont(s[j]) {
                j += 1;
            }
            if j >= n || s[j] != '$' {
                return Err(syntax("stray $ in statement"));
            }
            let tag: String = s[i..=j].iter().collect();
            let tag_chars: Vec<char> = tag.chars().collect();
            let mut k = j + 1;
            let mut found = None;
            while k + tag_chars.len() <= n {
                if s[k..k + tag_chars.len()] == tag_chars[..] {
                    found = Some(k);
                    break;
                }
                k += 1;
            }
            match found {
                Some(k) => i = k + tag_chars.len(),
                None => return Err(syntax("unterminated dollar-quoted string")),
            }
            out.push(Tok::Str);
        } else if c.is_ascii_digit() || (c == '.' && i + 1 < n && s[i + 1].is_ascii_digit()) {
            while i < n && (s[i].is_ascii_alphanumeric() || s[i] == '.' || s[i] == '_') {
                i += 1;
            }
            out.push(Tok::Num);
        } else if ident_start(c) {
            let st = i;
            while i < n && ident_cont(s[i]) {
                i += 1;
            }
            out.push(Tok::Word(s[st..i].iter().collect::<String>().to_lowercase()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub kind: Kind,
    /// The statement without a trailing semicolon.
    pub sql: String,
}

/// Functions (and prefixes of families) that must never be called through
/// query_as: they change settings or the role, reach outside the database,
/// touch files or large objects, signal backends, or run SQL given as text.
const FORBIDDEN_NAMES: &[&str] = &[
    "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_terminate_backend", "pg_cancel_backend",
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_promote", "pg_switch_wal",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "txid_current", "pg_notify", "pg_import_system_collations",
];
const FORBIDDEN_PREFIXES: &[&str] = &[
    "dblink", "lo_", "pg_file_", "pg_ls_", "pg_logical_", "pg_replication_", "pg_create_", "pg_drop_",
    "pg_advisory", "pg_try_advisory", "pg_stat_reset", "pg_backup_", "pg_start_backup", "pg_stop_backup",
];

pub fn forbidden_name(name: &str) -> bool {
    let n = name.to_lowercase();
    FORBIDDEN_NAMES.contains(&n.as_str()) || FORBIDDEN_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// The names of every function call in a raw parse tree printed by Postgres'
/// `nodeToString` (`{FUNCCALL :funcname ("schema" "name") ...}`): the names
/// the server's own parser saw, whatever the quoting, escapes or string rules
/// of the text were. Each name's components are unescaped and joined by '.'.
pub fn called_functions(tree: &str) -> Vec<String> {
    const MARK: &str = "{FUNCCALL :funcname (";
    let mut out = Vec::new();
    let mut rest = tree;
    while let Some(at) = rest.find(MARK) {
        let mut chars = rest[at + MARK.len()..].char_indices();
        let mut parts = Vec::new();
        let mut end = rest.len() - at - MARK.len();
        'list: while let Some((_, c)) = chars.next() {
            match c {
                ')' => {
                    end = chars.next().map(|(i, _)| i).unwrap_or(end);
                    break 'list;
                }
                '"' => {
                    let mut part = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, e)) = chars.next() {
                                    part.push(e);
                                }
                            }
                            '"' => break,
                            c => part.push(c),
                        }
                    }
                    parts.push(part);
                }
                _ => {}
            }
        }
        out.push(parts.join("."));
        rest = &rest[at + MARK.len() + end.min(rest.len() - at - MARK.len())..];
    }
    out
}

/// Whether a function named `qualified` (as `called_functions` gives it) is
/// one query_as refuses.
pub fn forbidden_call(qualified: &str) -> bool {
    forbidden_name(qualified.rsplit('.').next().unwrap_or(qualified))
}

/// Accept exactly one SELECT / INSERT / UPDATE / DELETE; refuse everything else.
pub fn classify(sql: &str) -> FbResult<Classified> {
    if sql.contains('\0') {
        return Err(FbError::invalid("the statement must not contain NUL characters"));
    }
    let toks = tokenize(sql)?;
    // One statement: a semicolon is allowed only as the very last token.
    if let Some(pos) = toks.iter().position(|t| *t == Tok::Punct(';')) {
        if pos != toks.len() - 1 {
            return Err(syntax("only one statement is allowed in query_as"));
        }
    }
    let toks: Vec<Tok> = toks.into_iter().filter(|t| *t != Tok::Punct(';')).collect();
    let first = match toks.first() {
        Some(Tok::Word(w)) => w.clone(),
        Some(Tok::Punct('(')) => "select".to_string(),
        None => return Err(syntax("the statement is empty")),
        _ => return Err(syntax("the statement must start with SELECT, WITH, INSERT, UPDATE or DELETE")),
    };
    let mut depth: i32 = 0;
    for t in &toks {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth < 0 {
                    return Err(syntax("unbalanced parentheses"));
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(syntax("unbalanced parentheses"));
    }
    for t in &toks {
        let name = match t {
            Tok::Word(w) => w.as_str(),
            Tok::Quoted(q) => q.as_str(),
            _ => continue,
        };
        if forbidden_name(name) {
            return Err(FbError::denied(format!(
                "{} may not be used in query_as: it could change the session or reach outside the database",
                name.chars().take(60).collect::<String>()
            )));
        }
    }
    let words: Vec<&str> = toks.iter().filter_map(|t| if let Tok::Word(w) = t { Some(w.as_str()) } else { None }).collect();
    let has = |w: &str| words.contains(&w);
    // A data-modifying word outside FOR [NO KEY] UPDATE locking clauses.
    let mut writes = false;
    for (i, w) in words.iter().enumerate() {
        match *w {
            "insert" | "delete" => writes = true,
            "update" => {
                let prev = if i > 0 { words[i - 1] } else { "" };
                if prev != "for" && prev != "key" {
                    writes = true;
                }
            }
            "merge" => return Err(FbError::denied("MERGE is not allowed in query_as")),
            _ => {}
        }
    }
    let kind = match first.as_str() {
        "select" | "with" | "values" | "table" => {
            if has("into") && !writes {
                return Err(FbError::denied("SELECT ... INTO is not allowed in query_as"));
            }
            if writes {
                Kind::Write
            } else {
                Kind::Read
            }
        }
        "insert" | "update" | "delete" => {
            if !has("returning") {
                return Err(FbError::invalid(format!(
                    "{} needs a RETURNING clause in query_as (the changed rows are returned and audited)",
                    first.to_uppercase()
                )));
            }
            Kind::Write
        }
        other => {
            return Err(FbError::denied(format!(
                "{} statements are not allowed in query_as: only one SELECT, INSERT, UPDATE or DELETE",
                other.to_uppercase().chars().take(40).collect::<String>()
            )))
        }
    };
    let trimmed = sql.trim_end();
    let trimmed = trimmed.strip_suffix(';').unwrap_or(trimmed);
    Ok(Classified { kind, sql: trimmed.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(sql: &str) -> Code {
        classify(sql).unwrap_err().code
    }

    #[test]
    fn accepts_the_four_statements() {
        assert_eq!(classify("select * from todos").unwrap().kind, Kind::Read);
        assert_eq!(classify("SELECT 1;").unwrap().sql, "SELECT 1");
        assert_eq!(classify("select * from t for update").unwrap().kind, Kind::Read);
        assert_eq!(classify("select * from t for no key update").unwrap().kind, Kind::Read);
        assert_eq!(classify("insert into todos(title) values ($1) returning *").unwrap().kind, Kind::Write);
        assert_eq!(classify("update todos set done = true returning id").unwrap().kind, Kind::Write);
        assert_eq!(classify("delete from todos where id = $1 returning id").unwrap().kind, Kind::Write);
        assert_eq!(classify("with x as (delete from t returning *) select * from x").unwrap().kind, Kind::Write);
        assert_eq!(classify("select 'set role postgres; set_config' as s -- set_config\n").unwrap().kind, Kind::Read);
        assert_eq!(classify("select $$ ; drop table t; $$, $a$ x $a$").unwrap().kind, Kind::Read);
        assert_eq!(classify("select /* ; /* nested ; */ */ 1").unwrap().kind, Kind::Read);
        assert_eq!(classify("select E'it\\'s ; here'").unwrap().kind, Kind::Read);
    }

    #[test]
    fn refuses_session_changes_and_other_statements() {
        for s in [
            "set role postgres", "SET LOCAL role service_role", "reset role", "reset all",
            "do $$ begin perform 1; end $$", "copy todos to stdout", "begin", "commit", "rollback",
            "savepoint a", "start transaction", "end", "abort", "prepare transaction 'x'",
            "create table x (a int)", "drop table todos", "grant all on todos to anon", "call p()",
            "execute p", "listen x", "notify x", "discard all", "lock todos", "vacuum", "load 'x'",
            "merge into t using s on true when matched then delete", "alter role anon superuser",
        ] {
            assert!(classify(s).is_err(), "{s} should be refused");
        }
        assert_eq!(code("set role postgres"), Code::InsufficientPrivilege);
    }

    #[test]
    fn refuses_several_statements() {
        assert_eq!(code("select 1; select 2"), Code::SyntaxError);
        assert_eq!(code("select 1; set role postgres"), Code::SyntaxError);
        assert_eq!(code("select 1;;"), Code::SyntaxError);
        assert_eq!(code(""), Code::SyntaxError);
        assert_eq!(code("  ;"), Code::SyntaxError);
    }

    #[test]
    fn refuses_function_escapes() {
        for s in [
            "select set_config('role', 'postgres', false)",
            "select pg_catalog.set_config('role', 'postgres', true)",
            "select \"set_config\"('role','postgres',false)",
            "select pg_catalog . \"SET_CONFIG\"('role','x',false)",
            "select dblink_exec('dbname=x', 'set role x')",
            "select lo_import('/etc/passwd')",
            "select pg_read_file('/etc/passwd')",
            "select query_to_xml('set role postgres', true, true, '')",
            "select pg_terminate_backend(1)",
            "select * from todos where id in (select set_config('role','postgres',true)::int)",
            "select U&\"\\0073et_config\"('role','postgres',false)",
            "select u&'x'",
        ] {
            assert_eq!(code(s), Code::InsufficientPrivilege, "{s}");
        }
    }

    #[test]
    fn finds_calls_in_a_printed_parse_tree() {
        let tree = r#"{SELECTSTMT :targetList ({RESTARGET :val {FUNCCALL :funcname ("pg_catalog" "set_config") :args ({A_CONST :val "role"})} } {RESTARGET :val {FUNCCALL :funcname ("odd\ \"name\)") :args <>}}) :fromClause ({RANGEFUNCTION :functions (({FUNCCALL :funcname ("query_to_xml") :args <>} <>))})}"#;
        assert_eq!(called_functions(tree), vec!["pg_catalog.set_config", "odd \"name)", "query_to_xml"]);
        assert!(forbidden_call("pg_catalog.set_config") && forbidden_call("query_to_xml") && forbidden_call("public.dblink_exec"));
        assert!(!forbidden_call("pg_catalog.count") && !forbidden_call("odd \"name)"));
        assert!(called_functions("{SELECTSTMT :targetList <>}").is_empty());
    }

    #[test]
    fn refuses_writes_without_returning_and_select_into() {
        assert_eq!(code("insert into t values (1)"), Code::InvalidParameter);
        assert_eq!(code("update t set a = 1"), Code::InvalidParameter);
        assert_eq!(code("select * into newt from t"), Code::InsufficientPrivilege);
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(code("select 'unterminated"), Code::SyntaxError);
        assert_eq!(code("select $x$ never closed"), Code::SyntaxError);
        assert_eq!(code("select /* open"), Code::SyntaxError);
        assert_eq!(code("select (1"), Code::SyntaxError);
        assert_eq!(code("select 1) union (select 2"), Code::SyntaxError);
        assert_eq!(code("select \"open"), Code::SyntaxError);
    }
}

/// A LIKE pattern matching `needle` anywhere, with `\`, `%` and `_` in the
/// needle taken literally (LIKE's default escape character is `\`).
pub fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod like_tests {
    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(super::contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(super::contains_pattern("x' or 1=1 --"), "%x' or 1=1 --%");
    }
}
