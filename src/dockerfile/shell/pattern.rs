//! Shell patterns as BuildKit uses them inside `${var#pattern}`, `${var%pattern}` and
//! `${var/pattern/replacement}`: `*` is any run of characters, `?` one character, `\*`,
//! `\?` and `\\` are literal, `\}` and `\/` are the plain characters. There are no bracket
//! expressions. BuildKit turns such a pattern into a regular expression where neither
//! wildcard matches a newline; matches follow the leftmost-first preference of that
//! expression (greedy or lazy stars), which this backtracking matcher reproduces.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    /// `?`: one character other than a newline.
    Any,
    /// `*`: any run of characters other than newlines.
    Star,
}

/// Splits a pattern into tokens; `Err` carries the message BuildKit gives.
pub(crate) fn tokenize(pattern: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => match chars.get(i) {
                // `\}` and `\/` only protect the character from ending the ${} form.
                Some('}') | Some('/') => {}
                Some(&n @ ('*' | '?' | '\\')) => {
                    out.push(Tok::Lit(n));
                    i += 1;
                }
                Some(&n) => return Err(format!("invalid escape '\\{n}'")),
                None => return Err("invalid escape '\\'".to_string()),
            },
            other => out.push(Tok::Lit(other)),
        }
    }
    Ok(out)
}

struct Matcher<'a> {
    toks: &'a [Tok],
    text: &'a [char],
    greedy: bool,
    memo: HashMap<(usize, usize), Option<usize>>,
}

impl Matcher<'_> {
    /// End of the preferred match of `toks[ti..]` starting at `pos`, if any.
    fn at(&mut self, ti: usize, pos: usize) -> Option<usize> {
        if ti == self.toks.len() {
            return Some(pos);
        }
        if let Some(r) = self.memo.get(&(ti, pos)) {
            return *r;
        }
        let r = match self.toks[ti] {
            Tok::Lit(c) => {
                if self.text.get(pos) == Some(&c) {
                    self.at(ti + 1, pos + 1)
                } else {
                    None
                }
            }
            Tok::Any => match self.text.get(pos) {
                Some(&c) if c != '\n' => self.at(ti + 1, pos + 1),
                _ => None,
            },
            Tok::Star => {
                let mut max = pos;
                while max < self.text.len() && self.text[max] != '\n' {
                    max += 1;
                }
                let mut found = None;
                if self.greedy {
                    for end in (pos..=max).rev() {
                        if let Some(e) = self.at(ti + 1, end) {
                            found = Some(e);
                            break;
                        }
                    }
                } else {
                    for end in pos..=max {
                        if let Some(e) = self.at(ti + 1, end) {
                            found = Some(e);
                            break;
                        }
                    }
                }
                found
            }
        };
        self.memo.insert((ti, pos), r);
        r
    }
}

/// The preferred match starting exactly at `start`: its end index (in chars).
fn match_at(toks: &[Tok], text: &[char], start: usize, greedy: bool) -> Option<usize> {
    let mut m = Matcher {
        toks,
        text,
        greedy,
        memo: HashMap::new(),
    };
    m.at(0, start)
}

/// The leftmost match at or after `from`: (start, end) in chars.
pub(crate) fn find(
    toks: &[Tok],
    text: &[char],
    from: usize,
    greedy: bool,
) -> Option<(usize, usize)> {
    (from..=text.len()).find_map(|s| match_at(toks, text, s, greedy).map(|e| (s, e)))
}

/// `${v#p}` / `${v##p}`: removes the shortest (or longest) matching prefix.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let toks = tokenize(pattern)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match match_at(&toks, &text, 0, greedy) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`: removes the shortest (or longest) matching suffix, by matching
/// the reversed pattern against the reversed value as BuildKit does.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let mut toks = tokenize(pattern)?;
    toks.reverse();
    let mut text: Vec<char> = value.chars().collect();
    text.reverse();
    let mut rest: Vec<char> = match match_at(&toks, &text, 0, greedy) {
        Some(end) => text[end..].to_vec(),
        None => text,
    };
    rest.reverse();
    Ok(rest.into_iter().collect())
}

/// `${v/p/r}` (first match) and `${v//p/r}` (every match; like Go's `ReplaceAllString`,
/// `$0`/`${0}` in the replacement stand for the match and `$$` for `$`).
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let toks = tokenize(pattern)?;
    let text: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match find(&toks, &text, 0, true) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        });
    }
    let mut out = String::new();
    let mut last_end = 0usize;
    let mut search = 0usize;
    while search <= text.len() {
        let Some((s, e)) = find(&toks, &text, search, true) else {
            break;
        };
        out.extend(&text[last_end..s]);
        // No replacement for an empty match right after the previous match.
        if e > last_end || s == 0 {
            expand_replacement(&mut out, replacement, &text[s..e]);
        }
        last_end = e;
        if search + 1 > e {
            search += 1;
        } else {
            search = e;
        }
    }
    out.extend(&text[last_end..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a pattern with no capture groups.
fn expand_replacement(out: &mut String, template: &str, whole: &[char]) {
    let mut rest = template;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        rest = &rest[idx + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match extract_name(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.extend(whole);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if brace {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix_trimming() {
        let cases: &[(&str, &str, bool, bool, &str)] = &[
            // (pattern, value, suffix?, greedy, expected)
            ("*/", "a/b/c", false, false, "b/c"),
            ("*/", "a/b/c", false, true, "c"),
            (".*", "f.tar.gz", true, false, "f.tar"),
            (".*", "f.tar.gz", true, true, "f"),
            ("x", "abc", false, false, "abc"),
            ("a?", "abc", false, false, "c"),
            ("\\*", "*x", false, false, "x"),
            ("*", "abc", false, false, "abc"),
            ("*", "abc", false, true, ""),
            ("b*", "abc", true, true, "a"),
        ];
        for (p, v, suffix, greedy, want) in cases {
            let got = if *suffix {
                trim_suffix(p, v, *greedy)
            } else {
                trim_prefix(p, v, *greedy)
            };
            assert_eq!(got.as_deref(), Ok(*want), "pattern {p:?} on {v:?}");
        }
    }

    #[test]
    fn replacement() {
        let cases: &[(&str, &str, &str, bool, &str)] = &[
            ("a", "banana", "o", false, "bonana"),
            ("a", "banana", "o", true, "bonono"),
            ("a*a", "banana", "X", false, "bX"),
            ("", "ab", "-", true, "-a-b-"),
            ("n?", "banana", "<$0>", true, "ba<na><na>"),
            ("z", "abc", "y", true, "abc"),
        ];
        for (p, v, r, all, want) in cases {
            assert_eq!(
                replace(p, v, r, *all).as_deref(),
                Ok(*want),
                "{p:?} in {v:?}"
            );
        }
    }

    #[test]
    fn bad_escape_is_an_error() {
        assert!(tokenize("a\\b").is_err());
        assert!(tokenize("a\\").is_err());
        assert_eq!(tokenize("\\}").map(|t| t.len()), Ok(1));
    }
}
