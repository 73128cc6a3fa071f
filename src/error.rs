//! The top-level error type, the documented exit codes, and the diagnostic renderer.
//!
//! Every module has its own typed error (thiserror). At the edge (`cli`) they become an
//! [`Error`], which knows its [`ExitCode`] and renders as a [`Diagnostic`]: a message, an
//! optional source location with a snippet, and an optional hint.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

/// Exit codes, as documented in the README ("Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did what was asked.
    Success = 0,
    /// Bad input (a bake file, a Dockerfile, a reference), a failed build or a failed
    /// registry operation. The same status `docker buildx` uses for these.
    Failure = 1,
    /// The command line itself is wrong, or the feature is not available yet in this version.
    Usage = 2,
    /// Interrupted by SIGINT/SIGTERM.
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// A place in a source file, 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Length of the offending text in characters on that line (at least 1 when rendered).
    pub len: usize,
}

/// What the user sees for an error: message, where, the source line, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// The full text of the source line at `location`, for the snippet.
    pub source_line: Option<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            source_line: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn at(mut self, location: Location, source_line: Option<String>) -> Self {
        self.location = Some(location);
        self.source_line = source_line;
        self
    }

    /// Renders the diagnostic as plain text (no colours), the way `kiln` prints it on stderr.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        if let Some(loc) = &self.location {
            let _ = writeln!(out, "  --> {}:{}:{}", loc.file.display(), loc.line, loc.col);
            if let Some(line) = &self.source_line {
                let num = loc.line.to_string();
                let pad = " ".repeat(num.len());
                let (shown, col) = window(line.trim_end_matches(['\r', '\n']), loc.col);
                let caret_pad: String = shown
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let width = loc
                    .len
                    .max(1)
                    .min(shown.chars().count().saturating_sub(col - 1).max(1));
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {shown}");
                let _ = writeln!(out, "{pad} | {caret_pad}{}", "^".repeat(width));
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Longest source line shown in full; longer ones are cut to a window around the column.
const MAX_SNIPPET: usize = 120;

/// The part of `line` to show and the column within it.
fn window(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SNIPPET {
        return (line.to_string(), col);
    }
    let start = col.saturating_sub(1).saturating_sub(MAX_SNIPPET / 2);
    let end = (start + MAX_SNIPPET).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    let mut c = col - start;
    if start > 0 {
        s.insert_str(0, "...");
        c += 3;
    }
    if end < chars.len() {
        s.push_str("...");
    }
    (s, c)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Implemented by every module error so the edge can render it.
pub trait ToDiagnostic {
    fn to_diagnostic(&self) -> Diagnostic;
}

/// The top-level error: one variant per module, each carrying that module's typed error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bake(#[from] crate::bake::BakeError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    #[error(transparent)]
    Dockerfile(#[from] crate::dockerfile::DockerfileError),
    #[error(transparent)]
    Ignore(#[from] crate::dockerfile::ignore::IgnoreError),
    #[error(transparent)]
    Build(Box<crate::engine::exec::BuildError>),
    /// A subcommand or option that this version does not have yet.
    #[error("{0} is not available yet in this version")]
    NotAvailable(String),
    /// A command-line value that is wrong (beyond what clap checks).
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::NotAvailable(_) | Error::Usage { .. } => ExitCode::Usage,
            Error::Bake(_)
            | Error::Oci(_)
            | Error::Dockerfile(_)
            | Error::Ignore(_)
            | Error::Build(_)
            | Error::Io { .. } => ExitCode::Failure,
        }
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            Error::Bake(e) => e.to_diagnostic(),
            Error::Oci(e) => crate::oci::OciError::to_diagnostic(e),
            Error::Dockerfile(e) => e.to_diagnostic(),
            Error::Ignore(e) => Diagnostic::new(e.to_string()),
            Error::Build(e) => e.to_diagnostic(),
            Error::NotAvailable(what) => {
                Diagnostic::new(format!("{what} is not available yet in this version"))
                    .with_hint("see the status table in the README for what works today")
            }
            Error::Usage { message, hint } => {
                let d = Diagnostic::new(message.clone());
                match hint {
                    Some(h) => d.with_hint(h.clone()),
                    None => d,
                }
            }
            Error::Io { .. } => Diagnostic::new(self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_snippet_and_hint() {
        let d = Diagnostic::new("unknown attribute \"tag\"")
            .at(
                Location {
                    file: "docker-bake.hcl".into(),
                    line: 3,
                    col: 3,
                    len: 3,
                },
                Some("  tag = [\"x\"]".into()),
            )
            .with_hint("did you mean \"tags\"?");
        assert_eq!(
            d.render(),
            "error: unknown attribute \"tag\"\n  --> docker-bake.hcl:3:3\n  |\n3 |   tag = [\"x\"]\n  |   ^^^\n  = hint: did you mean \"tags\"?\n"
        );
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let d = Diagnostic::new("m").at(
            Location {
                file: "f".into(),
                line: 1,
                col: 501,
                len: 1,
            },
            Some(line),
        );
        let r = d.render();
        assert!(r.lines().all(|l| l.chars().count() < 140), "{r}");
        let snippet = r.lines().nth(3).unwrap_or_default();
        let caret = r.lines().nth(4).unwrap_or_default();
        let x = snippet.find('X').expect("X shown");
        assert_eq!(caret.find('^'), Some(x));
    }

    #[test]
    fn exit_codes_are_documented_values() {
        assert_eq!(Error::NotAvailable("x".into()).exit_code() as u8, 2);
        let io = Error::Io {
            context: "reading".into(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(io.exit_code() as u8, 1);
    }
}
