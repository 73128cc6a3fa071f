//! `kiln build`: one Dockerfile, with `docker buildx build` flags.

use crate::error::Error;
use clap::Args;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build context (a directory)
    pub context: String,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Name and optionally a tag (name:tag); repeatable
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Build-time variables (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Additional build contexts (NAME=VALUE)
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Target platforms (os/arch[/variant]), comma-separated or repeated
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Target build stage
    #[arg(long)]
    pub target: Option<String>,
    /// Output destination (type=local,dest=path etc.)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Shorthand for --output=type=registry
    #[arg(long)]
    pub push: bool,
    /// Shorthand for --output=type=docker
    #[arg(long)]
    pub load: bool,
    /// Secrets to expose to the build (id=mysecret[,src=/local/secret])
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent sockets or keys to expose (default|<id>[=<socket>|<key>[,<key>]])
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Metadata for the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Annotations for the image
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// External cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Cache export destinations
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Do not cache specified stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Networking mode for RUN instructions
    #[arg(long)]
    pub network: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Extra privileged entitlements (network.host, security.insecure)
    #[arg(long)]
    pub allow: Vec<String>,
    /// Attestation parameters (type=sbom,generator=image)
    #[arg(long)]
    pub attest: Vec<String>,
    /// Shorthand for --attest=type=provenance
    #[arg(long)]
    pub provenance: Option<String>,
    /// Shorthand for --attest=type=sbom
    #[arg(long)]
    pub sbom: Option<String>,
    /// Write build result metadata to a file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<String>,
    /// Write the image ID to a file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Set type of progress output (auto, tty, plain, quiet, rawjson)
    #[arg(long, env = crate::progress::ENV_PROGRESS, default_value = "auto")]
    pub progress: String,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: BuildArgs) -> Result<(), Error> {
    let _ = args;
    super::not_available("kiln build (the embedded engine)")
}
