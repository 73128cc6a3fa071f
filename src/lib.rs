//! kiln: a bake-style container build runner with an embedded, daemonless image builder.
//!
//! Data flows one way (see DESIGN.md): `cli` -> `bake` (load, eval, graph) -> `driver` ->
//! `engine` -> `report` -> `ci`. Nothing below `cli` prints or exits: progress goes through
//! the [`progress`] sink and errors are values that [`error::Error`] turns into diagnostics.

pub mod bake;
pub mod cli;
pub mod dockerfile;
pub mod driver;
pub mod engine;
pub mod error;
pub mod goduration;
pub mod oci;
pub mod pathutil;
pub mod progress;
pub mod setup;
