//! Extracted layers: `layers/sha256/<diffid-hex>/diff`, made once, shared by processes.

use std::path::{Path, PathBuf};

use super::{digest_hex, io_err, temp_name, Store, StoreError, StoreLock};
use crate::engine::fs::LayerSpec;
use crate::engine::layer::{extract_layer_verified, write_layer, LayerBlob, LayerOptions};

impl Store {
    /// The directory of the extracted layer `diff_id` (overlayfs format, usable as an
    /// overlay lowerdir), extracting the blob `blob_digest` on first use.
    ///
    /// Concurrent callers (threads or processes) serialise on a per-layer lock; the layer is
    /// extracted into `tmp/` and renamed into place only when complete and its diff_id
    /// verified, so a half-extracted layer is never visible under its final name.
    pub fn extracted(
        &self,
        blob_digest: &str,
        diff_id: &str,
        media_type: &str,
    ) -> Result<PathBuf, StoreError> {
        let hex = digest_hex(diff_id)?;
        let final_dir = self.layers_dir().join(hex);
        let diff = final_dir.join("diff");
        if diff.is_dir() {
            return Ok(diff);
        }
        let blob = self.path(blob_digest)?;
        if !blob.is_file() {
            return Err(StoreError::BlobNotFound {
                digest: blob_digest.to_string(),
                path: blob,
            });
        }
        let _lock = StoreLock::take(&self.layers_dir().join(format!("{hex}.lock")), true)?;
        if diff.is_dir() {
            return Ok(diff);
        }
        let work = self.tmp_dir().join(temp_name(&format!("layer-{hex}")));
        let result = (|| {
            let work_diff = work.join("diff");
            std::fs::create_dir_all(&work_diff).map_err(io_err(&work_diff))?;
            let got = extract_layer_verified(&blob, media_type, &work_diff).map_err(|source| {
                StoreError::Layer {
                    path: blob.clone(),
                    source,
                }
            })?;
            if got != diff_id {
                return Err(StoreError::DigestMismatch {
                    path: blob.clone(),
                    expected: diff_id.to_string(),
                    actual: got,
                });
            }
            if final_dir.exists() {
                // A leftover without `diff` (should not happen): replace it.
                remove_tree(&final_dir)?;
            }
            std::fs::rename(&work, &final_dir).map_err(io_err(&final_dir))
        })();
        if result.is_err() {
            let _ = remove_tree(&work);
        }
        result.map(|()| diff)
    }

    /// Writes a layer straight into the store's blobs (see [`write_layer`]).
    pub fn write_layer(
        &self,
        spec: &LayerSpec,
        opts: &LayerOptions,
    ) -> Result<LayerBlob, StoreError> {
        let dir = self.blobs_dir();
        write_layer(spec, opts, &dir).map_err(|source| StoreError::Layer { path: dir, source })
    }

    /// Whether the layer `diff_id` is extracted.
    pub fn is_extracted(&self, diff_id: &str) -> bool {
        digest_hex(diff_id).is_ok_and(|hex| self.layers_dir().join(hex).join("diff").is_dir())
    }
}

/// Removes a directory tree, making directories writable first (extracted layers may hold
/// read-only directories), never following symlinks.
pub(crate) fn remove_tree(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(io_err(path));
    }
    if meta.permissions().mode() & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    }
    for item in std::fs::read_dir(path).map_err(io_err(path))? {
        let item = item.map_err(io_err(path))?;
        remove_tree(&item.path())?;
    }
    std::fs::remove_dir(path).map_err(io_err(path))
}

/// Total size of the regular files under `path` (not following symlinks).
pub(crate) fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    std::fs::read_dir(path)
        .map(|items| {
            items
                .filter_map(Result::ok)
                .map(|i| tree_size(&i.path()))
                .sum()
        })
        .unwrap_or(0)
}
