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
        SetupCommand::Qemu { .. } => super::not_available("kiln setup qemu"),
    }
}
