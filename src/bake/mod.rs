//! The bake front end: bake files (HCL, JSON, TOML) -> resolved targets -> target graph.

pub mod eval;

use crate::error::{Diagnostic, ToDiagnostic};

/// Errors of the bake front end.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error("{0}")]
    Other(String),
}

impl ToDiagnostic for BakeError {
    fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::new(self.to_string())
    }
}
