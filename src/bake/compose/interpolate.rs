//! Compose's variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a dollar) and
//! the `.env` file format.

use super::ComposeError;

/// Substitutes the variables in `s`; `lookup` gives a variable's value, `None` if unset.
/// Unset variables without a default become empty, as Compose does.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ComposeError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end =
                    closing_brace(&chars, i + 2).ok_or_else(|| ComposeError::Interpolation {
                        value: s.to_string(),
                        message: "missing closing brace".into(),
                    })?;
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&inner, s, lookup)?);
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `from` (nested `${…}` allowed).
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${…}` body.
fn braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ComposeError> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_end);
    if name.is_empty() {
        return Err(ComposeError::Interpolation {
            value: whole.to_string(),
            message: format!("invalid variable name in ${{{inner}}}"),
        });
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |skip: usize| interpolate(&rest[skip..], lookup);
    let fail = |skip: usize| -> Result<String, ComposeError> {
        let message = arg(skip)?;
        Err(ComposeError::Required {
            name: name.to_string(),
            message: if message.is_empty() {
                format!("required variable {name} is missing a value")
            } else {
                message
            },
        })
    };
    if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    match rest {
        r if r.starts_with(":-") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                arg(2)
            }
        }
        r if r.starts_with('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                arg(1)
            }
        }
        r if r.starts_with(":?") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                fail(2)
            }
        }
        r if r.starts_with('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                fail(1)
            }
        }
        r if r.starts_with(":+") => {
            if non_empty {
                arg(2)
            } else {
                Ok(String::new())
            }
        }
        r if r.starts_with('+') => {
            if set {
                arg(1)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(ComposeError::Interpolation {
            value: whole.to_string(),
            message: format!("invalid interpolation format for ${{{inner}}}"),
        }),
    }
}

/// The variables of a `.env` file: `KEY=VALUE` lines (`export ` allowed), `#` comments,
/// single-quoted values taken literally, double-quoted ones with `\n`-style escapes and
/// `${VAR}` substitution (from `lookup`, then the file's earlier keys), unquoted ones
/// trimmed and cut at ` #`.
pub fn parse_dotenv(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ComposeError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(ComposeError::DotEnv {
                line: n + 1,
                message: format!("unexpected line {raw:?}: expected KEY=VALUE"),
            });
        };
        let key = key.trim().to_string();
        let value = value.trim_start();
        let earlier = |k: &str| {
            lookup(k).or_else(|| {
                out.iter()
                    .rev()
                    .find(|(ok, _)| ok == k)
                    .map(|(_, v)| v.clone())
            })
        };
        let parsed = if let Some(body) = value.strip_prefix('\'') {
            body.rsplit_once('\'').map_or(body, |(b, _)| b).to_string()
        } else if let Some(body) = value.strip_prefix('"') {
            let body = body.rsplit_once('"').map_or(body, |(b, _)| b);
            let unescaped = body
                .replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
            interpolate(&unescaped, &earlier)?
        } else {
            let v = value.split(" #").next().unwrap_or("").trim();
            interpolate(v, &earlier)?
        };
        out.push((key, parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_like_compose() {
        let cases = [
            ("plain", "plain"),
            ("$SET/${SET}", "v/v"),
            ("$$SET", "$SET"),
            ("${UNSET}", ""),
            ("${UNSET:-d}|${EMPTY:-d}|${SET:-d}", "d|d|v"),
            ("${UNSET-d}|${EMPTY-d}", "d|"),
            ("${UNSET:+a}|${EMPTY:+a}|${SET:+a}", "||a"),
            ("${EMPTY+a}|${UNSET+a}", "a|"),
            ("${UNSET:-${SET}x}", "vx"),
            ("a$", "a$"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
        let err = interpolate("${UNSET:?need it}", &env).unwrap_err();
        assert!(err.to_string().contains("need it"), "{err}");
        assert!(interpolate("${EMPTY?x}", &env).is_ok());
        assert!(interpolate("${SET", &env).is_err());
    }

    #[test]
    fn reads_dotenv_files() {
        let text =
            "# c\nA=1\nexport B = two words # note\nC='lit ${A}'\nD=\"x\\ny ${A}\"\nE=${A}-$SET\n";
        let vars = parse_dotenv(text, &env).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("lit ${A}"));
        assert_eq!(get("D"), Some("x\ny 1"));
        assert_eq!(get("E"), Some("1-v"));
        assert!(parse_dotenv("NOEQUALS\n", &env).is_err());
    }
}
