//! Errors of the unprivileged executor (not the command failing: that is an exit code).

use super::super::RunError;

#[derive(Debug, thiserror::Error)]
pub enum InplaceError {
    /// Writing the stage's files into `/` needs root (like kaniko).
    #[error(
        "the unprivileged executor needs root: it rewrites the root filesystem to the stage's"
    )]
    NeedsRoot,
    /// `RUN --network=none` without a network namespace.
    #[error(
        "RUN --network=none needs a network namespace, which the unprivileged executor cannot \
         create: the command would have the container's network"
    )]
    NetworkNone,
    #[error("invalid RUN: {0}")]
    Invalid(String),
    /// Making `/` hold the stage's filesystem failed at `path`.
    #[error("syncing / to the stage's filesystem at {path}: {source}")]
    Sync {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Walking `/` for the snapshot failed at `path`.
    #[error("taking a snapshot of / at {path}: {source}")]
    Snapshot {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A `RUN --mount` that cannot be emulated here.
    #[error("RUN --mount target {target}: {reason}")]
    Mount { target: String, reason: String },
    #[error("reading /proc/self/mountinfo: {0}")]
    MountInfo(#[source] std::io::Error),
    #[error("starting the command: {0}")]
    Spawn(#[source] std::io::Error),
    /// The emulator check, or the layer of the changes.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl InplaceError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            InplaceError::NetworkNone => Some(
                "drop --network=none from the RUN, or build where namespaces are allowed \
                 (--executor=sandbox)"
                    .into(),
            ),
            InplaceError::NeedsRoot => Some("run kiln as root inside the CI container".into()),
            InplaceError::Run(RunError::NoEmulator { .. }) => {
                Some("run `kiln setup qemu` on the host that runs the container".into())
            }
            _ => None,
        }
    }
}

pub(crate) fn sync_err(path: &str) -> impl FnOnce(std::io::Error) -> InplaceError + '_ {
    move |source| InplaceError::Sync {
        path: path.to_string(),
        source,
    }
}
