//! [`DockerfileError`]: every parse-time failure, with where it happened and what to do.

use std::path::PathBuf;

use crate::error::{Diagnostic, Location, ToDiagnostic};

use super::shell::ShellError;

/// What went wrong. The messages follow BuildKit's wording so users can search for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("unknown instruction: {name}")]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown flag: --{flag}")]
    UnknownFlag {
        instruction: String,
        flag: String,
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: --{0}")]
    FlagMissingValue(String),
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    FlagNotBool { flag: String, value: String },
    #[error("arg should start with -- : {0}")]
    FlagSyntax(String),
    #[error("{0}")]
    BadJson(String),
    /// Wrong number or shape of arguments ("COPY requires at least two arguments...").
    #[error("{0}")]
    Arguments(String),
    #[error("unterminated heredoc")]
    UnterminatedHeredoc { name: String },
    #[error("{0}")]
    Directive(String),
    #[error("file with no instructions")]
    NoInstructions,
    #[error("no build stage in current context")]
    NoStage,
    #[error("{0}")]
    Mount(String),
    #[error("{0}")]
    Shell(#[from] ShellError),
    /// Any other invalid value (stage name, network mode, duration...).
    #[error("{0}")]
    Invalid(String),
}

impl ErrorKind {
    fn suggestion(&self) -> Option<&str> {
        match self {
            ErrorKind::UnknownInstruction { suggestion, .. }
            | ErrorKind::UnknownFlag { suggestion, .. } => suggestion.as_deref(),
            _ => None,
        }
    }
}

/// A Dockerfile error at a place in the file. Boxed (it is returned often and is big);
/// its fields are those of [`ErrorData`], reachable directly through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", .0.prefix(), .0.kind, .0.kind.suggestion().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
pub struct DockerfileError(pub Box<ErrorData>);

/// When the error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// While reading the Dockerfile.
    Parse,
    /// While planning or running the build (expansion, mounts...).
    Build,
}

/// The details of a [`DockerfileError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorData {
    pub kind: ErrorKind,
    /// The Dockerfile's path as the user named it (default `Dockerfile`).
    pub file: PathBuf,
    /// 1-based first line of the instruction (0 when the file is empty).
    pub line: usize,
    /// 1-based last line of the instruction, heredoc bodies included.
    pub end_line: usize,
    /// 1-based column on `line` when known.
    pub col: Option<usize>,
    /// Length of the offending text when `col` is known.
    pub len: usize,
    /// The text of `line` as written.
    pub source_line: Option<String>,
    /// The instruction as parsed (continuations joined), when there is one.
    pub instruction: Option<String>,
    pub phase: Phase,
}

impl ErrorData {
    fn prefix(&self) -> String {
        match self.phase {
            Phase::Parse => format!("dockerfile parse error on line {}: ", self.line),
            Phase::Build => format!("{}:{}: ", self.file.display(), self.line),
        }
    }
}

impl std::ops::Deref for DockerfileError {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for DockerfileError {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl DockerfileError {
    pub fn new(kind: ErrorKind, line: usize, end_line: usize) -> Self {
        DockerfileError(Box::new(ErrorData {
            kind,
            file: PathBuf::from("Dockerfile"),
            line,
            end_line,
            col: None,
            len: 0,
            source_line: None,
            instruction: None,
            phase: Phase::Parse,
        }))
    }

    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = file.into();
        self
    }

    /// Fills `source_line` (and a column for flag and instruction errors) from the source.
    pub(crate) fn locate(mut self, source: &str) -> Self {
        if self.line == 0 {
            return self;
        }
        let Some(text) = source.lines().nth(self.line - 1) else {
            return self;
        };
        let text = text.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if self.col.is_none() {
            let needle = match &self.kind {
                ErrorKind::UnknownFlag { flag, .. } => Some(format!("--{flag}")),
                ErrorKind::DuplicateFlag(f) | ErrorKind::FlagMissingValue(f) => {
                    Some(format!("--{f}"))
                }
                ErrorKind::FlagNotBool { flag, .. } => Some(format!("--{flag}")),
                ErrorKind::UnknownInstruction { name, .. } if !name.is_empty() => {
                    Some(name.clone())
                }
                _ => None,
            };
            if let Some(n) = needle {
                if let Some(byte) = text.find(&n) {
                    let col = text[..byte].chars().count() + 1;
                    let len = if matches!(self.kind, ErrorKind::UnknownInstruction { .. }) {
                        n.chars().count()
                    } else {
                        text[byte..]
                            .split_whitespace()
                            .next()
                            .map_or(1, |w| w.chars().count())
                    };
                    self.col = Some(col);
                    self.len = len;
                }
            } else {
                let indent = text.chars().take_while(|c| c.is_whitespace()).count();
                let word = text
                    .split_whitespace()
                    .next()
                    .map_or(1, |w| w.chars().count());
                self.col = Some(indent + 1);
                self.len = word;
            }
        }
        self.source_line = Some(text.to_string());
        self
    }

    /// What to do about it, when we can tell.
    pub fn hint(&self) -> Option<String> {
        if let Some(s) = self.kind.suggestion() {
            return Some(format!("did you mean {s}?"));
        }
        Some(
            match &self.kind {
                ErrorKind::UnknownFlag { instruction, .. } => {
                    format!("see the Dockerfile reference for the flags {instruction} accepts")
                }
                ErrorKind::UnterminatedHeredoc { name } => {
                    format!("end the here-document with a line containing only {name}")
                }
                ErrorKind::BadJson(_) => {
                    "the exec form is a JSON array of strings: [\"executable\", \"arg\"]".to_string()
                }
                ErrorKind::NoInstructions => "a Dockerfile needs at least a FROM instruction".to_string(),
                ErrorKind::NoStage => "start the Dockerfile with FROM (only ARG may come before it)".to_string(),
                ErrorKind::FlagMissingValue(f) => format!("write --{f}=<value>"),
                ErrorKind::Directive(_) => {
                    "parser directives (# syntax=, # escape=, # check=) may each appear once, at the very top"
                        .to_string()
                }
                _ => return None,
            },
        )
    }
}

impl ToDiagnostic for DockerfileError {
    fn to_diagnostic(&self) -> Diagnostic {
        let mut message = self.kind.to_string();
        if let Some(s) = self.kind.suggestion() {
            message = format!("{message} (did you mean {s}?)");
        }
        let mut d = Diagnostic::new(message);
        if self.line > 0 {
            d = d.at(
                Location {
                    file: self.file.clone(),
                    line: self.line,
                    col: self.col.unwrap_or(1),
                    len: if self.col.is_some() {
                        self.len.max(1)
                    } else {
                        1
                    },
                },
                self.source_line.clone(),
            );
        }
        match self.hint() {
            Some(h) => d.with_hint(h),
            None => d,
        }
    }
}

/// Levenshtein distance (insert, delete, substitute all cost 1), on characters.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest option within distance 2, like BuildKit's `suggest.Search` (an exact match
/// means there is nothing to suggest). Case-insensitive searches keep the user's case style.
pub(crate) fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if o == val {
            return None;
        }
        let d = levenshtein(&val, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else if value == value.to_lowercase() {
                o.to_lowercase()
            } else if value == value.to_uppercase() {
                o.to_uppercase()
            } else {
                o
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let opts = ["copy", "run", "from"];
        assert_eq!(suggest("COPPY", &opts, false).as_deref(), Some("COPY"));
        assert_eq!(suggest("fron", &opts, false).as_deref(), Some("from"));
        assert_eq!(suggest("xyzzy", &opts, false), None);
        assert_eq!(suggest("copy", &opts, false), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn diagnostic_has_location_and_hint() {
        let src = "FROM x\n  COPPY a /\n";
        let e = DockerfileError::new(
            ErrorKind::UnknownInstruction {
                name: "COPPY".into(),
                suggestion: Some("COPY".into()),
            },
            2,
            2,
        )
        .locate(src);
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: unknown instruction: COPPY (did you mean COPY?)"
        );
        let d = e.to_diagnostic();
        let loc = d.location.clone().expect("location");
        assert_eq!((loc.line, loc.col, loc.len), (2, 3, 5));
        assert_eq!(d.source_line.as_deref(), Some("  COPPY a /"));
        assert_eq!(d.hint.as_deref(), Some("did you mean COPY?"));
    }
}
