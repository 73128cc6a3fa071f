//! Extracted layers: `layers/sha256/<diffid-hex>/diff`, made once, shared by processes.

use std::path::{Path, PathBuf};

use super::{digest_hex, io_err, temp_name, Store, StoreError, StoreLock};
use super::{CacheRecord, LayerRef};
use crate::engine::fs::LayerSpec;
use crate::engine::layer::{
    extract_layer_verified, extract_spec, recompress, write_layer, Compression, LayerBlob,
    LayerOptions,
};

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
        if let Some(diff) = self.extracted_dir(diff_id)? {
            return Ok(diff);
        }
        let blob = self.path(blob_digest)?;
        if !blob.is_file() {
            return Err(StoreError::BlobNotFound {
                digest: blob_digest.to_string(),
                path: blob,
            });
        }
        self.fill_layer_dir(diff_id, |work_diff| {
            let got = extract_layer_verified(&blob, media_type, work_diff).map_err(|source| {
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
            Ok(())
        })
    }

    /// The extracted directory of the layer `diff_id`, written from its `spec` (the layer
    /// this build just wrote, with the same `epoch`) instead of unpacking its blob when it
    /// is not there yet. Files taken from other extracted layers are hard-linked when
    /// their metadata allows (see [`extract_spec`]).
    pub fn extracted_from_spec(
        &self,
        diff_id: &str,
        spec: &LayerSpec,
        epoch: Option<i64>,
    ) -> Result<PathBuf, StoreError> {
        if let Some(diff) = self.extracted_dir(diff_id)? {
            return Ok(diff);
        }
        self.fill_layer_dir(diff_id, |work_diff| {
            extract_spec(spec, work_diff, epoch, &self.layers_dir()).map_err(|source| {
                StoreError::Layer {
                    path: work_diff.to_path_buf(),
                    source,
                }
            })
        })
    }

    /// Makes `dir` (an overlay-format directory holding exactly the layer `diff_id`, e.g.
    /// a RUN's upper dir on the store's filesystem) the layer's extracted directory by
    /// renaming it, unless the layer is extracted already. `dir` is consumed either way.
    pub fn adopt_extracted(&self, diff_id: &str, dir: &Path) -> Result<(), StoreError> {
        if self.extracted_dir(diff_id)?.is_some() {
            return Ok(());
        }
        self.fill_layer_dir(diff_id, |work_diff| {
            std::fs::remove_dir(work_diff).map_err(io_err(work_diff))?;
            std::fs::rename(dir, work_diff).map_err(io_err(dir))
        })
        .map(|_| ())
    }

    /// `layers/sha256/<hex>/diff` if the layer is extracted.
    fn extracted_dir(&self, diff_id: &str) -> Result<Option<PathBuf>, StoreError> {
        let diff = self.layers_dir().join(digest_hex(diff_id)?).join("diff");
        Ok(diff.is_dir().then_some(diff))
    }

    /// Makes the extracted directory of `diff_id` with `fill` (given an empty directory in
    /// `tmp/`), unless another process or thread made it first. Callers serialise on a
    /// per-layer lock; the directory is renamed into place only when `fill` succeeded, so a
    /// half-written layer is never visible under its final name.
    fn fill_layer_dir(
        &self,
        diff_id: &str,
        fill: impl FnOnce(&Path) -> Result<(), StoreError>,
    ) -> Result<PathBuf, StoreError> {
        let hex = digest_hex(diff_id)?;
        let final_dir = self.layers_dir().join(hex);
        let diff = final_dir.join("diff");
        let _lock = StoreLock::take(&self.layers_dir().join(format!("{hex}.lock")), true)?;
        if diff.is_dir() {
            return Ok(diff);
        }
        let work = self.tmp_dir().join(temp_name(&format!("layer-{hex}")));
        let result = (|| {
            let work_diff = work.join("diff");
            std::fs::create_dir_all(&work_diff).map_err(io_err(&work_diff))?;
            fill(&work_diff)?;
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

    /// `layer` as a blob compressed the way `opts` says (same diff_id): `layer` itself when
    /// it already is, else a converted blob, made once and remembered by a cache record
    /// (so it is pruned like any other) keyed by the diff_id and the compression.
    pub fn converted(&self, layer: &LayerRef, opts: &LayerOptions) -> Result<LayerRef, StoreError> {
        if Compression::from_media_type(&layer.media_type) == Some(opts.compression) {
            return Ok(layer.clone());
        }
        let key = {
            use sha2::Digest;
            let material = format!(
                "convert\0{}\0{}\0{:?}",
                layer.diff_id,
                opts.compression.media_type(),
                opts.level
            );
            hex::encode(sha2::Sha256::digest(material.as_bytes()))
        };
        // A record is only found while all its layer blobs are in the store.
        if let Some(rec) = self.get_record(&key) {
            if let Some(l) = rec.layers.first() {
                let _ = self.touch(&key, &rec);
                return Ok(l.clone());
            }
        }
        let src = self.path(&layer.digest)?;
        let dir = self.blobs_dir();
        let blob = recompress(&src, &layer.media_type, opts, &dir).map_err(|source| {
            StoreError::Layer {
                path: src.clone(),
                source,
            }
        })?;
        if blob.diff_id != layer.diff_id {
            return Err(StoreError::DigestMismatch {
                path: src,
                expected: layer.diff_id.clone(),
                actual: blob.diff_id,
            });
        }
        let out = LayerRef {
            digest: blob.digest,
            diff_id: blob.diff_id,
            size: blob.size,
            media_type: blob.media_type,
        };
        let record = CacheRecord::new(
            vec![out.clone()],
            serde_json::json!({ "converted_from": layer.digest }),
        );
        self.put_record(&key, &record)?;
        Ok(out)
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
