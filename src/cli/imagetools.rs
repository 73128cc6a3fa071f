//! `kiln imagetools`: inspect and create images and indexes in a registry.

use crate::error::Error;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ImagetoolsCommand {
    /// Show an image or index in a registry
    Inspect {
        /// Image reference
        reference: String,
        /// Print the original manifest bytes
        #[arg(long)]
        raw: bool,
        /// Go template for the output
        #[arg(long)]
        format: Option<String>,
    },
    /// Create a new index from existing images and indexes
    Create {
        /// Source references or digests
        sources: Vec<String>,
        /// Tag(s) for the new index
        #[arg(short, long)]
        tag: Vec<String>,
        /// Print the index instead of pushing it
        #[arg(long)]
        dry_run: bool,
        /// Append to the existing index of the first tag
        #[arg(long)]
        append: bool,
        /// Annotations for the new index
        #[arg(long)]
        annotation: Vec<String>,
        /// Read source descriptors from files
        #[arg(short, long)]
        file: Vec<String>,
        /// Only these platforms
        #[arg(short, long)]
        platform: Vec<String>,
    },
}

pub fn run(cmd: ImagetoolsCommand) -> Result<(), Error> {
    match cmd {
        ImagetoolsCommand::Inspect { .. } => super::not_available("kiln imagetools inspect"),
        ImagetoolsCommand::Create { .. } => super::not_available("kiln imagetools create"),
    }
}
