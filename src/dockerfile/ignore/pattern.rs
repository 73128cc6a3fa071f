//! One `.dockerignore` pattern, compiled the way `patternmatcher` does: plain text is an
//! exact match, `text**` a prefix match, `**text` a suffix match, anything else a full
//! match of a small regular language (matched here by dynamic programming).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one character other than `/`.
    NotSlash,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**/` (or `**` before more text): nothing, or anything ending in `/`.
    Dirs,
    /// `**` at the end: anything.
    Rest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// The cleaned pattern, without `!`.
    pub text: String,
    pub exclusion: bool,
    kind: Kind,
    toks: Vec<Tok>,
}

/// Checks Go's `filepath.Match` syntax: escapes must escape something, classes must be
/// well formed (`[` `^`? ranges `]`, at least one range).
fn valid_syntax(p: &[char]) -> bool {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return false;
                }
                i += 2;
            }
            '[' => match parse_class(p, i + 1) {
                Some((_, next)) => i = next,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Parses a class body starting after `[`; returns the token and the index after `]`.
fn parse_class(p: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let mut negated = false;
    if p.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '-' | ']' => None,
        '\\' => {
            let c = *p.get(i + 1)?;
            // The class must still be closed after the escaped character.
            p.get(i + 2)?;
            Some((c, i + 2))
        }
        c => {
            p.get(i + 1)?;
            Some((*c, i + 1))
        }
    }
}

impl Pattern {
    /// `None` when the pattern is malformed.
    pub fn compile(text: &str, exclusion: bool) -> Option<Pattern> {
        let chars: Vec<char> = text.chars().collect();
        if !valid_syntax(&chars) {
            return None;
        }
        let mut kind = Kind::Exact;
        let mut toks = Vec::new();
        let mut i = 0;
        let mut iteration = 0usize;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            toks.push(Tok::Rest);
                            kind = Kind::Tokens;
                        }
                    } else {
                        toks.push(Tok::Dirs);
                        kind = Kind::Tokens;
                    }
                    if iteration == 0 {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    kind = Kind::Tokens;
                }
                '?' => {
                    toks.push(Tok::NotSlash);
                    kind = Kind::Tokens;
                }
                '\\' => match chars.get(i) {
                    Some(&c) => {
                        toks.push(Tok::Lit(c));
                        i += 1;
                        kind = Kind::Tokens;
                    }
                    None => toks.push(Tok::Lit('\\')),
                },
                '[' => {
                    let (tok, next) = parse_class(&chars, i)?;
                    toks.push(tok);
                    i = next;
                    kind = Kind::Tokens;
                }
                ']' => {
                    toks.push(Tok::Lit(']'));
                    kind = Kind::Tokens;
                }
                c => toks.push(Tok::Lit(c)),
            }
            iteration += 1;
        }
        Some(Pattern {
            text: text.to_string(),
            exclusion,
            kind,
            toks,
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Tokens => {
                let text: Vec<char> = path.chars().collect();
                full_match(&self.toks, &text)
            }
        }
    }
}

/// Whether `toks` match all of `text`: `ok[t][p]` = `toks[t..]` matches `text[p..]`.
fn full_match(toks: &[Tok], text: &[char]) -> bool {
    let n = text.len();
    let mut next = vec![false; n + 1];
    next[n] = true;
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        for p in (0..=n).rev() {
            cur[p] = match tok {
                Tok::Lit(c) => p < n && text[p] == *c && next[p + 1],
                Tok::NotSlash => p < n && text[p] != '/' && next[p + 1],
                Tok::Class { negated, ranges } => {
                    p < n && {
                        let c = text[p];
                        let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                        inside != *negated && next[p + 1]
                    }
                }
                Tok::Star => next[p] || (p < n && text[p] != '/' && cur[p + 1]),
                Tok::Rest => next[p] || (p < n && text[p] != '\n' && cur[p + 1]),
                Tok::Dirs => {
                    next[p]
                        || (p..n)
                            .take_while(|&q| text[q] != '\n')
                            .any(|q| text[q] == '/' && next[q + 1])
                }
            };
        }
        next = cur;
    }
    next[0]
}
