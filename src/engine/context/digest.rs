//! Content digests of COPY sources for cache keys.
//!
//! The digest is a sha256 over a canonical listing: per matched path and every entry below
//! it, one line with its path, kind, mode, uid/gid and link target or content sha256. A
//! no-op rebuild spends nearly all of its time here, so directories are walked through
//! open directory descriptors (`getdents` + `fstatat` relative to the parent, no path
//! walks, no per-entry allocations beyond the name) and a large directory's children are
//! listed by several threads; file contents come from the [`StatCache`].

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
use sha2::{Digest, Sha256};

use super::statcache::{StatCache, StatKey};
use super::{dev_numbers, ContextError, ContextFs};
use crate::dockerfile::ignore::{Decision, MatchInfo};
use crate::engine::copy::expand;
use crate::engine::fs::{resolve_in_root, EntryKind};

/// A sha256 (`sha256:HEX`) over the [`listing`] of what the source patterns select in the
/// context.
pub fn digest_sources(
    ctx: &ContextFs,
    patterns: &[String],
    cache: &StatCache,
) -> Result<String, ContextError> {
    let out = listing(ctx, patterns, cache)?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&out))))
}

/// The canonical listing of what the source patterns select in `ctx`: per matched path
/// (symlinks followed as COPY follows them) and every entry below, its path, kind, mode,
/// uid/gid, link target and content sha256. Patterns that match nothing are listed as
/// missing (COPY reports them).
pub(super) fn listing(
    ctx: &ContextFs,
    patterns: &[String],
    cache: &StatCache,
) -> Result<Vec<u8>, ContextError> {
    let io = |p: &str| {
        let path = PathBuf::from(p);
        move |source| ContextError::Io { path, source }
    };
    let mut out = Vec::new();
    for pattern in patterns {
        out.extend_from_slice(format!("pattern\0{pattern}\n").as_bytes());
        let matches = expand(ctx, pattern).map_err(io(pattern))?;
        for m in matches {
            let real = resolve_in_root(ctx, &m.path, true).map_err(io(&m.path))?;
            let Some((entry, key)) = ctx.lookup_keyed(&real).map_err(io(&real))? else {
                continue;
            };
            out.extend_from_slice(format!("match\0{}\0{real}\n", m.path).as_bytes());
            let extra = match &entry.kind {
                EntryKind::File => {
                    let disk = ctx.disk(real.trim_start_matches('/'));
                    let sha = match key {
                        Some(k) => cache.sha256_keyed(k, || std::fs::File::open(&disk)),
                        None => cache.file_sha256(&disk),
                    };
                    hex::encode(sha.map_err(io(&real))?).into_bytes()
                }
                EntryKind::Symlink(t) => t.clone().into_bytes(),
                EntryKind::CharDevice { major, minor }
                | EntryKind::BlockDevice { major, minor } => {
                    format!("{major},{minor}").into_bytes()
                }
                _ => Vec::new(),
            };
            let kind = match entry.kind {
                EntryKind::Dir | EntryKind::OpaqueDir => b'd',
                EntryKind::File => b'f',
                EntryKind::Symlink(_) => b'l',
                EntryKind::Hardlink(_) => b'h',
                EntryKind::CharDevice { .. } => b'c',
                EntryKind::BlockDevice { .. } => b'b',
                EntryKind::Fifo => b'p',
                EntryKind::Whiteout => continue,
            };
            push_line(
                &mut out,
                &entry.path,
                kind,
                entry.mode,
                entry.uid,
                entry.gid,
                &extra,
            );
            if kind == b'd' {
                list_dir_at(ctx, &real, cache, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// One listing line: `path \0 kind \0 mode(octal) \0 uid \0 gid \0 extra \n`.
fn push_line(out: &mut Vec<u8>, path: &str, kind: u8, mode: u32, uid: u32, gid: u32, extra: &[u8]) {
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(&[0, kind, 0]);
    push_int(out, u64::from(mode), 8);
    out.push(0);
    push_int(out, u64::from(uid), 10);
    out.push(0);
    push_int(out, u64::from(gid), 10);
    out.push(0);
    out.extend_from_slice(extra);
    out.push(b'\n');
}

fn push_int(out: &mut Vec<u8>, mut n: u64, radix: u64) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % radix) as u8;
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A directory of the context being listed: its descriptor, its absolute path in the view
/// and relative path on disk, and the ignore rules' state for its children.
struct OpenDir<'a> {
    fd: OwnedFd,
    path: &'a str,
    rel: &'a str,
    info: MatchInfo,
}

/// A visible child of an [`OpenDir`]: its name (raw for system calls, lossy for the
/// listing, as the rest of the context view names it) and, for a directory, the ignore
/// rules' state for its own children.
struct Child {
    raw: CString,
    name: String,
    info: MatchInfo,
}

/// Lists everything below the directory at `path` (already listed itself).
fn list_dir_at(
    ctx: &ContextFs,
    path: &str,
    cache: &StatCache,
    out: &mut Vec<u8>,
) -> Result<(), ContextError> {
    let rel = path.trim_start_matches('/');
    let disk = ctx.disk(rel);
    let err = |source| ContextError::Io {
        path: disk.clone(),
        source,
    };
    let Some(info) = ctx.dir_info(rel).map_err(err)? else {
        return Ok(());
    };
    let fd = rustix::fs::open(&disk, dir_flags(), Mode::empty())
        .map_err(|e| err(std::io::Error::from(e)))?;
    let dir = OpenDir {
        fd,
        path,
        rel,
        info,
    };
    list_children(ctx, &dir, cache, out, true)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A directory with at least this many visible children has them listed by several
/// threads (most of the time goes into `fstatat`, which runs in parallel).
const PARALLEL_MIN_CHILDREN: usize = 64;

/// How many threads list a large directory: the CPUs kiln may use, at most 4 (asked once:
/// the answer reads cgroup files).
fn digest_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// Lists the children of `dir` and everything below them, in name order; `parallel`
/// lets the first large directory on the way down spread its children over threads.
fn list_children(
    ctx: &ContextFs,
    dir: &OpenDir,
    cache: &StatCache,
    out: &mut Vec<u8>,
    parallel: bool,
) -> Result<(), ContextError> {
    let children = visible_children(ctx, dir)?;
    let threads = if parallel && children.len() >= PARALLEL_MIN_CHILDREN {
        digest_threads()
    } else {
        1
    };
    if threads < 2 {
        for child in &children {
            list_child(ctx, dir, child, cache, out, parallel)?;
        }
        return Ok(());
    }
    // Each thread takes the next unclaimed child; the parts are put back in name order.
    let next = AtomicUsize::new(0);
    let parts: Mutex<Vec<(usize, Vec<u8>)>> = Mutex::new(Vec::with_capacity(children.len()));
    let work = || -> Result<(), ContextError> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(child) = children.get(i) else {
                return Ok(());
            };
            let mut part = Vec::new();
            list_child(ctx, dir, child, cache, &mut part, false)?;
            if let Ok(mut p) = parts.lock() {
                p.push((i, part));
            }
        }
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut result = work();
        for h in helpers {
            let r = h.join().unwrap_or_else(|_| {
                Err(ContextError::Io {
                    path: ctx.disk(dir.rel),
                    source: std::io::Error::other("digest thread panicked"),
                })
            });
            result = result.and(r);
        }
        result
    })?;
    let mut parts = parts.into_inner().unwrap_or_default();
    if parts.len() != children.len() {
        return Err(ContextError::Io {
            path: ctx.disk(dir.rel),
            source: std::io::Error::other("digest lost a part"),
        });
    }
    parts.sort_unstable_by_key(|(i, _)| *i);
    for (_, part) in parts {
        out.extend_from_slice(&part);
    }
    Ok(())
}

/// The children of `dir` that the ignore rules leave visible, sorted by name.
fn visible_children(ctx: &ContextFs, dir: &OpenDir) -> Result<Vec<Child>, ContextError> {
    let err = |source: std::io::Error| ContextError::Io {
        path: ctx.disk(dir.rel),
        source,
    };
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = RawDir::new(dir.fd.as_fd(), buf.spare_capacity_mut());
    let mut children = Vec::new();
    while let Some(d) = entries.next() {
        let d = d.map_err(|e| err(e.into()))?;
        let raw = d.file_name();
        if raw == c"." || raw == c".." {
            continue;
        }
        let name = raw.to_string_lossy().into_owned();
        let raw = raw.to_owned();
        if ctx.matcher().is_empty() {
            children.push(Child {
                raw,
                name,
                info: MatchInfo::default(),
            });
            continue;
        }
        let is_dir = match d.file_type() {
            FileType::Unknown => stat_at(dir.fd.as_fd(), &raw)
                .map_err(err)?
                .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            t => t == FileType::Directory,
        };
        let rel = child_rel(dir.rel, &name);
        let (visible, info) = match ctx.decide(&rel, is_dir, &dir.info) {
            (Decision::Include, info) => (true, info),
            (Decision::Exclude, info) => {
                let shown = is_dir && ctx.has_included(&rel, &info).map_err(err)?;
                (shown, info)
            }
            (Decision::SkipDir, info) => (false, info),
        };
        if visible {
            children.push(Child { raw, name, info });
        }
    }
    children.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(children)
}

fn child_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn stat_at(dir: BorrowedFd, name: &CString) -> std::io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Lists one child of `dir` and, for a directory, everything below it.
fn list_child(
    ctx: &ContextFs,
    dir: &OpenDir,
    child: &Child,
    cache: &StatCache,
    out: &mut Vec<u8>,
    parallel: bool,
) -> Result<(), ContextError> {
    let path = if dir.path == "/" {
        format!("/{}", child.name)
    } else {
        format!("{}/{}", dir.path, child.name)
    };
    let rel = child_rel(dir.rel, &child.name);
    let err = |source: std::io::Error| ContextError::Io {
        path: ctx.disk(&rel),
        source,
    };
    // Gone since the directory was read: as if it had not been there.
    let Some(st) = stat_at(dir.fd.as_fd(), &child.raw).map_err(err)? else {
        return Ok(());
    };
    let (mode, uid, gid) = (st.st_mode & 0o7777, st.st_uid, st.st_gid);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            push_line(out, &path, b'd', mode, uid, gid, b"");
            let fd = rustix::fs::openat(
                dir.fd.as_fd(),
                child.raw.as_c_str(),
                dir_flags(),
                Mode::empty(),
            )
            .map_err(|e| err(e.into()))?;
            let sub = OpenDir {
                fd,
                path: &path,
                rel: &rel,
                info: child.info.clone(),
            };
            list_children(ctx, &sub, cache, out, parallel)
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir.fd.as_fd(), child.raw.as_c_str(), Vec::new())
                .map_err(|e| err(e.into()))?;
            let target = target.to_string_lossy();
            push_line(out, &path, b'l', mode, uid, gid, target.as_bytes());
            Ok(())
        }
        t @ (FileType::CharacterDevice | FileType::BlockDevice) => {
            let (major, minor) = dev_numbers(st.st_rdev);
            let kind = if t == FileType::CharacterDevice {
                b'c'
            } else {
                b'b'
            };
            push_line(
                out,
                &path,
                kind,
                mode,
                uid,
                gid,
                format!("{major},{minor}").as_bytes(),
            );
            Ok(())
        }
        FileType::Fifo => {
            push_line(out, &path, b'p', mode, uid, gid, b"");
            Ok(())
        }
        // Regular files (and anything else the context view calls a file, whose reading
        // then fails as it would when COPY reads it).
        _ => {
            let sha = cache
                .sha256_keyed(StatKey::from_stat(&st), || {
                    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    rustix::fs::openat(dir.fd.as_fd(), child.raw.as_c_str(), flags, Mode::empty())
                        .map(std::fs::File::from)
                        .map_err(std::io::Error::from)
                })
                .map_err(err)?;
            let mut hex_sha = [0u8; 64];
            hex::encode_to_slice(sha, &mut hex_sha).map_err(|e| err(std::io::Error::other(e)))?;
            push_line(out, &path, b'f', mode, uid, gid, &hex_sha);
            Ok(())
        }
    }
}
