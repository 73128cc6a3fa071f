//! RUN: executing a command in a daemonless sandbox over a layer chain, and turning what it
//! changed into a layer.
//!
//! [`run`] (or [`run_with_helper`]) re-executes a helper binary (`kiln __sandbox-init`, see
//! [`sandbox_init_main`]) that unshares mount, pid, ipc and uts namespaces (and net for
//! [`NetworkMode::None`]), mounts an overlay of the layers with a fresh upper dir in the
//! caller's scratch dir, sets up `/dev`, `/proc`, `/sys`, `/etc/hosts`, `/etc/resolv.conf`
//! and the RUN mounts, and runs the command as PID 1's child in the new pid namespace.
//! [`diff_upper`] turns the upper dir into a [`LayerSpec`](crate::engine::fs::LayerSpec) the way BuildKit's overlay differ
//! does. [`qemu`] checks binfmt_misc for foreign platforms.
//!
//! Wiring (the build executor):
//! * call [`run`] from kiln (the helper is `/proc/self/exe`), or [`run_with_helper`] with
//!   the path of a `kiln` binary (tests); call it on a thread that lives until it returns
//!   (the helper dies with the thread that started it: `PR_SET_PDEATHSIG`);
//! * `scratch` must be an empty directory on a filesystem that supports overlayfs upper
//!   dirs (xattrs, whiteouts: not another overlay); [`run`] creates `upper/`, `work/`,
//!   `merged/`, `empty/`, `l/`, `secrets/`, `hosts`, `resolv.conf` in it. Write the layer
//!   from [`diff_upper`] (its files point into `upper/`) before removing `scratch`;
//! * mounts: cache dirs are created by the caller with the `uid`/`gid`/`mode` asked for;
//!   a `rw` bind needs a throw-away copy of its source (writes are discarded in BuildKit);
//!   a heredoc script is a read-only [`MountSpec::Bind`] of a 0755 file at
//!   `/dev/pipes/<name>`; optional secrets that are missing are simply left out;
//! * [`qemu::can_run`] runs first inside [`run`], so a foreign RUN fails before anything
//!   starts; [`cancel_all`] kills every running sandbox (for a caller that handles
//!   Ctrl-C itself).
//!
//! Rootless: when kiln is not root, `kiln build`/`kiln bake` first re-execute themselves in
//! a user namespace ([`userns`]); inside it kiln is uid 0, and the sandbox works as for
//! root with a few differences: overlayfs is mounted with `userxattr` (the opaque xattr is
//! `user.overlay.opaque`), device nodes are bind mounts of the host's, a read-only bind
//! keeps the locked flags of its source, and `setgroups` is skipped where the namespace
//! denies it.
//!
//! Why a re-executed helper rather than a plain `fork`: the caller is a multi-threaded
//! (tokio) process, where only async-signal-safe calls are allowed between `fork` and
//! `exec`; the sandbox set-up allocates, reads files and forks again. A fresh process is
//! single-threaded, so it can do all of that safely.

mod diff;
mod init;
mod mounts;
mod paths;
pub mod qemu;
mod sandbox;
pub mod userns;
// The pluggable executor: the sandbox above or the unprivileged one (no namespaces).
mod executor;
pub mod inplace;
pub mod select;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use diff::{diff_upper, strip_stubs};
pub use executor::{Executor, ExecutorError, Finished, Hold, Job, Selected};
pub use init::sandbox_init_main;
pub use sandbox::{cancel_all, check_available, preflight, run_with_helper};

/// The hidden subcommand the helper binary is started with.
pub const HELPER_SUBCOMMAND: &str = "__sandbox-init";

/// The network a RUN sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    /// An own, empty network namespace with only `lo` (up).
    None,
    /// The host's network.
    Host,
    /// The default network: the host's here (kiln has no CNI).
    #[default]
    Default,
}

/// A mount of `RUN --mount`, prepared by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSpec {
    /// A host directory or file (a context, another stage's rootfs...).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs { target: String, size: Option<u64> },
    /// A persistent host directory the caller owns (cache mount).
    Cache {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A file holding a secret, shown at `target` with this mode and owner.
    Secret {
        source: PathBuf,
        target: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A secret as an environment variable of the command only.
    SecretEnv { name: String, value: String },
    /// An SSH agent socket, shown at `target`.
    Ssh {
        socket: PathBuf,
        target: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

impl MountSpec {
    /// The path inside the container this mount appears at (None for env secrets).
    pub fn target(&self) -> Option<&str> {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Tmpfs { target, .. }
            | MountSpec::Cache { target, .. }
            | MountSpec::Secret { target, .. }
            | MountSpec::Ssh { target, .. } => Some(target),
            MountSpec::SecretEnv { .. } => None,
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// argv (shell form already wrapped: `["/bin/sh", "-c", "..."]`).
    pub args: Vec<String>,
    /// `KEY=VALUE` (PATH, HOME etc. already there).
    pub env: Vec<String>,
    /// Absolute working directory, created 0755 (owned by uid:gid) if missing.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary gid is added in front, as runc does).
    pub additional_gids: Vec<u32>,
    /// `buildkitsandbox` for BuildKit's behaviour.
    pub hostname: String,
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    /// The target architecture (`amd64`, `arm64`, ...): a foreign one needs binfmt_misc.
    pub platform_arch: String,
    /// `--add-host` entries: (host, ip).
    pub extra_hosts: Vec<(String, String)>,
    /// `RUN --security=insecure` (with the `security.insecure` entitlement): every
    /// capability, `/sys` writable, nothing of `/proc` masked, as BuildKit's insecure mode.
    #[serde(default)]
    pub insecure: bool,
}

/// How a run ended. A non-zero exit is not an error: the caller reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The command's exit status; 128+N when killed by signal N; 127 when the program
    /// was not found, 126 when it could not be executed.
    pub exit_code: i32,
    /// The overlay upper dir (inside the scratch dir): the input of [`diff_upper`].
    pub upper: PathBuf,
}

/// What can go wrong running a RUN (not the command failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The sandbox could not be set up; `step` says what failed (e.g. "mounting overlay").
    #[error("sandbox set-up failed while {step}: {message}")]
    Setup { step: String, message: String },
    /// Starting or talking to the helper process failed.
    #[error("sandbox helper {helper}: {source}")]
    Helper {
        helper: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A foreign architecture without a usable binfmt_misc handler.
    #[error("cannot run {arch} binaries on this machine: {reason}; run `kiln setup qemu` to register QEMU user emulation")]
    NoEmulator { arch: String, reason: String },
    /// The spec is not usable (relative cwd, empty argv...).
    #[error("invalid RUN: {0}")]
    Invalid(String),
    /// Namespaces / overlayfs are not available to this process.
    #[error("the RUN sandbox is not available here: {0}")]
    Unsupported(String),
    /// No sandbox for this process at all (not root and no user namespace): why, and
    /// what fixes it.
    #[error("RUN needs a sandbox, and this process cannot get one: {reason}")]
    NoSandbox { reason: String, fix: String },
    /// A rootless user namespace without this id (single-id mapping, or outside the
    /// subordinate ranges).
    #[error("the RUN needs {what} {id}, which this rootless user namespace cannot represent (its map: {map})")]
    UnmappedId {
        what: &'static str,
        id: u32,
        map: String,
    },
    /// Reading the upper dir or the lower layers while computing the diff.
    #[error("computing the RUN layer at {path}: {source}")]
    Diff {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A path in the upper dir escapes it or is not what overlayfs writes.
    #[error("unexpected entry in the RUN layer at {path}: {reason}")]
    UnsafeDiff { path: String, reason: String },
}

impl RunError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::NoSandbox { fix, .. } => Some(fix.clone()),
            RunError::UnmappedId { .. } => Some(userns::unmapped_hint()),
            _ => None,
        }
    }
}

/// Runs `spec` over `lower` (extracted layer dirs, top first; may be empty) with the
/// running executable as the helper (`/proc/self/exe __sandbox-init`): the `kiln` binary.
/// `scratch` is a fresh empty directory the caller owns and removes afterwards; it gets
/// `upper/`, `work/`, `merged/` and a few small files. `out` receives the command's
/// stdout and stderr, interleaved as written.
pub fn run(
    lower: &[PathBuf],
    spec: &RunSpec,
    scratch: &Path,
    out: &mut dyn FnMut(&[u8]),
) -> Result<RunOutcome, RunError> {
    run_with_helper(Path::new("/proc/self/exe"), lower, spec, scratch, out)
}

/// The arch name (GOARCH style) of the machine kiln runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
