//! `kiln imagetools`: inspect and create images and indexes in a registry.

use crate::error::Error;
use crate::oci::imagetools::{self, CreateOptions, InspectOptions};
use crate::oci::{Client, ClientConfig, OciError};
use clap::Subcommand;
use std::io::Write as _;

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
        /// With a single manifest source, make a one-entry index (false: copy the manifest)
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        prefer_index: bool,
    },
}

/// A small runtime for registry work from the CLI.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            context: "starting the async runtime".into(),
            source: e,
        })
}

fn print(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        // the reader went away (`| head`): nothing left to say
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
    .map_err(|e| Error::Io {
        context: "writing to stdout".into(),
        source: e,
    })
}

pub fn run(cmd: ImagetoolsCommand) -> Result<(), Error> {
    let client = Client::new(ClientConfig::from_env())?;
    let rt = runtime()?;
    let out = match cmd {
        ImagetoolsCommand::Inspect {
            reference,
            raw,
            format,
        } => {
            let opts = InspectOptions { raw, format };
            rt.block_on(imagetools::inspect(&client, &reference, &opts))?
        }
        ImagetoolsCommand::Create {
            sources,
            tag,
            dry_run,
            append,
            annotation,
            file,
            platform,
            prefer_index,
        } => {
            let mut file_sources = Vec::new();
            for f in &file {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| OciError::io(format!("reading source file {f}"), e))?;
                file_sources.push(text);
            }
            let opts = CreateOptions {
                sources,
                file_sources,
                tags: tag,
                dry_run,
                append,
                annotations: annotation,
                platforms: platform,
                prefer_index,
            };
            rt.block_on(imagetools::create(&client, &opts))?
        }
    };
    print(&out)
}
