//! The bake front end: bake files (HCL, JSON, TOML) -> resolved targets -> target graph.

pub mod csv;
pub mod eval;
pub mod limits;
pub mod suggest;
pub mod syntax;

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
