//! The Dockerfile front end: everything about a Dockerfile that does not need to run
//! anything. It follows BuildKit's Dockerfile frontend (the oracle of the conformance
//! corpus) so that kiln reads every Dockerfile exactly as `docker buildx build` does.
//!
//! * [`parser`]: physical lines -> logical instructions ([`parser::Node`]) with line
//!   ranges: directives (`# syntax=`, `# escape=`, `# check=`), continuations,
//!   comments, JSON vs shell form, flags, heredocs.
//! * [`instructions`]: nodes -> typed [`instructions::Instruction`]s grouped into
//!   [`instructions::Stage`]s, global ARGs apart ([`instructions::parse_dockerfile`]);
//!   [`instructions::Instruction::expand`] applies the variable rules at build time;
//!   [`instructions::Mount::parse`] reads `RUN --mount` values.
//! * [`shell`]: BuildKit's word expansion ([`shell::Lex`]).
//! * [`ignore`]: `.dockerignore` ([`ignore::Matcher`]).
//! * [`error`]: [`error::DockerfileError`], rendered through
//!   [`crate::error::ToDiagnostic`].
//!
//! Typical use by the planner:
//!
//! ```
//! use kiln::dockerfile::instructions::{parse_dockerfile, Instruction};
//!
//! let df = parse_dockerfile("ARG BASE=alpine\nFROM $BASE AS build\nENV D=/app\nWORKDIR $D\n", "Dockerfile")?;
//! let lex = df.lex();
//! let stage = &df.stages[0];
//! let env = vec![("D".to_string(), "/app".to_string())];
//! let mut workdir = stage.commands[1].instruction.clone();
//! workdir.expand(&lex, &env)?;
//! assert_eq!(workdir, Instruction::Workdir("/app".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use error::{DockerfileError, ErrorKind, Phase};
pub use instructions::{parse_dockerfile, Dockerfile, Instruction, Stage};

#[cfg(test)]
mod conformance_tests;
