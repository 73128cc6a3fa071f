//! The RUN executor a build uses: the namespace [sandbox](super::run) or the
//! [unprivileged](super::inplace) one, chosen once per process ([`super::select`]), behind
//! one call that gives the exit status and the layer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use super::inplace::{InPlace, InplaceError, RootLease};
use super::select::ExecutorChoice;
use super::{diff_upper, strip_stubs, RunError, RunSpec};
use crate::engine::fs::LayerSpec;
use crate::engine::layered_fs::LayeredFs;

/// Which executor.
#[derive(Debug)]
pub enum Executor {
    /// Namespaces and overlayfs (`kiln __sandbox-init`).
    Sandbox,
    /// The command runs in the container's own root filesystem.
    Unprivileged(InPlace),
    /// None works here: the first RUN fails with this message and hint.
    Unavailable { message: String, hint: String },
}

/// What can go wrong running a RUN with an executor.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Sandbox(#[from] RunError),
    #[error(transparent)]
    Unprivileged(#[from] InplaceError),
    #[error("{message}")]
    Unavailable { message: String, hint: String },
}

impl ExecutorError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ExecutorError::Sandbox(RunError::Unsupported(_)) => {
                Some("inside a CI container without namespaces, use --executor=unprivileged".into())
            }
            ExecutorError::Sandbox(e) => e.hint(),
            ExecutorError::Unprivileged(e) => e.hint(),
            ExecutorError::Unavailable { hint, .. } => Some(hint.clone()),
        }
    }
}

/// One RUN to execute.
pub struct Job<'a> {
    pub spec: &'a RunSpec,
    /// The stage's extracted layer dirs, top first, each once (the sandbox's lowerdirs).
    pub lower: &'a [PathBuf],
    /// The stage's filesystem (those layers).
    pub view: &'a LayeredFs,
    /// An empty directory the caller owns and removes after writing the layer.
    pub scratch: &'a Path,
    /// The targets of the RUN's mounts (never part of the layer).
    pub mount_targets: &'a [String],
    /// The cache key of the stage state the RUN starts from.
    pub parent_key: &'a str,
    /// The RUN's own cache key (the state the filesystem holds afterwards).
    pub key: &'a str,
}

/// Keeps what the layer's files need until the layer is written.
#[derive(Debug, Default)]
pub struct Hold {
    _lease: Option<RootLease>,
}

/// A RUN that ran.
#[derive(Debug)]
pub struct Finished {
    pub exit_code: i32,
    /// The RUN's layer, when the command succeeded.
    pub layer: Option<LayerSpec>,
    /// Warnings for the user.
    pub notes: Vec<String>,
    /// Lines for the step's log (what the executor did besides the command).
    pub log: Vec<String>,
    pub hold: Hold,
    /// The sandbox's overlay upper dir, stripped of the mount stubs: the layer in overlay
    /// form, which the store can keep as the layer's extracted directory.
    pub upper: Option<PathBuf>,
}

/// The executor chosen for this process, why, and whether that was said yet. With
/// `--executor=auto` the choice (which forks a probe) is made when a build first needs
/// it, i.e. at its first RUN: builds without RUN never probe.
#[derive(Debug)]
pub struct Selected {
    /// How to choose, for a choice not made yet.
    choice: ExecutorChoice,
    /// The executor and why it was chosen (shown once, and by `kiln builder inspect`).
    chosen: OnceLock<(Executor, String)>,
    /// Paths builds asked to protect; handed to the executor when it is chosen. Its lock
    /// also serialises the choice with [`Selected::protect`].
    protected: Mutex<Vec<PathBuf>>,
    noted: AtomicBool,
}

impl Default for Selected {
    /// The sandbox, as before there was a choice (library callers, tests).
    fn default() -> Self {
        Selected::new(Executor::Sandbox, "the default")
    }
}

impl Selected {
    /// An executor chosen already.
    pub fn new(executor: Executor, reason: impl Into<String>) -> Selected {
        let selected = Selected::deferred(ExecutorChoice::Sandbox);
        let _ = selected.chosen.set((executor, reason.into()));
        selected
    }

    /// An executor to be chosen by `choice` ([`super::select::choose`]) when first needed.
    pub fn deferred(choice: ExecutorChoice) -> Selected {
        Selected {
            choice,
            chosen: OnceLock::new(),
            protected: Mutex::new(Vec::new()),
            noted: AtomicBool::new(false),
        }
    }

    fn chosen(&self) -> &(Executor, String) {
        if let Some(c) = self.chosen.get() {
            return c;
        }
        let protected = self.protected.lock().unwrap_or_else(|e| e.into_inner());
        self.chosen.get_or_init(|| {
            let (executor, reason) = super::select::choose(self.choice);
            if let Executor::Unprivileged(ip) = &executor {
                ip.protect(protected.iter().cloned());
            }
            (executor, reason)
        })
    }

    /// The executor (chosen now if it was not yet).
    pub fn executor(&self) -> &Executor {
        &self.chosen().0
    }

    /// Why it was chosen.
    pub fn reason(&self) -> &str {
        &self.chosen().1
    }

    /// `sandbox`, `unprivileged` or `none`.
    pub fn name(&self) -> &'static str {
        match self.executor() {
            Executor::Sandbox => "sandbox",
            Executor::Unprivileged(_) => "unprivileged",
            Executor::Unavailable { .. } => "none",
        }
    }

    /// The line to show the user, the first time only.
    pub fn take_note(&self) -> Option<String> {
        if self.noted.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!("RUN executor: {} ({})", self.name(), self.reason()))
    }

    /// Paths of a build that the unprivileged executor must leave alone (kept for an
    /// executor chosen later).
    pub fn protect(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut protected = self.protected.lock().unwrap_or_else(|e| e.into_inner());
        let paths: Vec<PathBuf> = paths.into_iter().collect();
        if let Some((Executor::Unprivileged(ip), _)) = self.chosen.get() {
            ip.protect(paths.iter().cloned());
        }
        protected.extend(paths);
    }

    /// Runs the job; `out` receives the command's output.
    pub fn run(
        &self,
        job: &Job<'_>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<Finished, ExecutorError> {
        match self.executor() {
            Executor::Sandbox => {
                let outcome = super::run(job.lower, job.spec, job.scratch, out)?;
                let (layer, upper) = if outcome.exit_code == 0 {
                    let layer = diff_upper(&outcome.upper, job.view, job.mount_targets)?;
                    let upper = strip_stubs(&outcome.upper, job.view, job.mount_targets)
                        .ok()
                        .map(|()| outcome.upper.clone());
                    (Some(layer), upper)
                } else {
                    (None, None)
                };
                Ok(Finished {
                    exit_code: outcome.exit_code,
                    layer,
                    notes: Vec::new(),
                    log: Vec::new(),
                    hold: Hold::default(),
                    upper,
                })
            }
            Executor::Unprivileged(ip) => {
                let o = ip.run(job, out)?;
                Ok(Finished {
                    exit_code: o.exit_code,
                    layer: o.layer,
                    notes: o.notes,
                    log: o
                        .synced
                        .map(|(w, r)| {
                            format!(
                                "unprivileged: / synced to the stage ({w} written, {r} removed)"
                            )
                        })
                        .into_iter()
                        .collect(),
                    hold: Hold {
                        _lease: Some(o.lease),
                    },
                    upper: None,
                })
            }
            Executor::Unavailable { message, hint } => Err(ExecutorError::Unavailable {
                message: message.clone(),
                hint: hint.clone(),
            }),
        }
    }
}
