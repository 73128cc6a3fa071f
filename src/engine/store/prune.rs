//! Disk usage and pruning.
//!
//! What references what: a cache record references its layers' blobs (by digest) and their
//! extracted directories (by diff_id). Blobs and extracted layers that no record references
//! (base-image layers, leftovers) are garbage for `prune`; records go by age and LRU order.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::layers::{remove_tree, tree_size};
use super::{io_err, is_hex64, now_unix, CacheRecord, Store, StoreError};

/// What the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub blobs: u64,
    pub blobs_bytes: u64,
    pub layers: u64,
    pub layers_bytes: u64,
    pub records: u64,
    pub records_bytes: u64,
    /// Bytes of blobs and extracted layers no record references.
    pub unreferenced_bytes: u64,
    pub total_bytes: u64,
}

/// What to prune.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Remove least-recently-used records until blobs + layers take at most this many bytes.
    pub keep_storage: Option<u64>,
    /// Remove records not used for this long.
    pub until: Option<Duration>,
    /// Remove everything.
    pub all: bool,
}

/// What prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub records_removed: u64,
    pub blobs_removed: u64,
    pub layers_removed: u64,
    pub bytes_freed: u64,
}

/// Sizes of the blobs and extracted layers, by hex.
struct Inventory {
    blobs: BTreeMap<String, u64>,
    layers: BTreeMap<String, u64>,
}

impl Store {
    fn inventory(&self) -> Result<Inventory, StoreError> {
        let mut blobs = BTreeMap::new();
        let dir = self.blobs_dir();
        for item in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let item = item.map_err(io_err(&dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if is_hex64(&name) {
                let size = item.metadata().map(|m| m.len()).unwrap_or(0);
                blobs.insert(name, size);
            }
        }
        let mut layers = BTreeMap::new();
        let dir = self.layers_dir();
        for item in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let item = item.map_err(io_err(&dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if is_hex64(&name) {
                layers.insert(name, tree_size(&item.path()));
            }
        }
        Ok(Inventory { blobs, layers })
    }

    /// How much the store holds.
    pub fn du(&self) -> Result<Usage, StoreError> {
        let inv = self.inventory()?;
        let records = self.all_records()?;
        let (blobs_ref, layers_ref) = references(records.iter().map(|(_, r)| r));
        let records_bytes = records
            .iter()
            .map(|(hex, _)| {
                std::fs::metadata(self.keys_dir().join(format!("{hex}.json")))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum();
        let unreferenced_bytes = inv
            .blobs
            .iter()
            .filter(|(h, _)| !blobs_ref.contains_key(*h))
            .chain(
                inv.layers
                    .iter()
                    .filter(|(h, _)| !layers_ref.contains_key(*h)),
            )
            .map(|(_, s)| s)
            .sum();
        let blobs_bytes: u64 = inv.blobs.values().sum();
        let layers_bytes: u64 = inv.layers.values().sum();
        Ok(Usage {
            blobs: inv.blobs.len() as u64,
            blobs_bytes,
            layers: inv.layers.len() as u64,
            layers_bytes,
            records: records.len() as u64,
            records_bytes,
            unreferenced_bytes,
            total_bytes: blobs_bytes + layers_bytes + records_bytes,
        })
    }

    /// Removes records (by age, LRU order, or all), then every blob and extracted layer no
    /// remaining record references, and leftover temp files. Waits for running builds
    /// (holders of [`Store::lock_shared`]) to finish.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, StoreError> {
        let _lock = self.lock_exclusive()?;
        let mut report = PruneReport::default();
        let inv = self.inventory()?;
        let mut records = self.all_records()?;
        records.sort_by_key(|(hex, r)| (r.last_used, hex.clone()));
        let cutoff = opts
            .until
            .map(|d| now_unix() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let (mut remove, keep): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|(_, r)| opts.all || cutoff.is_some_and(|c| r.last_used < c));
        let (mut blobs_ref, mut layers_ref) = references(keep.iter().map(|(_, r)| r));
        if let Some(limit) = opts.keep_storage {
            let size_of = |b: &HashMap<String, u64>, l: &HashMap<String, u64>| -> u64 {
                b.keys()
                    .map(|h| inv.blobs.get(h).copied().unwrap_or(0))
                    .sum::<u64>()
                    + l.keys()
                        .map(|h| inv.layers.get(h).copied().unwrap_or(0))
                        .sum::<u64>()
            };
            let mut used = size_of(&blobs_ref, &layers_ref);
            let mut kept = std::collections::VecDeque::from(keep);
            while used > limit {
                let Some((hex, record)) = kept.pop_front() else {
                    break;
                };
                for l in &record.layers {
                    for (map, h, sizes) in [
                        (&mut blobs_ref, hex_of(&l.digest), &inv.blobs),
                        (&mut layers_ref, hex_of(&l.diff_id), &inv.layers),
                    ] {
                        if let Some(n) = map.get_mut(h) {
                            *n -= 1;
                            if *n == 0 {
                                map.remove(h);
                                used -= sizes.get(h).copied().unwrap_or(0);
                            }
                        }
                    }
                }
                remove.push((hex, record));
            }
        }
        for (hex, _) in &remove {
            let path = self.keys_dir().join(format!("{hex}.json"));
            match std::fs::remove_file(&path) {
                Ok(()) => report.records_removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        for (hex, size) in &inv.blobs {
            if !blobs_ref.contains_key(hex) {
                let path = self.blobs_dir().join(hex);
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
            }
        }
        for (hex, size) in &inv.layers {
            if !layers_ref.contains_key(hex) {
                remove_tree(&self.layers_dir().join(hex))?;
                let _ = std::fs::remove_file(self.layers_dir().join(format!("{hex}.lock")));
                report.layers_removed += 1;
                report.bytes_freed += size;
            }
        }
        self.remove_leftovers()?;
        Ok(report)
    }

    /// Temp files and directories of interrupted writes (only called under the exclusive
    /// lock, when no build is running).
    fn remove_leftovers(&self) -> Result<(), StoreError> {
        for dir in [self.blobs_dir(), self.layers_dir(), self.keys_dir()] {
            for item in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
                let item = item.map_err(io_err(&dir))?;
                if item.file_name().to_string_lossy().starts_with(".tmp-") {
                    remove_tree(&item.path())?;
                }
            }
        }
        let tmp = self.tmp_dir();
        for item in std::fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let item = item.map_err(io_err(&tmp))?;
            remove_tree(&item.path())?;
        }
        Ok(())
    }
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Reference counts of blobs (by digest hex) and extracted layers (by diff_id hex).
fn references<'a>(
    records: impl Iterator<Item = &'a CacheRecord>,
) -> (HashMap<String, u64>, HashMap<String, u64>) {
    let mut blobs = HashMap::new();
    let mut layers = HashMap::new();
    for r in records {
        for l in &r.layers {
            *blobs.entry(hex_of(&l.digest).to_string()).or_insert(0) += 1;
            *layers.entry(hex_of(&l.diff_id).to_string()).or_insert(0) += 1;
        }
    }
    (blobs, layers)
}
