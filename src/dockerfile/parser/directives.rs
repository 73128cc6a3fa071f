//! Parser directives: `# syntax=`, `# escape=`, `# check=` at the very top of the file
//! (case-insensitive names, each at most once, ended by the first line that is not one).

#[derive(Default)]
pub(crate) struct DirectiveParser {
    comment: Option<&'static str>,
    line: usize,
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// `Ok(Some((name, value)))` for a directive line while directives are allowed.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix(self.comment.unwrap_or("#")) else {
            self.done = true;
            return Ok(None);
        };
        let rest = rest.trim_start();
        let Some((key, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        Ok(Some((key, value)))
    }
}

/// Validates a `# check=` value as BuildKit's `linter.ParseLintOptions` does (up to three
/// `;`-separated `skip=`, `experimental=`, `error=<bool>` options); kiln does not lint, so
/// a valid value changes nothing, but an invalid one fails the build as in BuildKit.
pub(crate) fn check_options(value: &str) -> Result<(), String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    for part in value.splitn(3, ';') {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("invalid check option {part:?}"));
        };
        match k.trim() {
            "skip" | "experimental" => {}
            "error" => {
                let v = v.trim();
                if !matches!(
                    v,
                    "1" | "t"
                        | "T"
                        | "TRUE"
                        | "true"
                        | "True"
                        | "0"
                        | "f"
                        | "F"
                        | "FALSE"
                        | "false"
                        | "False"
                ) {
                    return Err(format!(
                        "failed to parse check option {part:?}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                    ));
                }
            }
            k => return Err(format!("invalid check option {k:?}")),
        }
    }
    Ok(())
}

/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(s: &str) -> Option<(String, String)> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let key_end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let key = &s[..key_end];
    let after_key = s[key_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    let after_eq = after_key.strip_prefix('=')?;
    if after_eq.is_empty() || after_eq.contains('\n') {
        return None;
    }
    let trimmed = after_eq.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let value = if trimmed.is_empty() {
        // The lazy value still takes one (whitespace) character.
        after_eq
            .chars()
            .last()
            .map(String::from)
            .unwrap_or_default()
    } else {
        trimmed
            .trim_end_matches(|c: char| c.is_ascii_whitespace())
            .to_string()
    };
    Some((key.to_string(), value))
}

/// A `syntax` directive as BuildKit detects it to choose the frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxDirective {
    /// The image reference (the value up to the first space).
    pub image: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// Finds the `syntax` directive like BuildKit's `DetectSyntax`: a leading `#!` line is
/// skipped, and besides `# syntax=` the forms `// syntax=` and a JSON object with a
/// `"syntax"` string are accepted.
pub fn detect_syntax(source: &str) -> Option<SyntaxDirective> {
    let src = source.strip_prefix('\u{feff}').unwrap_or(source);
    let (src, first_line) = match src.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => (rest, 1),
        None if src.starts_with("#!") => ("", 1),
        _ => (src, 0),
    };
    for comment in ["#", "//"] {
        let mut p = DirectiveParser {
            comment: Some(comment),
            line: first_line,
            ..DirectiveParser::default()
        };
        for l in src.lines() {
            if p.done {
                break;
            }
            match p.parse_line(l) {
                Ok(Some((name, value))) if name == "syntax" => {
                    let image = value.split(' ').next().unwrap_or("").to_string();
                    return Some(SyntaxDirective {
                        image,
                        cmdline: value,
                        line: p.line,
                    });
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    let v: serde_json::Value = serde_json::from_str(src).ok()?;
    let s = v.get("syntax")?.as_str()?;
    Some(SyntaxDirective {
        image: s.to_string(),
        cmdline: s.to_string(),
        line: first_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_detection() {
        type Case<'a> = (&'a str, Option<(&'a str, &'a str, usize)>);
        let cases: &[Case] = &[
            (
                "# syntax = dockerfile:experimental // opts\nFROM x\n",
                Some((
                    "dockerfile:experimental",
                    "dockerfile:experimental // opts",
                    1,
                )),
            ),
            (
                "#!/bin/sh\n# syntax = a/b\nFROM x\n",
                Some(("a/b", "a/b", 2)),
            ),
            ("#!/bin/sh\n\n# syntax = a/b\n", None),
            ("FROM busybox\n", None),
            ("//syntax=foo\n//key=value\n", Some(("foo", "foo", 1))),
            ("{\"syntax\": \"bar\"}", Some(("bar", "bar", 0))),
        ];
        for (src, want) in cases {
            let got = detect_syntax(src).map(|d| (d.image, d.cmdline, d.line));
            let want = want.map(|(a, b, l)| (a.to_string(), b.to_string(), l));
            assert_eq!(got, want, "{src:?}");
        }
    }

    #[test]
    fn check_directive_values() {
        for ok in [
            "",
            "skip=all",
            "skip=JSONArgsRecommended,StageNameCasing;error=true",
            "error=false;experimental=all",
            " error = 1 ",
        ] {
            assert_eq!(check_options(ok), Ok(()), "{ok:?}");
        }
        for (bad, want) in [
            ("bogus", "invalid check option \"bogus\""),
            ("warn=true", "invalid check option \"warn\""),
            (
                "error=yes",
                "strconv.ParseBool: parsing \"yes\": invalid syntax",
            ),
        ] {
            let e = check_options(bad).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }
}
