//! `kiln setup`: machine preparation.

use crate::error::Error;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Register QEMU user emulation (binfmt_misc, F flag) for foreign platforms
    Qemu {
        /// Platforms to register: all, or a list such as arm64,riscv64
        #[arg(long, default_value = "all")]
        install: String,
    },
}

pub fn run(cmd: SetupCommand) -> Result<(), Error> {
    match cmd {
        SetupCommand::Qemu { install } => {
            let arches: Vec<String> = if install == "all" {
                crate::setup::ALL.iter().map(|s| s.to_string()).collect()
            } else {
                install
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let report = crate::setup::install_qemu(&arches).map_err(|e| Error::Usage {
                message: e.to_string(),
                hint: None,
            })?;
            for line in report {
                println!("{line}");
            }
            println!(
                "platforms this machine can build RUN steps for: {}",
                crate::engine::run::qemu::supported_platforms().join(", ")
            );
            Ok(())
        }
    }
}
