//! The cache index: one JSON record per step cache key, `keys/<hex>.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{is_hex64, now_unix, write_atomic, Store, StoreError};

/// A layer a cache record refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// The result of one step, found by its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The layers the step produced (0 or 1 today); their blobs are kept while the record is.
    #[serde(default)]
    pub layers: Vec<LayerRef>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; updated by [`Store::touch`].
    pub last_used: i64,
    /// Free for the executor (config changes, timings ...).
    #[serde(default)]
    pub meta: serde_json::Value,
}

impl CacheRecord {
    /// A record created now.
    pub fn new(layers: Vec<LayerRef>, meta: serde_json::Value) -> CacheRecord {
        let now = now_unix();
        CacheRecord {
            layers,
            created: now,
            last_used: now,
            meta,
        }
    }
}

/// How stale a record's `last_used` may be before [`Store::touch`] rewrites it (like
/// `relatime`; `kiln cache prune --filter until=…` works in far larger units).
pub const TOUCH_GRANULARITY_S: i64 = 60;

/// The hex of a cache key: 64 hex digits, optionally prefixed `sha256:`.
pub(crate) fn key_hex(key: &str) -> Result<&str, StoreError> {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    if is_hex64(hex) {
        Ok(hex)
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

impl Store {
    fn record_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        Ok(self.keys_dir().join(format!("{}.json", key_hex(key)?)))
    }

    /// The record for `key`, or `None` on a miss. A record that cannot be read or parsed,
    /// or whose layer blobs are gone, is a miss (and a corrupt one is removed).
    pub fn get_record(&self, key: &str) -> Option<CacheRecord> {
        let path = self.record_path(key).ok()?;
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cache record {}: {e}", path.display());
                }
                return None;
            }
        };
        let record: CacheRecord = match serde_json::from_slice(&data) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("removing corrupt cache record {}: {e}", path.display());
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        if record.layers.iter().all(|l| self.has(&l.digest)) {
            Some(record)
        } else {
            None
        }
    }

    /// Stores the record for `key` (atomically replacing an older one).
    pub fn put_record(&self, key: &str, record: &CacheRecord) -> Result<(), StoreError> {
        let path = self.record_path(key)?;
        let data = serde_json::to_vec_pretty(record).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &data)
    }

    /// Marks `record`, just read for `key`, as used now — unless it was used within the
    /// last [`TOUCH_GRANULARITY_S`] (a rebuild right after a build rewrites nothing).
    pub fn touch(&self, key: &str, record: &CacheRecord) -> Result<(), StoreError> {
        let now = now_unix();
        if now - record.last_used < TOUCH_GRANULARITY_S {
            return Ok(());
        }
        let mut r = record.clone();
        r.last_used = now;
        self.put_record(key, &r)
    }

    /// All readable records with their key hex (corrupt ones are removed).
    pub(crate) fn all_records(&self) -> Result<Vec<(String, CacheRecord)>, StoreError> {
        let dir = self.keys_dir();
        let mut out = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(super::io_err(&dir))? {
            let item = item.map_err(super::io_err(&dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            if !is_hex64(hex) {
                continue;
            }
            let Ok(data) = std::fs::read(item.path()) else {
                continue;
            };
            match serde_json::from_slice::<CacheRecord>(&data) {
                Ok(r) => out.push((hex.to_string(), r)),
                Err(_) => {
                    let _ = std::fs::remove_file(item.path());
                }
            }
        }
        Ok(out)
    }
}
