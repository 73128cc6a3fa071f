//! The Dockerfile front end: parsing, word expansion, typed instructions, .dockerignore.

pub mod error;
pub mod instructions;
pub mod parser;
pub mod shell;

#[cfg(test)]
mod conformance_tests;
pub mod ignore;
