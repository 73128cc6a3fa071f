//! The filesystem model shared by the engine's parts: entries of a layer, the spec of a
//! layer to write, and read-only views of a root filesystem (a layer chain, a build
//! context, a stage's result).
//!
//! Paths are absolute, `/`-separated, normalised (no `.`/`..`, no trailing slash; the root
//! is `/`). Modes carry permission and setuid/setgid/sticky bits only (`0o7777`); the kind
//! says the file type.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// A symbolic link and its target, verbatim.
    Symlink(String),
    /// A hard link to another path of the same layer (absolute).
    Hardlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// A deletion of this path (an OCI `.wh.` entry in a layer tar).
    Whiteout,
    /// This directory hides everything below it in lower layers (`.wh..wh..opq`).
    OpaqueDir,
}

/// Where a regular file's bytes come from when a layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file on the local disk (build context, extracted layer, stage snapshot).
    Path(PathBuf),
    /// Bytes held in memory (heredocs, small generated files).
    Bytes(Arc<Vec<u8>>),
}

impl Content {
    pub fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Content::Path(p) => Ok(Box::new(std::fs::File::open(p)?)),
            Content::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b.as_ref().clone()))),
        }
    }
}

/// One entry of a filesystem or of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits plus setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Size in bytes of a regular file (0 otherwise).
    pub size: u64,
    /// The bytes of a regular file.
    pub content: Option<Content>,
    /// Extended attributes (e.g. `security.capability`), by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode,
            uid,
            gid,
            mtime: 0,
            size: 0,
            content: None,
            xattrs: BTreeMap::new(),
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir | EntryKind::OpaqueDir)
    }
}

/// The changes one layer makes: entries sorted by path (parents before children).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerSpec {
    pub entries: Vec<Entry>,
}

impl LayerSpec {
    /// Sorts entries the way layers are written: by path, byte-wise, so a directory comes
    /// right before its children.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| path_order(&a.path, &b.path));
    }
}

/// Orders paths component by component ("/a/b" < "/a-b"), so parents precede children.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// A read-only view of a root filesystem. Lookups do not follow symlinks.
pub trait FsView: Send + Sync {
    /// The entry at `path`, or `None` if it does not exist (or was deleted by a whiteout).
    fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>>;
    /// Names (not paths) of the children of the directory at `path`, sorted.
    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>>;
}

/// Normalises a path inside a root: makes it absolute and removes `.`, `..` (never above
/// the root) and repeated slashes.
pub fn clean_abs(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

/// Joins a path to a parent directory inside a root.
pub fn join(parent: &str, name: &str) -> String {
    if name.starts_with('/') {
        clean_abs(name)
    } else {
        clean_abs(&format!("{parent}/{name}"))
    }
}

/// The parent directory of a clean absolute path (`/` for `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Resolves symlinks in `path` inside the root of `fs`, never leaving it (a link to `/x` or
/// `../../x` stays inside). With `follow_last` the final component is followed too.
/// Missing components are kept as they are. Gives up after 255 links (loop).
pub fn resolve_in_root(fs: &dyn FsView, path: &str, follow_last: bool) -> std::io::Result<String> {
    let mut pending: Vec<String> = clean_abs(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .rev()
        .collect();
    let mut resolved = String::from("/");
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        let candidate = join(&resolved, &comp);
        let is_last = pending.is_empty();
        if is_last && !follow_last {
            resolved = candidate;
            break;
        }
        match fs.lookup(&candidate)? {
            Some(Entry {
                kind: EntryKind::Symlink(target),
                ..
            }) => {
                links += 1;
                if links > 255 {
                    return Err(std::io::Error::other(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                if target.starts_with('/') {
                    resolved = "/".into();
                }
                for t in target.split('/').filter(|s| !s.is_empty()).rev() {
                    pending.push(t.to_string());
                }
            }
            _ => resolved = candidate,
        }
        // `..` from the root stays at the root.
        resolved = clean_abs(&resolved);
    }
    Ok(resolved)
}

/// Reads until `buf` is full or the stream ends; the number of bytes read (short only at
/// the end of the stream). Used to sniff file headers (archives, ELF).
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapFs(HashMap<String, Entry>);

    impl FsView for MapFs {
        fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>> {
            Ok(self.0.get(path).cloned())
        }
        fn read_dir(&self, _path: &str) -> std::io::Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    fn link(path: &str, target: &str) -> (String, Entry) {
        let mut e = Entry::dir(path, 0o777, 0, 0);
        e.kind = EntryKind::Symlink(target.into());
        (path.into(), e)
    }

    #[test]
    fn clean_and_join() {
        assert_eq!(clean_abs("a/../../b/./c/"), "/b/c");
        assert_eq!(join("/app", "../etc"), "/etc");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let fs = MapFs(
            [
                link("/var/run", "/run"),
                link("/escape", "../../../../etc"),
                link("/loop", "/loop"),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(resolve_in_root(&fs, "/var/run/x", true).unwrap(), "/run/x");
        assert_eq!(
            resolve_in_root(&fs, "/escape/passwd", true).unwrap(),
            "/etc/passwd"
        );
        assert_eq!(resolve_in_root(&fs, "/var/run", false).unwrap(), "/var/run");
        assert!(resolve_in_root(&fs, "/loop/x", true).is_err());
    }

    #[test]
    fn parents_sort_before_children() {
        let mut v = vec!["/a-b", "/a/b", "/a"];
        v.sort_by(|a, b| path_order(a, b));
        assert_eq!(v, vec!["/a", "/a/b", "/a-b"]);
    }
}
