//! Splitting one logical line into command, flags and arguments, with the per-instruction
//! argument rules BuildKit applies before any expansion (JSON vs shell form, `KEY=value`
//! lists, whitespace-separated lists...).

use super::super::error::ErrorKind;

/// BuildKit's `[\t\v\f\r ]` whitespace class (no newline, nothing beyond ASCII).
pub(crate) fn is_ws_class(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Splits on runs of [`is_ws_class`], at most `n` parts (`n == 0`: no limit), like
/// Go's `Regexp.Split` (leading/trailing runs give empty parts).
pub(crate) fn split_ws(s: &str, n: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        if n != 0 && parts.len() + 1 == n {
            parts.push(rest.to_string());
            return parts;
        }
        match rest.find(is_ws_class) {
            Some(i) => {
                parts.push(rest[..i].to_string());
                let after = &rest[i..];
                let skip = after.len() - after.trim_start_matches(is_ws_class).len();
                rest = &after[skip..];
            }
            None => {
                parts.push(rest.to_string());
                return parts;
            }
        }
    }
}

/// `(command, flags, rest)` of a logical line.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_ws(line.trim(), 2);
    let cmd = parts.first().cloned().unwrap_or_default();
    match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(rest, escape);
            (cmd, flags, args.trim().to_string())
        }
        None => (cmd, Vec::new(), String::new()),
    }
}

/// Leading `--flag[=value]` words. Works on bytes as BuildKit does (so a multi-byte
/// character inside a flag value comes out as Latin-1 characters, as there).
fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let esc = u8::try_from(u32::from(escape)).unwrap_or(b'\\');
    let is_space = |c: u8| char::from(c).is_whitespace();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0usize;
    while pos <= b.len() {
        let ch = b.get(pos).copied().unwrap_or(0);
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (line[pos..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[pos..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if ch == esc {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(char::from(c));
            pos += 1;
            continue;
        }
        // in quotes
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if ch == esc {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(char::from(c));
        pos += 1;
    }
    (String::new(), words)
}

/// Words separated by whitespace, quotes and escapes kept (they are removed later, by
/// expansion). Used by ENV, LABEL and ARG.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut pos = 0usize;
    while pos <= chars.len() {
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == chars.len() {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == chars.len() {
            if blank_ok || !buf.is_empty() {
                words.push(std::mem::take(&mut buf));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                buf.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                buf.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            buf.push(ch);
            pos += 1;
            continue;
        }
        // in quotes
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            buf.push(ch);
            ch = chars[pos];
        }
        buf.push(ch);
        pos += 1;
    }
    words
}

/// The parsed arguments of one instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Args {
    pub values: Vec<String>,
    /// The exec (JSON array) form was used.
    pub json: bool,
}

/// `Ok(None)`: not a JSON array (use the shell form); `Err`: an array with non-strings.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ErrorKind> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorKind::BadJson(
                "when using JSON array syntax, arrays must be comprised of strings only".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or the whole rest as one string.
pub(crate) fn maybe_json(rest: &str) -> Result<Args, ErrorKind> {
    if rest.is_empty() {
        return Ok(Args::default());
    }
    Ok(match parse_json(rest)? {
        Some(values) => Args { values, json: true },
        None => Args {
            values: vec![rest.to_string()],
            json: false,
        },
    })
}

/// ADD, COPY, VOLUME: a JSON array, or whitespace-separated words.
pub(crate) fn maybe_json_to_list(rest: &str) -> Result<Args, ErrorKind> {
    Ok(match parse_json(rest)? {
        Some(values) => Args { values, json: true },
        None => whitespace_delimited(rest),
    })
}

/// EXPOSE, FROM: whitespace-separated words, quotes not special.
pub(crate) fn whitespace_delimited(rest: &str) -> Args {
    if rest.is_empty() {
        return Args::default();
    }
    Args {
        values: split_ws(rest, 0),
        json: false,
    }
}

/// ENV and LABEL: `key=value ...` (values keep quotes) or the legacy `key value`. Each
/// pair becomes `[key, value, "="]` (`""` as separator for the legacy form).
pub(crate) fn name_val(rest: &str, cmd: &str, escape: char) -> Result<Args, ErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::default());
    };
    if !first.contains('=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(ErrorKind::Arguments(format!(
                "{cmd} must have two arguments"
            )));
        }
        return Ok(Args {
            values: vec![parts[0].clone(), parts[1].clone(), String::new()],
            json: false,
        });
    }
    let mut values = Vec::with_capacity(words.len() * 3);
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ErrorKind::Arguments(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )));
        };
        values.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Args {
        values,
        json: false,
    })
}

/// HEALTHCHECK: the type word, then CMD's arguments in maybe-JSON form.
pub(crate) fn health_config(rest: &str) -> Result<Args, ErrorKind> {
    let b = rest.as_bytes();
    let is_space = |c: u8| char::from(c).is_whitespace();
    let sep = b.iter().position(|c| is_space(*c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok(Args::default());
    }
    let next = b[sep..]
        .iter()
        .position(|c| !is_space(*c))
        .map_or(b.len(), |p| sep + p);
    let typ = rest.get(..sep).unwrap_or(rest).to_string();
    let cmd = maybe_json(rest.get(next..).unwrap_or(""))?;
    let mut values = vec![typ];
    values.extend(cmd.values);
    Ok(Args {
        values,
        json: cmd.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_and_flags() {
        let cases: &[(&str, &str, &[&str], &str)] = &[
            ("COPY a b", "COPY", &[], "a b"),
            (
                "  copy   --from=x  --link a b ",
                "copy",
                &["--from=x", "--link"],
                "a b",
            ),
            (
                "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t echo",
                "RUN",
                &[
                    "--mount=type=cache,target=/c",
                    "--mount=type=tmpfs,target=/t",
                ],
                "echo",
            ),
            ("COPY --chown=\"a b\" x y", "COPY", &["--chown=a b"], "x y"),
            ("COPY -- --weird /", "COPY", &[], "--weird /"),
            ("RUN -x", "RUN", &[], "-x"),
            ("FROM", "FROM", &[], ""),
            ("COPY --link", "COPY", &["--link"], ""),
        ];
        for (line, cmd, flags, rest) in cases {
            let (c, f, r) = split_command(line, '\\');
            assert_eq!(
                (c.as_str(), f.as_slice(), r.as_str()),
                (
                    *cmd,
                    flags
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .as_slice(),
                    *rest
                ),
                "{line:?}"
            );
        }
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: &[(&str, &[&str])] = &[
            ("a=1 b=\"two words\"", &["a=1", "b=\"two words\""]),
            ("x=a\\ b y", &["x=a\\ b", "y"]),
            ("k='$v' e=\"\"", &["k='$v'", "e=\"\""]),
            ("  ", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), *want, "{input:?}");
        }
    }

    #[test]
    fn json_and_fallback() {
        assert_eq!(
            maybe_json("[\"a\", \"b\"]").map(|a| (a.values, a.json)),
            Ok((vec!["a".into(), "b".into()], true))
        );
        assert_eq!(
            maybe_json("[ \"/bin/sh\" , \"-c\" ]").map(|a| a.json),
            Ok(true)
        );
        assert_eq!(
            maybe_json("[\"echo\", 'x']").map(|a| (a.values, a.json)),
            Ok((vec!["[\"echo\", 'x']".into()], false))
        );
        assert!(maybe_json("[\"a\", 1]").is_err());
        assert_eq!(
            maybe_json("[]").map(|a| (a.values.len(), a.json)),
            Ok((0, true))
        );
        assert_eq!(
            maybe_json_to_list("a  b\tc").map(|a| a.values),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn env_forms() {
        let a = name_val("A=1 B=\"x y\"", "ENV", '\\').map(|a| a.values);
        assert_eq!(
            a,
            Ok(vec![
                "A".into(),
                "1".into(),
                "=".into(),
                "B".into(),
                "\"x y\"".into(),
                "=".into()
            ])
        );
        let legacy = name_val("W ${A} legacy   form", "ENV", '\\').map(|a| a.values);
        assert_eq!(
            legacy,
            Ok(vec!["W".into(), "${A} legacy   form".into(), String::new()])
        );
        assert!(name_val("ONLYKEY", "ENV", '\\').is_err());
        assert!(name_val("A=1 B", "ENV", '\\').is_err());
    }

    #[test]
    fn healthcheck_forms() {
        let h = health_config("CMD [\"/bin/check\", \"--fast\"]").map(|a| (a.values, a.json));
        assert_eq!(
            h,
            Ok((
                vec!["CMD".into(), "/bin/check".into(), "--fast".into()],
                true
            ))
        );
        let n = health_config("NONE").map(|a| a.values);
        assert_eq!(n, Ok(vec!["NONE".into()]));
    }
}
