//! `kiln ci`: CI fan-out and outputs.

use crate::error::Error;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Print the fan-out matrix (one entry per target and platform) as JSON
    Matrix,
    /// Merge images pushed by digest into one index
    Merge,
    /// Write outputs, step summary and annotations for GitHub Actions
    Github,
    /// Write a dotenv report for GitLab CI
    Gitlab,
}

pub fn run(cmd: CiCommand) -> Result<(), Error> {
    let what = match cmd {
        CiCommand::Matrix => "kiln ci matrix",
        CiCommand::Merge => "kiln ci merge",
        CiCommand::Github => "kiln ci github",
        CiCommand::Gitlab => "kiln ci gitlab",
    };
    super::not_available(what)
}
