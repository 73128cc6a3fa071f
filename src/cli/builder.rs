//! `kiln builder`: the embedded engine (and, later, remote BuildKit nodes).

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

/// The one builder kiln has today.
const EMBEDDED: &str = "kiln";

fn platforms() -> String {
    let mut p = crate::engine::run::qemu::supported_platforms();
    if let Some(first) = p.first_mut() {
        first.push('*');
    }
    p.join(", ")
}

/// The RUN executor a build would use here (`KILN_EXECUTOR`, default auto) and why.
fn executor() -> Result<String, Error> {
    let var = crate::engine::run::select::ENV_EXECUTOR;
    let choice = std::env::var(var).unwrap_or_default();
    let choice: crate::engine::run::select::ExecutorChoice =
        choice.parse().map_err(|e: String| Error::Usage {
            message: format!("{var}: {e}"),
            hint: None,
        })?;
    let s = crate::engine::run::select::select(choice);
    Ok(match s.executor() {
        crate::engine::run::Executor::Unavailable { message, hint } => {
            format!("none ({message}; {hint})")
        }
        _ => format!("{} ({})", s.name(), s.reason()),
    })
}

pub fn run(cmd: BuilderCommand) -> Result<(), Error> {
    match cmd {
        BuilderCommand::Ls => {
            println!("{:<16}{:<12}{:<10}PLATFORMS", "NAME", "DRIVER", "STATUS");
            println!(
                "{:<16}{:<12}{:<10}{}",
                format!("{EMBEDDED} *"),
                "embedded",
                "running",
                platforms()
            );
            Ok(())
        }
        BuilderCommand::Inspect { name } => {
            if let Some(n) = name.filter(|n| n != EMBEDDED) {
                return Err(Error::Usage {
                    message: format!("no builder {n:?} found"),
                    hint: Some(format!("the embedded builder is called {EMBEDDED:?}; remote BuildKit nodes are not available yet in this version")),
                });
            }
            let store = crate::engine::store::Store::default_root()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            println!("Name:          {EMBEDDED}");
            println!("Driver:        embedded");
            println!("Store:         {store}");
            println!("Status:        running");
            println!("Platforms:     {}", platforms());
            println!("Executor:      {}", executor()?);
            let executor = crate::engine::run::userns::executor();
            println!("RUN:           {}", executor.describe());
            if let Some(w) = executor.warning() {
                println!("RUN warning:   {w}");
            }
            if let crate::engine::run::userns::Executor::Unavailable { fix, .. } = &executor {
                println!("RUN fix:       {fix}");
            }
            Ok(())
        }
        BuilderCommand::Create { .. } => {
            super::not_available("kiln builder create (remote BuildKit nodes)")
        }
        BuilderCommand::Rm { .. } => super::not_available("kiln builder rm"),
        BuilderCommand::Use { .. } => super::not_available("kiln builder use"),
    }
}
