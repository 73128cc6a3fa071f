//! Errors of a build, with the Dockerfile line they come from.

use crate::engine::context::ContextError;
use crate::engine::copy::CopyError;
use crate::engine::layer::LayerError;
use crate::engine::plan::PlanError;
use crate::engine::pull::PullError;
use crate::engine::store::StoreError;
use crate::engine::users::UserError;
use crate::error::{Diagnostic, Location, ToDiagnostic};

/// What went wrong in a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    /// A step failed; `line` is its Dockerfile line.
    #[error("{message}")]
    Step {
        file: String,
        line: usize,
        source_line: Option<String>,
        message: String,
        hint: Option<String>,
    },
    /// A bake target failed (buildx: `target NAME: ...`).
    #[error("target {target}: {source}")]
    Target {
        target: String,
        #[source]
        source: Box<BuildError>,
    },
    /// The build was stopped by [`crate::engine::exec::Engine::cancel`] (another bake
    /// target failed).
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    pub fn step(
        df: &crate::dockerfile::Dockerfile,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        BuildError::Step {
            file: df.file.display().to_string(),
            line,
            source_line: df
                .source
                .lines()
                .nth(line.saturating_sub(1))
                // A URL's password never reaches the terminal.
                .map(crate::engine::copy::git::redact_text),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        if let BuildError::Step { hint, .. } = &mut self {
            *hint = Some(h.into());
        }
        self
    }

    pub fn from_copy(df: &crate::dockerfile::Dockerfile, line: usize, e: CopyError) -> Self {
        BuildError::step(df, line, e.to_string())
    }

    pub fn from_user(df: &crate::dockerfile::Dockerfile, line: usize, e: UserError) -> Self {
        BuildError::step(df, line, e.to_string())
    }
}

impl ToDiagnostic for BuildError {
    fn to_diagnostic(&self) -> Diagnostic {
        match self {
            BuildError::Plan(e) => e.to_diagnostic(),
            BuildError::Oci(e) => e.to_diagnostic(),
            BuildError::Step {
                file,
                line,
                source_line,
                message,
                hint,
            } => {
                let len = source_line
                    .as_ref()
                    .map(|l| l.trim_end().chars().count())
                    .unwrap_or(1);
                let d = Diagnostic::new(message.clone()).at(
                    Location {
                        file: file.into(),
                        line: *line,
                        col: 1,
                        len,
                    },
                    source_line.clone(),
                );
                match hint {
                    Some(h) => d.with_hint(h.clone()),
                    None => d,
                }
            }
            BuildError::Target { target, source } => {
                let mut d = source.to_diagnostic();
                d.message = format!("target {target}: {}", d.message);
                d
            }
            other => Diagnostic::new(other.to_string()),
        }
    }
}
