//! The changes between two snapshots of the root as a layer, by the conventions of the
//! sandbox's overlay differ ([`super::super::diff`]), so that a Dockerfile gives the same
//! layers in both executors:
//!
//! * a created or changed path is recorded unless it equals the stage's entry by
//!   BuildKit's `sameDirent` (the same comparison the sandbox uses);
//! * a removed path is one deletion (a whiteout), only where its parent directory is
//!   still there (a removed directory is one whiteout, not one per child) and only if the
//!   stage had it; a directory removed and made again thus gets one whiteout per old
//!   child that is gone, as the sandbox's opaque directories do;
//! * parents of recorded paths are repeated, hard links paired, sockets left out, only
//!   `security.capability` kept ([`super::super::diff::finish_layer`]);
//! * RUN mount targets (and what is below them) and kiln's scaffolding directories
//!   (ancestors of its own paths that the stage does not have) are never recorded.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::error::InplaceError;
use super::ignore::IgnoreList;
use super::snapshot::{Changes, Snapshot};
use crate::engine::fs::{parent, Entry, EntryKind, FsView, LayerSpec};
use crate::engine::run::diff::{finish_layer, layer_entry, same};
use crate::engine::run::RunError;

/// Where the layer comes from.
pub(crate) struct LayerInput<'a> {
    pub root: &'a Path,
    pub changes: &'a Changes,
    pub after: &'a Snapshot,
    /// The stage's filesystem before the RUN.
    pub lower: &'a dyn FsView,
    pub ignore: &'a IgnoreList,
    /// In-root paths of the RUN's mount targets.
    pub excluded: &'a [String],
}

fn under(path: &str, top: &str) -> bool {
    path == top || (path.starts_with(top) && path.as_bytes().get(top.len()) == Some(&b'/'))
}

fn diff_err(path: &str) -> impl FnOnce(std::io::Error) -> InplaceError + '_ {
    move |source| {
        InplaceError::Run(RunError::Diff {
            path: path.to_string(),
            source,
        })
    }
}

fn lookup(lower: &dyn FsView, path: &str) -> Result<Option<Entry>, InplaceError> {
    match lower.lookup(path) {
        Ok(e) => Ok(e),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(diff_err(path)(e)),
    }
}

/// The layer of the changes (see the module docs). Regular files point into the root:
/// write the layer before anything changes it again.
pub(crate) fn layer_of_changes(input: &LayerInput<'_>) -> Result<LayerSpec, InplaceError> {
    let excluded = |p: &str| input.excluded.iter().any(|t| under(p, t));
    let mut recorded: Vec<(Entry, Option<(u64, u64)>)> = Vec::new();
    for path in &input.changes.changed {
        if excluded(path) {
            continue;
        }
        let real = input.root.join(path.trim_start_matches('/'));
        let meta = match std::fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(diff_err(path)(e)),
        };
        if meta.file_type().is_socket() {
            continue;
        }
        let lower = lookup(input.lower, path)?;
        if lower.is_none() && input.ignore.is_scaffold(path) {
            continue;
        }
        let entry = layer_entry(&real, path, &meta)?;
        let changed = match &lower {
            None => true,
            Some(l) => !same(l, &entry, &meta).map_err(diff_err(path))?,
        };
        if changed {
            let ino = (!meta.is_dir() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
            recorded.push((entry, ino));
        }
    }
    for path in &input.changes.removed {
        if excluded(path) {
            continue;
        }
        let p = parent(path);
        if p != "/" && !input.after.entries.get(p).is_some_and(|s| s.is_dir()) {
            continue;
        }
        if lookup(input.lower, path)?.is_some() {
            let mut e = Entry::dir(path.clone(), 0, 0, 0);
            e.kind = EntryKind::Whiteout;
            recorded.push((e, None));
        }
    }
    Ok(finish_layer(input.root, input.lower, recorded)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_is_by_component() {
        assert!(under("/run/secrets/x", "/run/secrets"));
        assert!(under("/run/secrets", "/run/secrets"));
        assert!(!under("/run/secrets2", "/run/secrets"));
    }
}
