//! Content digests of COPY sources for cache keys, with a persistent stat cache.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use super::ContextError;
use crate::engine::copy::expand;
use crate::engine::fs::{join, resolve_in_root, Content, EntryKind, FsView};

/// The stat cache's file name inside `$KILN_HOME`.
pub const STAT_CACHE_FILE: &str = "statcache.json";

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// File hashes by (dev, inode, size, mtime in ns), optionally persisted in a file.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    map: RwLock<HashMap<String, String>>,
    dirty: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    version: u32,
    entries: HashMap<String, String>,
}

impl StatCache {
    /// A cache that is never written to disk.
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// Loads the cache kept in `file` (a missing or unreadable file starts empty);
    /// [`StatCache::save`] writes it back.
    pub fn load(file: impl Into<PathBuf>) -> StatCache {
        let file = file.into();
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Stored>(&b).ok())
            .filter(|s| s.version == 1)
            .map(|s| s.entries)
            .unwrap_or_default();
        StatCache {
            file: Some(file),
            map: RwLock::new(entries),
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
        let entries = self
            .map
            .read()
            .map_err(|_| std::io::Error::other("stat cache lock poisoned"))?
            .clone();
        let bytes = serde_json::to_vec(&Stored {
            version: 1,
            entries,
        })
        .map_err(std::io::Error::other)?;
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
        std::fs::rename(&tmp, file)
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The sha256 (hex) of a local file, from the cache when its stat is unchanged.
    pub fn file_sha256(&self, path: &Path) -> std::io::Result<String> {
        let key = crate::engine::fs::stat_key(&std::fs::metadata(path)?);
        self.file_sha256_keyed(path, key)
    }

    /// Like [`StatCache::file_sha256`] with the file's stat key already known (from a
    /// stat taken just before, [`FsView::lookup_keyed`]).
    pub fn file_sha256_keyed(&self, path: &Path, key: String) -> std::io::Result<String> {
        if let Ok(map) = self.map.read() {
            if let Some(h) = map.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(h.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let h = hash_reader(std::fs::File::open(path)?)?;
        if let Ok(mut map) = self.map.write() {
            map.insert(key, h.clone());
            self.dirty.store(true, Ordering::SeqCst);
        }
        Ok(h)
    }
}

fn hash_reader(mut r: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn content_sha(
    content: Option<&Content>,
    key: Option<String>,
    cache: &StatCache,
) -> std::io::Result<String> {
    match content {
        Some(Content::Path(p)) => match key {
            Some(k) => cache.file_sha256_keyed(p, k),
            None => cache.file_sha256(p),
        },
        Some(Content::Bytes(b)) => Ok(hex::encode(Sha256::digest(b.as_slice()))),
        None => Ok(String::new()),
    }
}

fn line(fs: &dyn FsView, path: &str, cache: &StatCache, out: &mut Vec<u8>) -> std::io::Result<()> {
    let Some((e, key)) = fs.lookup_keyed(path)? else {
        return Ok(());
    };
    let (kind, extra) = match &e.kind {
        EntryKind::Dir | EntryKind::OpaqueDir => ("d", String::new()),
        EntryKind::File => ("f", content_sha(e.content.as_ref(), key, cache)?),
        EntryKind::Symlink(t) => ("l", t.clone()),
        EntryKind::Hardlink(t) => ("h", t.clone()),
        EntryKind::CharDevice { major, minor } => ("c", format!("{major},{minor}")),
        EntryKind::BlockDevice { major, minor } => ("b", format!("{major},{minor}")),
        EntryKind::Fifo => ("p", String::new()),
        EntryKind::Whiteout => return Ok(()),
    };
    writeln!(
        out,
        "{}\0{kind}\0{:o}\0{}\0{}\0{extra}",
        e.path, e.mode, e.uid, e.gid
    )?;
    if e.is_dir() {
        let names = fs.read_dir(path)?;
        if names.len() >= PARALLEL_MIN_CHILDREN && !LINE_SERIAL.with(|f| f.get()) {
            return lines_parallel(fs, path, &names, cache, out);
        }
        for name in names {
            line(fs, &join(path, &name), cache, out)?;
        }
    }
    Ok(())
}

/// A directory with at least this many children is listed by two threads (most of the
/// time goes into stat calls, which run in parallel).
const PARALLEL_MIN_CHILDREN: usize = 64;

/// Lists the children `names` of `path` as [`line`] does, the second half on another
/// thread; the output is the same bytes in the same order.
fn lines_parallel(
    fs: &dyn FsView,
    path: &str,
    names: &[String],
    cache: &StatCache,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let (first, second) = names.split_at(names.len() / 2);
    let serial = |part: &[String], out: &mut Vec<u8>| -> std::io::Result<()> {
        for name in part {
            line_serial(fs, &join(path, name), cache, out)?;
        }
        Ok(())
    };
    let mut tail = Vec::new();
    std::thread::scope(|s| {
        let other = s.spawn(|| serial(second, &mut tail));
        let mine = serial(first, out);
        let theirs = other
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("digest thread panicked")));
        mine.and(theirs)
    })?;
    out.extend_from_slice(&tail);
    Ok(())
}

/// [`line`] without spawning threads (inside [`lines_parallel`]).
fn line_serial(
    fs: &dyn FsView,
    path: &str,
    cache: &StatCache,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    LINE_SERIAL.with(|f| f.set(true));
    let r = line(fs, path, cache, out);
    LINE_SERIAL.with(|f| f.set(false));
    r
}

thread_local! {
    static LINE_SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A sha256 (`sha256:HEX`) over a canonical listing of what the source patterns select in
/// `fs`: per matched path (symlinks followed as COPY follows them) and every entry below,
/// its path, kind, mode, uid/gid, link target and content sha256. Patterns that match
/// nothing are listed as missing (COPY reports them).
pub fn digest_sources(
    fs: &dyn FsView,
    patterns: &[String],
    cache: &StatCache,
) -> Result<String, ContextError> {
    let io = |p: &str| {
        let path = PathBuf::from(p);
        move |source| ContextError::Io { path, source }
    };
    let mut out = Vec::new();
    for pattern in patterns {
        out.extend_from_slice(format!("pattern\0{pattern}\n").as_bytes());
        let matches = expand(fs, pattern).map_err(io(pattern))?;
        for m in matches {
            let real = resolve_in_root(fs, &m.path, true).map_err(io(&m.path))?;
            if fs.lookup(&real).map_err(io(&real))?.is_none() {
                continue;
            }
            out.extend_from_slice(format!("match\0{}\0{real}\n", m.path).as_bytes());
            line(fs, &real, cache, &mut out).map_err(io(&real))?;
        }
    }
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&out))))
}
