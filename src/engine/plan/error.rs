//! [`PlanError`]: what can go wrong while planning, located in the Dockerfile.

use std::path::PathBuf;

use crate::dockerfile::DockerfileError;
use crate::error::{Diagnostic, ToDiagnostic};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// An error at a Dockerfile line (unknown stage, cycle, bad platform, expansion,
    /// a base the resolver could not provide...), with the instruction.
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    /// `--target` names no stage.
    #[error("target stage {target:?} could not be found{}", suggestion.as_deref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    MissingTarget {
        file: PathBuf,
        target: String,
        /// The named stages and the line of their FROM.
        available: Vec<(String, usize)>,
        suggestion: Option<String>,
    },
    /// Reported by a [`super::BaseResolver`]: the image has no manifest for the platform.
    #[error("{reference}: no image for platform {platform} (available: {})", available.join(", "))]
    PlatformMissing {
        reference: String,
        /// `os/arch[/variant]`.
        platform: String,
        available: Vec<String>,
    },
    /// Reported by a [`super::BaseResolver`]: any other failure to get an image.
    #[error("{reference}: {message}")]
    Resolve { reference: String, message: String },
}

impl ToDiagnostic for PlanError {
    fn to_diagnostic(&self) -> Diagnostic {
        match self {
            PlanError::Dockerfile(e) => e.to_diagnostic(),
            PlanError::MissingTarget {
                file, available, ..
            } => {
                let list = if available.is_empty() {
                    "the Dockerfile has no named stages".to_string()
                } else {
                    let names: Vec<String> = available
                        .iter()
                        .map(|(n, l)| format!("{n} ({}:{l})", file.display()))
                        .collect();
                    format!("available stages: {}", names.join(", "))
                };
                Diagnostic::new(self.to_string()).with_hint(list)
            }
            PlanError::PlatformMissing { .. } => Diagnostic::new(self.to_string())
                .with_hint("pick a platform the image provides, or build it for this one"),
            PlanError::Resolve { .. } => Diagnostic::new(self.to_string()),
        }
    }
}
