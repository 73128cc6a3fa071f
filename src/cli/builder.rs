//! `kiln builder`: the embedded engine and remote BuildKit nodes.

use crate::error::Error;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// List builders and the platforms they can build
    Ls,
    /// Add a builder (a remote BuildKit node)
    Create {
        /// Builder name
        #[arg(long)]
        name: Option<String>,
        /// Endpoint, e.g. tcp://host:1234
        endpoint: Option<String>,
    },
    /// Show a builder and the platforms this machine can run
    Inspect { name: Option<String> },
    /// Remove a builder
    Rm { name: String },
    /// Select the default builder
    Use { name: String },
}

pub fn run(cmd: BuilderCommand) -> Result<(), Error> {
    let what = match cmd {
        BuilderCommand::Ls => "kiln builder ls",
        BuilderCommand::Create { .. } => "kiln builder create",
        BuilderCommand::Inspect { .. } => "kiln builder inspect",
        BuilderCommand::Rm { .. } => "kiln builder rm",
        BuilderCommand::Use { .. } => "kiln builder use",
    };
    super::not_available(what)
}
