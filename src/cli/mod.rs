//! Command-line definitions (clap) and the edge where errors become diagnostics and exit codes.
//! Each subcommand lives in its own file and calls the library.

mod bake;
mod build;
mod builder;
mod cache;
mod ci;
mod imagetools;
mod registry;
mod sandbox;
mod setup;

use crate::error::{Error, ExitCode};
use clap::{Parser, Subcommand};

/// `kiln --version`: the package version and the git commit it was built from.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KILN_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version = LONG_VERSION,
    about = "Build container images from bake files and Dockerfiles, without a daemon",
    long_about = None,
    propagate_version = true,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build targets from docker-bake.hcl / docker-bake.json / kiln.toml files
    Bake(Box<bake::BakeArgs>),
    /// Build one Dockerfile (docker buildx build flags)
    Build(Box<build::BuildArgs>),
    /// Inspect and assemble images and indexes in a registry
    #[command(subcommand)]
    Imagetools(imagetools::ImagetoolsCommand),
    /// Manage builders: the embedded engine and remote BuildKit nodes
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
    /// Inspect and prune the local build cache
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// CI helpers: fan-out matrix, merge by digest, GitHub and GitLab outputs
    #[command(subcommand)]
    Ci(ci::CiCommand),
    /// Prepare this machine (QEMU user emulation for foreign platforms)
    #[command(subcommand)]
    Setup(setup::SetupCommand),
    /// Log in to a registry (writes the Docker config file)
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Pull one platform's image into an OCI layout
    Pull(registry::PullArgs),
    /// Show an image's config (Architecture, Variant, Os, ...) as `docker inspect` does
    Inspect(registry::InspectArgs),
    /// The RUN sandbox helper (started by kiln itself)
    #[command(name = "__sandbox-init", hide = true)]
    SandboxInit,
}

/// Runs the CLI: parse, dispatch, render any error, return the exit code.
pub fn main() -> std::process::ExitCode {
    // A rootless re-execution enters its user namespace first, while single-threaded.
    if crate::engine::run::userns::enter_if_child()
        == crate::engine::run::userns::ChildState::Failed
    {
        // The parent knows, and runs the command itself.
        return ExitCode::Failure.into();
    }
    let cli = Cli::parse();
    if needs_user_namespace(&cli.command) {
        if let crate::engine::run::userns::Reexec::Exited(code) =
            crate::engine::run::userns::reexec_if_rootless()
        {
            return std::process::ExitCode::from(code);
        }
    }
    let result = match cli.command {
        Command::SandboxInit => return sandbox::run(),
        Command::Bake(args) => bake::run(*args),
        Command::Build(args) => build::run(*args),
        Command::Imagetools(cmd) => imagetools::run(cmd),
        Command::Builder(cmd) => builder::run(cmd),
        Command::Cache(cmd) => cache::run(cmd),
        Command::Ci(cmd) => ci::run(cmd),
        Command::Setup(cmd) => setup::run(cmd),
        Command::Login(args) => registry::login(args),
        Command::Logout(args) => registry::logout(args),
        Command::Pull(args) => registry::pull(args),
        Command::Inspect(args) => registry::inspect(args),
    };
    match result {
        Ok(()) => ExitCode::Success.into(),
        Err(err) => report(&err).into(),
    }
}

/// Commands that extract layers, run RUN steps or remove what they made: not as root, they
/// re-execute themselves in a user namespace (rootless, see
/// [`crate::engine::run::userns`]).
fn needs_user_namespace(command: &Command) -> bool {
    match command {
        Command::Build(_) => true,
        Command::Bake(args) => args.builds(),
        Command::Cache(cmd) => cmd.removes(),
        _ => false,
    }
}

/// Prints an error on stderr and gives its exit code. Nothing goes to stdout.
fn report(err: &Error) -> ExitCode {
    eprint!("{}", err.to_diagnostic().render());
    err.exit_code()
}

/// The error for a command that this version does not have yet.
pub(crate) fn not_available(what: &str) -> Result<(), Error> {
    Err(Error::NotAvailable(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
