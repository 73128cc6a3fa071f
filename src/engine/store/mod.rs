//! The content-addressed store in `$KILN_HOME`:
//!
//! ```text
//! blobs/sha256/<hex>              blobs (layers, configs, manifests), named by digest
//! layers/sha256/<diffid-hex>/diff extracted layers (overlayfs format), made on first use
//! layers/sha256/<diffid-hex>.lock per-layer lock while extracting
//! keys/<key-hex>.json             cache index: one CacheRecord per step cache key
//! tmp/                            work space (same filesystem, so renames are atomic)
//! store.lock                      shared by builds, exclusive while pruning
//! ```
//!
//! Every write goes to a temp file in the destination directory, is fsynced and renamed
//! into place, so a reader never sees a half-written blob, record or layer.

mod layers;
mod prune;
mod records;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub use prune::{PruneOptions, PruneReport, Usage};
pub use records::{CacheRecord, LayerRef};

use crate::engine::layer::LayerError;

/// Environment variable naming the store's root.
pub const KILN_HOME_ENV: &str = "KILN_HOME";

/// What can go wrong in the store. Each error names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid digest {0:?} (expected sha256:<64 hex digits>)")]
    InvalidDigest(String),
    #[error("invalid cache key {0:?} (expected 64 hex digits, optionally prefixed sha256:)")]
    InvalidKey(String),
    #[error("{}: content has digest {actual}, expected {expected}", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("blob {digest} is not in the store ({})", path.display())]
    BlobNotFound { digest: String, path: PathBuf },
    #[error("layer {}: {source}", path.display())]
    Layer {
        path: PathBuf,
        #[source]
        source: LayerError,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot find a cache directory: set KILN_HOME, XDG_CACHE_HOME or HOME")]
    NoHome,
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// The hex part of a `sha256:<hex>` digest, validated.
pub fn digest_hex(digest: &str) -> Result<&str, StoreError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| StoreError::InvalidDigest(digest.to_string()))?;
    if is_hex64(hex) {
        Ok(hex)
    } else {
        Err(StoreError::InvalidDigest(digest.to_string()))
    }
}

pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A unique name for a temp file or directory.
pub(crate) fn temp_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".tmp-{tag}-{}-{nanos}-{n}", std::process::id())
}

/// Writes `data` to `dest` atomically: a temp file in the same directory, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_atomic(dest: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name("w"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(data).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, dest).map_err(io_err(dest))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A lock on the store or one of its entries, released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn take(path: &Path, exclusive: bool) -> Result<StoreLock, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        loop {
            match rustix::fs::flock(&file, op) {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(path)(e.into())),
            }
        }
    }
}

/// The store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The default root: `$KILN_HOME`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    pub fn default_root() -> Option<PathBuf> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var(KILN_HOME_ENV)
            .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("kiln")))
            .or_else(|| var("HOME").map(|p| p.join(".cache").join("kiln")))
    }

    /// The store at [`Store::default_root`].
    pub fn from_env() -> Result<Store, StoreError> {
        Store::new(Store::default_root().ok_or(StoreError::NoHome)?)
    }

    /// The store at `root`, creating its directories.
    pub fn new(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        for dir in [
            store.blobs_dir(),
            store.layers_dir(),
            store.keys_dir(),
            store.tmp_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256`: where blobs live, named by hex digest. `write_layer` may write here
    /// directly (it writes a temp file and renames it to the digest).
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers").join("sha256")
    }

    /// Where extracted layers live (`layers/sha256`): files below it never change.
    pub fn layers_root(&self) -> PathBuf {
        self.layers_dir()
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Scratch space on the store's filesystem (cleared by prune).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A shared lock on the store: hold it for the length of a build so that a concurrent
    /// `prune` (which takes it exclusively) waits. Do not call `prune` while holding it.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        StoreLock::take(&self.root.join("store.lock"), false)
    }

    pub(crate) fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        StoreLock::take(&self.root.join("store.lock"), true)
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.blobs_dir().join(digest_hex(digest)?))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Opens the blob `digest` for reading.
    pub fn open(&self, digest: &str) -> Result<File, StoreError> {
        let path = self.path(digest)?;
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound {
                    digest: digest.to_string(),
                    path: path.clone(),
                }
            } else {
                io_err(&path)(e)
            }
        })
    }

    /// Moves the file at `path` into the store (a rename on the same filesystem, a copy
    /// otherwise); the source is consumed either way. Checks `expected` when given.
    /// Returns the digest.
    pub fn put_file(&self, path: &Path, expected: Option<&str>) -> Result<String, StoreError> {
        let digest = hash_file(path)?;
        check_expected(path, &digest, expected)?;
        let dest = self.path(&digest)?;
        if dest.is_file() {
            let _ = std::fs::remove_file(path);
            return Ok(digest);
        }
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(path))?;
        match std::fs::rename(path, &dest) {
            Ok(()) => {
                sync_dir(&self.blobs_dir());
                Ok(digest)
            }
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                let f = File::open(path).map_err(io_err(path))?;
                let got = self.put_reader(f, Some(&digest))?;
                let _ = std::fs::remove_file(path);
                Ok(got)
            }
            Err(e) => Err(io_err(&dest)(e)),
        }
    }

    /// Stores bytes; returns the digest.
    pub fn put_bytes(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, StoreError> {
        self.put_reader(bytes, expected)
    }

    /// Streams a blob into the store, hashing it; checks `expected` when given.
    pub fn put_reader<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&str>,
    ) -> Result<String, StoreError> {
        if let Some(e) = expected {
            digest_hex(e)?;
        }
        let dir = self.blobs_dir();
        let tmp = dir.join(temp_name("blob"));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(&tmp)(e)),
                };
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(io_err(&tmp))?;
            }
            f.sync_all().map_err(io_err(&tmp))?;
            let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
            check_expected(&tmp, &digest, expected)?;
            let dest = self.path(&digest)?;
            std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
            sync_dir(&dir);
            Ok(digest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn check_expected(path: &Path, actual: &str, expected: Option<&str>) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != actual => Err(StoreError::DigestMismatch {
            path: path.to_path_buf(),
            expected: e.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

/// `sha256:<hex>` of a file's bytes.
pub fn hash_file(path: &Path) -> Result<String, StoreError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    io::copy(&mut f, &mut hasher).map_err(io_err(path))?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests;
