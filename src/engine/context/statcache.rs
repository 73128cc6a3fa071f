//! The stat cache: content hashes of context files by (device, inode, size, mtime), kept
//! in `$KILN_HOME` so an unchanged file is never read again, only stat'ed.
//!
//! On disk it is a flat binary file (a header, then fixed 72-byte records) read in one go:
//! a no-op rebuild of a 20,000-file context loads it in about a millisecond, where JSON
//! took eight.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

/// The stat cache's file name inside `$KILN_HOME`.
pub const STAT_CACHE_FILE: &str = "statcache.bin";

/// What a file written by an older kiln was called (JSON); removed on the next save.
const OLD_STAT_CACHE_FILE: &str = "statcache.json";

const MAGIC: &[u8; 8] = b"KILNSTAT";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 8;
const RECORD_LEN: usize = 8 * 4 + 4 + 4 + 32;

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// One version of a file's content as the filesystem names it: a change of content that
/// the hash would see changes at least the size or the mtime (or the inode, when an editor
/// writes a new file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
}

impl StatKey {
    /// The key of a file from `std`'s metadata.
    pub fn from_metadata(md: &std::fs::Metadata) -> StatKey {
        use std::os::unix::fs::MetadataExt;
        StatKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime_sec: md.mtime(),
            mtime_nsec: md.mtime_nsec() as u32,
        }
    }

    /// The key of a file from a raw `stat`.
    pub fn from_stat(st: &rustix::fs::Stat) -> StatKey {
        StatKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_sec: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as u32,
        }
    }
}

/// A multiply-rotate hasher for [`StatKey`]s: they come from the local filesystem, not
/// from an adversary, and SipHash was a visible part of a no-op rebuild.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<StatKey, [u8; 32], BuildHasherDefault<KeyHasher>>;

/// File hashes by [`StatKey`], optionally persisted in a file.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    map: RwLock<Map>,
    dirty: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl StatCache {
    /// A cache that is never written to disk.
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// Loads the cache kept in `file` (a missing, unreadable or damaged file starts
    /// empty); [`StatCache::save`] writes it back.
    pub fn load(file: impl Into<PathBuf>) -> StatCache {
        let file = file.into();
        let map = std::fs::read(&file)
            .ok()
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        StatCache {
            file: Some(file),
            map: RwLock::new(map),
            ..StatCache::default()
        }
    }

    /// Writes the cache to its file if anything changed (temp file + rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let map = self
            .map
            .read()
            .map_err(|_| std::io::Error::other("stat cache lock poisoned"))?;
        let bytes = encode(&map);
        drop(map);
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            file.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("statcache"),
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)?;
        let _ = std::fs::remove_file(dir.join(OLD_STAT_CACHE_FILE));
        Ok(())
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The sha256 of a local file, from the cache when its stat is unchanged.
    pub fn file_sha256(&self, path: &Path) -> std::io::Result<[u8; 32]> {
        let key = StatKey::from_metadata(&std::fs::metadata(path)?);
        self.sha256_keyed(key, || std::fs::File::open(path))
    }

    /// The sha256 of the file whose stat gave `key`; `open` opens it when the cache does
    /// not know this version of it.
    pub fn sha256_keyed<R: Read>(
        &self,
        key: StatKey,
        open: impl FnOnce() -> std::io::Result<R>,
    ) -> std::io::Result<[u8; 32]> {
        if let Ok(map) = self.map.read() {
            if let Some(h) = map.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(*h);
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let h = hash_reader(open()?)?;
        if let Ok(mut map) = self.map.write() {
            map.insert(key, h);
            self.dirty.store(true, Ordering::SeqCst);
        }
        Ok(h)
    }
}

fn hash_reader(mut r: impl Read) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn encode(map: &Map) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + map.len() * RECORD_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (k, h) in map {
        out.extend_from_slice(&k.dev.to_le_bytes());
        out.extend_from_slice(&k.ino.to_le_bytes());
        out.extend_from_slice(&k.size.to_le_bytes());
        out.extend_from_slice(&k.mtime_sec.to_le_bytes());
        out.extend_from_slice(&k.mtime_nsec.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(h);
    }
    out
}

/// The map in `bytes`, or `None` when they are not a whole cache file of this version.
fn decode(bytes: &[u8]) -> Option<Map> {
    let (header, records) = bytes.split_at_checked(HEADER_LEN)?;
    if &header[..8] != MAGIC || u32::from_le_bytes(header[8..12].try_into().ok()?) != VERSION {
        return None;
    }
    let count = usize::try_from(u64::from_le_bytes(header[12..20].try_into().ok()?)).ok()?;
    if records.len() != count.checked_mul(RECORD_LEN)? {
        return None;
    }
    let u64_at = |r: &[u8], i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap_or([0; 8]));
    let mut map = Map::with_capacity_and_hasher(count, Default::default());
    for r in records.chunks_exact(RECORD_LEN) {
        let key = StatKey {
            dev: u64_at(r, 0),
            ino: u64_at(r, 8),
            size: u64_at(r, 16),
            mtime_sec: u64_at(r, 24) as i64,
            mtime_nsec: u32::from_le_bytes(r[32..36].try_into().unwrap_or([0; 4])),
        };
        let mut h = [0u8; 32];
        h.copy_from_slice(&r[40..72]);
        map.insert(key, h);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> StatKey {
        StatKey {
            dev: 2049,
            ino: i,
            size: i * 3,
            mtime_sec: -5 + i as i64,
            mtime_nsec: 999_999_999,
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let mut map = Map::default();
        for i in 0..100 {
            map.insert(key(i), [i as u8; 32]);
        }
        let bytes = encode(&map);
        assert_eq!(bytes.len(), HEADER_LEN + 100 * RECORD_LEN);
        assert_eq!(decode(&bytes), Some(map));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
        let mut other = bytes.clone();
        other[8] = 9;
        assert_eq!(decode(&other), None, "other version");
        assert_eq!(decode(b"{\"version\":1}"), None, "old JSON file");
    }

    #[test]
    fn saves_loads_and_hashes_only_on_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, b"hello").unwrap();
        std::fs::write(dir.path().join(OLD_STAT_CACHE_FILE), b"{}").unwrap();
        let file = dir.path().join(STAT_CACHE_FILE);
        let cache = StatCache::load(&file);
        let h = cache.file_sha256(&f).unwrap();
        assert_eq!(hex::encode(h), hex::encode(Sha256::digest(b"hello")));
        assert_eq!(cache.stats(), (0, 1));
        cache.save().unwrap();
        assert!(!dir.path().join(OLD_STAT_CACHE_FILE).exists());
        let again = StatCache::load(&file);
        let key = StatKey::from_metadata(&std::fs::metadata(&f).unwrap());
        let opened = again
            .sha256_keyed(key, || -> std::io::Result<&[u8]> {
                panic!("a known stat must not open the file")
            })
            .unwrap();
        assert_eq!(opened, h);
        assert_eq!(again.stats(), (1, 0));
    }
}
