//! Spreadsheet-safe CSV (issue 28 item 5): a field whose value starts with
//! `=`, `+`, `-`, `@`, a tab or a carriage return is read by spreadsheets as
//! a formula (`=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)`); such a value gets a
//! leading `'`, which spreadsheets show as text, as the Audit CSV does.
//! Everything else of the CSV (COPY's quoting, NULL as an empty unquoted
//! field, record ends) is kept byte for byte.

/// Does a field's value start a formula?
fn risky(first: Option<char>) -> bool {
    matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r'))
}

/// `csv` (whole records, as `COPY ... TO STDOUT CSV` writes them: `,`
/// between fields, `"` quoting with `""` inside, `\n` after each record)
/// with every risky field's value prefixed with `'`.
pub fn spreadsheet_safe(csv: &str) -> String {
    let mut out = String::with_capacity(csv.len() + csv.len() / 16);
    let mut chars = csv.chars().peekable();
    // At the start of a field?
    let mut field_start = true;
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            out.push(c);
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    out.push(chars.next().expect("peeked"));
                } else {
                    in_quotes = false;
                }
            }
            continue;
        }
        if field_start {
            field_start = false;
            if c == '"' {
                out.push('"');
                in_quotes = true;
                // The value's first character: `""` is a quote, not risky.
                if risky(chars.peek().copied()) {
                    out.push('\'');
                }
                continue;
            }
            if risky(Some(c)) {
                out.push('\'');
            }
        }
        out.push(c);
        if c == ',' || c == '\n' {
            field_start = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_prefixed_everything_else_kept() {
        let copy = "1,=HYPERLINK(\"\"x\"\"),plain\n2,\"=1+2,3\",+cmd|' /C calc'!A0\n3,@SUM(1),-5\n4,\"\tx\",\"\rline\"\n5,,\"\"\n6,\"\"\"=q\",a-b\n";
        let want = "1,'=HYPERLINK(\"\"x\"\"),plain\n2,\"'=1+2,3\",'+cmd|' /C calc'!A0\n3,'@SUM(1),'-5\n4,\"'\tx\",\"'\rline\"\n5,,\"\"\n6,\"\"\"=q\",a-b\n";
        assert_eq!(spreadsheet_safe(copy), want);
    }

    #[test]
    fn quoted_newlines_and_empty_input() {
        assert_eq!(spreadsheet_safe(""), "");
        assert_eq!(spreadsheet_safe("\"a\n=b\",-1\n"), "\"a\n=b\",'-1\n");
        assert_eq!(spreadsheet_safe("\"\\.\"\n"), "\"\\.\"\n");
        assert_eq!(spreadsheet_safe("x\n=y\n"), "x\n'=y\n");
    }
}
