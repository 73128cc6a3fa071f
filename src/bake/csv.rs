//! One CSV record, as buildx splits `type=registry,ref=x` option strings (quotes allowed).

/// Splits one CSV line into fields. Quoted fields may contain commas and `""` escapes.
pub fn fields(input: &str, sep: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = input.chars().peekable();
    let mut in_quotes = false;
    let mut field_started_quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.is_empty() && !field_started_quoted {
            in_quotes = true;
            field_started_quoted = true;
        } else if c == '"' {
            return Err(format!(
                "parse error: bare \" in non-quoted field in {input:?}"
            ));
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
            field_started_quoted = false;
        } else {
            if field_started_quoted {
                return Err(format!("parse error: extraneous \" in field in {input:?}"));
            }
            cur.push(c);
        }
    }
    if in_quotes {
        return Err(format!(
            "parse error: extraneous or missing \" in quoted-field in {input:?}"
        ));
    }
    out.push(cur);
    Ok(out)
}

/// Writes `key=value`, quoted as a CSV field when it contains a comma or a quote.
pub fn pair(key: &str, value: &str) -> String {
    let p = format!("{key}={value}");
    if p.contains(',') || p.contains('"') || p.contains('\n') {
        format!("\"{}\"", p.replace('"', "\"\""))
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(fields("a,b", ',').unwrap(), vec!["a", "b"]);
        assert_eq!(
            fields("type=x,\"k=a,b\"", ',').unwrap(),
            vec!["type=x", "k=a,b"]
        );
        assert_eq!(fields("\"a\"\"b\"", ',').unwrap(), vec!["a\"b"]);
        assert!(fields("\"open", ',').is_err());
        assert_eq!(fields("", ',').unwrap(), vec![""]);
    }

    #[test]
    fn pairs_quote_when_needed() {
        assert_eq!(pair("a", "b"), "a=b");
        assert_eq!(pair("a", "b,c"), "\"a=b,c\"");
    }
}
