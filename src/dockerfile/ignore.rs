//! `.dockerignore`, with the semantics of Docker's `patternmatcher` and BuildKit's context
//! walker (fsutil):
//!
//! * lines starting with `#` are comments; blank lines are skipped; each pattern is
//!   trimmed and cleaned (`./a//b/` becomes `a/b`, a leading `/` is dropped);
//! * `!pattern` re-includes; patterns apply in order and the last one that matches wins;
//! * `*` and `?` never match `/`; `**` matches any number of directories; `[a-z]` classes
//!   and `\` escapes are supported;
//! * a pattern that matches a directory matches everything below it;
//! * an excluded directory is still walked when an exception could re-include something
//!   below it (and is then sent as the parent of what is re-included).
//!
//! The engine walks the context with [`Matcher::walk`] (carrying [`MatchInfo`] from each
//! directory to its children), or asks [`Matcher::is_excluded`] for a single path.

mod pattern;

use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, ToDiagnostic};

use self::pattern::Pattern;

/// A bad ignore file.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{file}: syntax error in pattern: {pattern}")]
    BadPattern { file: PathBuf, pattern: String },
    #[error("{file}: illegal exclusion pattern: \"!\"")]
    IllegalExclusion { file: PathBuf },
    #[error("failed to read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ToDiagnostic for IgnoreError {
    fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::new(self.to_string());
        match self {
            IgnoreError::BadPattern { .. } => {
                d.with_hint("check the [...] classes and trailing backslashes in the pattern")
            }
            IgnoreError::IllegalExclusion { .. } => {
                d.with_hint("a lone \"!\" excludes nothing; remove the line")
            }
            IgnoreError::Io { .. } => d,
        }
    }
}

/// What the context walker does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Include,
    /// Do not send it. For a directory, keep walking: an exception may re-include
    /// something below, and then the directory is sent as that entry's parent.
    Exclude,
    /// Do not send it and do not walk into it (nothing below can be re-included).
    SkipDir,
}

/// Per-pattern results for a directory, handed to its children (fsutil's `MatchInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo(Vec<bool>);

/// The compiled patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    /// The patterns as read (after comment removal and cleaning), `!` included.
    raw: Vec<String>,
    has_exclusions: bool,
    /// No exception pattern has wildcards (apart from a trailing `/*` or `/**`), so a
    /// walker can tell from the names alone when an excluded directory can be skipped.
    only_prefix_exceptions: bool,
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(crate) fn clean_path(p: &str) -> String {
    crate::pathutil::clean(p)
}

/// Reads the patterns of an ignore file (`ignorefile.ReadAll`).
pub fn read_patterns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = p.to_string();
        if !pat.is_empty() {
            pat = clean_path(&pat);
            if pat.len() > 1 && pat.starts_with('/') {
                pat.remove(0);
            }
        }
        out.push(if invert { format!("!{pat}") } else { pat });
    }
    out
}

fn without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

impl Matcher {
    /// Compiles patterns as `patternmatcher.New` does (`file` only names errors).
    pub fn new<S: AsRef<str>>(patterns: &[S], file: &Path) -> Result<Matcher, IgnoreError> {
        let mut m = Matcher {
            only_prefix_exceptions: true,
            ..Matcher::default()
        };
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let cleaned = clean_path(p);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => {
                    return Err(IgnoreError::IllegalExclusion {
                        file: file.to_path_buf(),
                    })
                }
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned.clone()),
            };
            let pat =
                Pattern::compile(&body, exclusion).ok_or_else(|| IgnoreError::BadPattern {
                    file: file.to_path_buf(),
                    pattern: p.to_string(),
                })?;
            if exclusion {
                m.has_exclusions = true;
                if without_trailing_glob(&body).contains(['*', '[', ']', '?', '^', '\\']) {
                    m.only_prefix_exceptions = false;
                }
            }
            m.raw
                .push(if exclusion { format!("!{body}") } else { body });
            m.patterns.push(pat);
        }
        Ok(m)
    }

    /// Parses the text of an ignore file.
    pub fn parse(text: &str, file: &Path) -> Result<Matcher, IgnoreError> {
        Matcher::new(&read_patterns(text), file)
    }

    /// Reads an ignore file; a missing file gives a matcher that excludes nothing.
    pub fn from_file(path: &Path) -> Result<Matcher, IgnoreError> {
        match std::fs::read(path) {
            Ok(bytes) => Matcher::parse(&String::from_utf8_lossy(&bytes), path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Matcher::default()),
            Err(source) => Err(IgnoreError::Io {
                file: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The ignore file BuildKit uses for a build: `<Dockerfile>.dockerignore` next to the
    /// Dockerfile when it exists, else `.dockerignore` at the context root.
    pub fn for_build(context: &Path, dockerfile: &Path) -> Result<Matcher, IgnoreError> {
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        let specific = PathBuf::from(specific);
        if specific.is_file() {
            return Matcher::from_file(&specific);
        }
        Matcher::from_file(&context.join(".dockerignore"))
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns (`!` kept), e.g. to hand to a BuildKit daemon.
    pub fn patterns(&self) -> &[String] {
        &self.raw
    }

    /// Whether `path` (relative, `/`-separated) matches, given its parent directory's
    /// [`MatchInfo`] (use `MatchInfo::default()` at the top, or when unknown).
    pub fn matches(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let parent = &parent.0;
        let known = parent.len() == self.patterns.len() && !parent.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = known && parent[i];
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(path);
                if !m && !known {
                    m = ancestors(path).any(|a| p.matches(a));
                }
            }
            info[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }

    /// What a context walker does with `path`, given its parent's [`MatchInfo`]; the
    /// returned info is for the children when `path` is a directory.
    pub fn walk(&self, path: &str, is_dir: bool, parent: &MatchInfo) -> (Decision, MatchInfo) {
        let (m, info) = self.matches(path, parent);
        if !m {
            return (Decision::Include, info);
        }
        if is_dir && self.only_prefix_exceptions {
            if !self.has_exclusions {
                return (Decision::SkipDir, info);
            }
            let dir_slash = format!("{path}/");
            let reachable =
                self.patterns.iter().filter(|p| p.exclusion).any(|p| {
                    format!("{}/", without_trailing_glob(&p.text)).starts_with(&dir_slash)
                });
            if !reachable {
                return (Decision::SkipDir, info);
            }
        }
        (Decision::Exclude, info)
    }

    /// Whether the walker leaves `path` out (relative to the context, `/`-separated;
    /// `./` and duplicate slashes are cleaned). The context root is never excluded.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let cleaned = clean_path(path.trim_start_matches('/'));
        if cleaned == "." {
            return false;
        }
        let parts: Vec<&str> = cleaned.split('/').collect();
        let mut info = MatchInfo::default();
        let mut end = 0usize;
        for (k, part) in parts.iter().enumerate() {
            end += part.len() + usize::from(k > 0);
            let last = k + 1 == parts.len();
            let (d, next) = self.walk(&cleaned[..end], !last || is_dir, &info);
            if last {
                return d != Decision::Include;
            }
            if d == Decision::SkipDir {
                return true;
            }
            info = next;
        }
        false
    }
}

/// `a`, `a/b` for `a/b/c` (the parent directories, top first).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(i, _)| &path[..i])
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests;
