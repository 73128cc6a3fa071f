//! `kiln bake`: resolve bake files into targets; `--print` shows them as buildx does.

use crate::error::Error;
use clap::Args;

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// Targets or groups to build (default: the "default" group)
    pub targets: Vec<String>,
    /// Build definition file(s); "-" reads standard input
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// Print the options without building
    #[arg(long)]
    pub print: bool,
    /// List targets or variables (targets, variables, type=targets,format=json)
    #[arg(long)]
    pub list: Option<String>,
    /// Override target value (e.g., targetpattern.key=value)
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Set a variable (NAME=VALUE)
    #[arg(long = "var")]
    pub vars: Vec<String>,
    /// Shorthand for --set=*.output=type=registry
    #[arg(long)]
    pub push: bool,
    /// Shorthand for --set=*.output=type=docker
    #[arg(long)]
    pub load: bool,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Shorthand for --set=*.attest=type=provenance
    #[arg(long)]
    pub provenance: Option<String>,
    /// Shorthand for --set=*.attest=type=sbom
    #[arg(long)]
    pub sbom: Option<String>,
    /// Set method for evaluating build (build, check, outline, targets)
    #[arg(long)]
    pub call: Option<String>,
    /// Shorthand for --call=check
    #[arg(long)]
    pub check: bool,
    /// Write build result metadata to a file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<String>,
    /// Allow build to access specified resources
    #[arg(long)]
    pub allow: Vec<String>,
    /// Override the configured builder instance
    #[arg(long)]
    pub builder: Option<String>,
    /// Set type of progress output (auto, tty, plain, quiet, rawjson)
    #[arg(long, env = crate::progress::ENV_PROGRESS, default_value = "auto")]
    pub progress: String,
}

pub fn run(args: BakeArgs) -> Result<(), Error> {
    let _ = args;
    super::not_available("kiln bake")
}
