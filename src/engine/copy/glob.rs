//! Source patterns of COPY/ADD: `*`, `?`, `[..]` (with `\` escapes) inside one path
//! component, as Go's `filepath.Match`; `--parents` pivots (`a/./b`).

use crate::engine::fs::{clean_abs, join, resolve_in_root, FsView};

/// A path a source pattern matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMatch {
    /// The matched path in the source view (symlinks not resolved).
    pub path: String,
    /// The part kept by `--parents`: the path below the pivot (`a/./b/c` keeps `b/c`),
    /// or the whole path; relative, no leading slash.
    pub keep: String,
}

/// Whether a path component has wildcard characters.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Matches one name against one component pattern (`filepath.Match`); a malformed class
/// matches nothing.
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_at(&p, &n)
}

fn match_at(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(p, pi + 1, n[ni]) {
                        if ok {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else {
                        return false;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() => {}
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting after `[` at `i`; gives (matched, index after `]`).
fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negated = matches!(p.get(i), Some('^') | Some('!'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
            hi = if p[i + 1] == '\\' {
                i += 1;
                *p.get(i + 1)?
            } else {
                p[i + 1]
            };
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

/// The cleaned components of a source pattern (leading `/` and `./` dropped) and, for
/// `--parents`, how many of them lie above the `/./` pivot.
fn components(pattern: &str) -> (Vec<String>, Option<usize>) {
    let trimmed = pattern.trim_start_matches('/');
    let mut body = trimmed;
    while let Some(rest) = body.strip_prefix("./") {
        body = rest;
    }
    let pivot_depth = body.find("/./").map(|i| {
        clean_abs(&body[..i])
            .split('/')
            .filter(|s| !s.is_empty())
            .count()
    });
    let comps = clean_abs(body)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (comps, pivot_depth)
}

/// For a pattern with wildcards: the directory part before the first wildcard component
/// (`/a/b` for `a/b/*.txt`) when it does not exist. BuildKit walks that directory for
/// matches and fails when it is missing, while a wildcard that matches nothing in an
/// existing directory copies nothing.
pub fn missing_wildcard_base(src: &dyn FsView, pattern: &str) -> std::io::Result<Option<String>> {
    let (comps, _) = components(pattern);
    let Some(first) = comps.iter().position(|c| has_wildcard(c)) else {
        return Ok(None);
    };
    let base = format!("/{}", comps[..first].join("/"));
    let real = resolve_in_root(src, &base, true)?;
    // The root always exists, even in a view without entries (`FROM scratch`).
    Ok((real != "/" && src.lookup(&real)?.is_none()).then_some(base))
}

/// Expands a source pattern (relative to the source root) to the paths it names, sorted.
/// A pattern without wildcards gives its one path, whether it exists or not. With
/// wildcards, as BuildKit's walk of the directory before the first wildcard: symlinks
/// in that directory part are followed, below it only real directories are entered, and
/// only existing entries match (a match may itself be a symlink).
pub fn expand(src: &dyn FsView, pattern: &str) -> std::io::Result<Vec<SourceMatch>> {
    let (comps, pivot_depth) = components(pattern);
    let current: Vec<String> = match comps.iter().position(|c| has_wildcard(c)) {
        None => vec![format!("/{}", comps.join("/"))],
        Some(first) => {
            let base = format!("/{}", comps[..first].join("/"));
            // (path as named, path with the base's symlinks resolved)
            let mut current = vec![(base.clone(), resolve_in_root(src, &base, true)?)];
            for comp in &comps[first..] {
                let mut next = Vec::new();
                for (named, real) in &current {
                    if !src.lookup(real)?.is_some_and(|e| e.is_dir()) {
                        continue;
                    }
                    if has_wildcard(comp) {
                        for name in src.read_dir(real)? {
                            if glob_match(comp, &name) {
                                next.push((join(named, &name), join(real, &name)));
                            }
                        }
                    } else {
                        let r = join(real, comp);
                        if src.lookup(&r)?.is_some() {
                            next.push((join(named, comp), r));
                        }
                    }
                }
                current = next;
            }
            current.into_iter().map(|(named, _)| named).collect()
        }
    };
    Ok(current
        .into_iter()
        .map(|path| {
            let keep: Vec<&str> = path
                .split('/')
                .filter(|s| !s.is_empty())
                .skip(pivot_depth.unwrap_or(0))
                .collect();
            SourceMatch {
                keep: keep.join("/"),
                path,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(glob_match("*.txt", ".h.txt"));
        assert!(!glob_match("*.txt", "a.md"));
        assert!(glob_match("t?o.txt", "two.txt"));
        assert!(glob_match("data[AB].conf", "dataB.conf"));
        assert!(!glob_match("data[AB].conf", "dataC.conf"));
        assert!(glob_match("data[^AB].conf", "dataC.conf"));
        assert!(glob_match("[a-c]*", "b"));
        assert!(glob_match("su*", "sub"));
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        assert!(!glob_match("[", "["));
        assert!(glob_match("*a*b", "xxaxxb"));
    }
}
