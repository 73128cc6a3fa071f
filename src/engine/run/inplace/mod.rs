//! The unprivileged RUN executor, for CI containers where namespaces are not allowed
//! (no `CAP_SYS_ADMIN`, a seccomp profile that refuses `unshare`): like kaniko, the
//! command runs in the container's own root filesystem.
//!
//! For each RUN, under one lock per process (the root is one shared resource):
//! 1. **sync** ([`sync`]): `/` is made to hold exactly the stage's filesystem (its layer
//!    chain), skipping the [`ignore`] list: every mount point but `/`, `/proc`, `/sys`,
//!    `/dev`, the runtime's marker files and kiln's own paths (binary, store, contexts,
//!    outputs, secrets' sources...). Skipped when `/` already holds that state: the
//!    record of what `/` holds is the cache key of the last RUN that ran here.
//! 2. a [`snapshot`] of `/` (one `lstat` per path);
//! 3. the RUN [`mounts`] are put in place (copies, renames, symlinks; no mounts);
//! 4. the [`command`] runs directly (the stage's environment, working directory, user);
//! 5. the mounts are taken away, a second snapshot is taken, and the changes become the
//!    RUN's layer ([`layer`]), by the sandbox's conventions, so the same Dockerfile gives
//!    the same layers in both executors.
//!
//! The layer's files point into `/`: the [`RootLease`] returned with it must be held until
//! the layer is written, so that no other RUN changes `/` meanwhile.
//!
//! Limits (the price of having no namespaces): the command sees the container's network
//! (`--network=none` is refused), hostname, `/etc/hosts`, `/etc/resolv.conf`, `/dev`,
//! `/proc` and every mount of the container, and can change or delete anything that is
//! not read-only, kiln's own files included; one kiln build at a time per container.

mod command;
mod error;
mod ignore;
mod layer;
mod mounts;
mod snapshot;
mod sync;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

pub use error::InplaceError;

use super::executor::Job;
use super::{paths, qemu, NetworkMode};
use crate::engine::fs::LayerSpec;

/// What the root holds and whether a RUN is using it.
#[derive(Debug, Default)]
struct RootState {
    busy: bool,
    /// The cache key of the stage state `/` holds (None: unknown).
    holds: Option<String>,
}

type Shared = Arc<(Mutex<RootState>, Condvar)>;

/// Exclusive use of the root filesystem; released when dropped.
#[derive(Debug)]
pub struct RootLease {
    shared: Shared,
}

impl RootLease {
    fn take(shared: &Shared) -> RootLease {
        let (lock, cv) = &**shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while st.busy {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.busy = true;
        RootLease {
            shared: shared.clone(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut RootState) -> T) -> T {
        let mut st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st)
    }
}

impl Drop for RootLease {
    fn drop(&mut self) {
        self.with(|st| st.busy = false);
        self.shared.1.notify_all();
    }
}

/// A finished RUN.
#[derive(Debug)]
pub struct InplaceOutcome {
    pub exit_code: i32,
    /// The layer (when the command succeeded); its files point into `/`.
    pub layer: Option<LayerSpec>,
    /// Hold until the layer is written.
    pub lease: RootLease,
    /// Things the user should know (stage paths that could not be made as they are).
    pub notes: Vec<String>,
    /// `(written, removed)` when `/` had to be synced to the stage first.
    pub synced: Option<(usize, usize)>,
}

/// The unprivileged executor of one kiln process.
#[derive(Debug)]
pub struct InPlace {
    root: PathBuf,
    protected: Mutex<Vec<PathBuf>>,
    shared: Shared,
}

impl Default for InPlace {
    fn default() -> Self {
        InPlace::new()
    }
}

impl InPlace {
    /// The executor for this machine's root, protecting kiln's own binary.
    pub fn new() -> InPlace {
        let mut protected = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            protected.push(exe);
        }
        InPlace {
            root: PathBuf::from("/"),
            protected: Mutex::new(protected),
            shared: Arc::default(),
        }
    }

    /// Adds paths that RUN steps must never see removed or replaced (kept for the rest
    /// of the process: a later build must not remove an earlier build's output).
    pub fn protect(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut p = self.protected.lock().unwrap_or_else(|e| e.into_inner());
        for path in paths {
            if !path.as_os_str().is_empty() && !p.contains(&path) {
                p.push(path);
            }
        }
    }

    fn protected(&self) -> Vec<PathBuf> {
        self.protected
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Runs a RUN step in `/` (see the module docs); `out` gets stdout and stderr.
    pub fn run(
        &self,
        job: &Job<'_>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<InplaceOutcome, InplaceError> {
        let spec = job.spec;
        validate(spec)?;
        if spec.network == NetworkMode::None {
            return Err(InplaceError::NetworkNone);
        }
        if !rustix::process::geteuid().is_root() {
            return Err(InplaceError::NeedsRoot);
        }
        if let Err(e) = qemu::can_run(&spec.platform_arch) {
            // A container rarely has binfmt_misc mounted, but the host kernel's handlers
            // (with the F flag) still apply to it: try, unless the check saw a reason.
            if std::path::Path::new("/proc/sys/fs/binfmt_misc/status").exists() {
                return Err(e.into());
            }
        }
        let lease = RootLease::take(&self.shared);
        let ignore =
            ignore::IgnoreList::current(&self.protected()).map_err(InplaceError::MountInfo)?;
        let root = self.root.as_path();
        // Until this RUN has finished, nobody knows what `/` holds.
        let held = lease.with(|st| st.holds.take());
        let mut notes = Vec::new();
        let mut synced = None;
        if held.as_deref() != Some(job.parent_key) {
            let report = sync::sync_root(job.view, root, &ignore)?;
            synced = Some((report.written, report.removed));
            notes = report.notes;
        }
        let mut before = snapshot::Snapshot::take(root, &ignore)?;
        let linked = before.hard_linked();
        if !linked.is_empty() {
            sync::break_links(root, &linked)?;
            before = snapshot::Snapshot::take(root, &ignore)?;
        }
        let mut mounts = mounts::MountSet::setup(root, &spec.mounts, &ignore, job.scratch)?;
        paths::mkdir_all_in(root, &spec.cwd, 0o755, Some((spec.uid, spec.gid))).map_err(
            |source| InplaceError::Sync {
                path: spec.cwd.clone(),
                source,
            },
        )?;
        let exit_code = command::run_command(spec, out)?;
        mounts.teardown()?;
        let after = snapshot::Snapshot::take(root, &ignore)?;
        let layer = if exit_code == 0 {
            let changes = before.changes(&after);
            let input = layer::LayerInput {
                root,
                changes: &changes,
                after: &after,
                lower: job.view,
                ignore: &ignore,
                excluded: &mounts.targets,
            };
            let l = layer::layer_of_changes(&input)?;
            lease.with(|st| st.holds = Some(job.key.to_string()));
            Some(l)
        } else {
            None
        };
        Ok(InplaceOutcome {
            exit_code,
            layer,
            lease,
            notes,
            synced,
        })
    }
}

fn validate(spec: &super::RunSpec) -> Result<(), InplaceError> {
    if spec.args.is_empty() {
        return Err(InplaceError::Invalid("no command".into()));
    }
    if !spec.cwd.starts_with('/') {
        return Err(InplaceError::Invalid(format!(
            "the working directory {:?} is not absolute",
            spec.cwd
        )));
    }
    for t in spec.mounts.iter().filter_map(|m| m.target()) {
        if !t.starts_with('/') {
            return Err(InplaceError::Invalid(format!(
                "the mount target {t:?} is not absolute"
            )));
        }
    }
    if spec.args.iter().chain(&spec.env).any(|a| a.contains('\0')) {
        return Err(InplaceError::Invalid(
            "an argument contains a NUL byte".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
