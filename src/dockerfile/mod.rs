//! The Dockerfile front end: parsing, word expansion, typed instructions, .dockerignore.

pub mod shell;
