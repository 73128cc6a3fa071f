//! `kiln cache`: the local build cache in $KILN_HOME.

use crate::error::Error;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show disk usage of the build cache
    Du,
    /// Remove build cache
    Prune {
        /// Keep this much storage (e.g. 10GB)
        #[arg(long)]
        keep_storage: Option<String>,
        /// Filters, e.g. until=24h
        #[arg(long)]
        filter: Vec<String>,
        /// Remove everything
        #[arg(short, long)]
        all: bool,
    },
}

pub fn run(cmd: CacheCommand) -> Result<(), Error> {
    match cmd {
        CacheCommand::Du => super::not_available("kiln cache du"),
        CacheCommand::Prune { .. } => super::not_available("kiln cache prune"),
    }
}
