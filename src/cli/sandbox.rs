//! `kiln __sandbox-init`: the hidden helper process a RUN re-executes (see
//! [`crate::engine::run`]). It reads its request on stdin and exits with the command's
//! status; it is not meant to be started by hand.

/// Runs the sandbox helper and gives its exit status.
pub fn run() -> std::process::ExitCode {
    let code = crate::engine::run::sandbox_init_main();
    std::process::ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
}
