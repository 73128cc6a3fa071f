//! The fast snapshot: one `lstat` per path of the root (ignored paths left out), kept as
//! the few numbers that change when a file is touched in any way. Comparing the snapshot
//! taken before a RUN with the one after gives the paths the command created, changed
//! (content, mode, owner, times, xattrs: all of them move the ctime) or removed, without
//! reading any file.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::InplaceError;
use super::ignore::IgnoreList;
use crate::engine::fs::join;

/// What a path looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub nlink: u64,
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            nlink: m.nlink(),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// Every path under the root (the root itself excluded) with its [`Stat`].
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub entries: HashMap<String, Stat>,
}

/// How two snapshots differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Created or changed paths, sorted.
    pub changed: Vec<String>,
    /// Paths that are gone, sorted.
    pub removed: Vec<String>,
}

impl Snapshot {
    /// Walks `root`, leaving out ignored paths (and never following symlinks).
    pub fn take(root: &Path, ignore: &IgnoreList) -> Result<Snapshot, InplaceError> {
        let mut entries = HashMap::new();
        let mut stack = vec!["/".to_string()];
        while let Some(dir) = stack.pop() {
            let real = root.join(dir.trim_start_matches('/'));
            let err = |source| InplaceError::Snapshot {
                path: dir.clone(),
                source,
            };
            for item in std::fs::read_dir(&real).map_err(err)? {
                let item = item.map_err(err)?;
                let name = item.file_name();
                let Some(name) = name.to_str() else {
                    return Err(InplaceError::Snapshot {
                        path: format!("{dir}/{}", name.to_string_lossy()),
                        source: std::io::Error::other("the name is not valid UTF-8"),
                    });
                };
                let path = join(&dir, name);
                if ignore.is_ignored(&path) {
                    continue;
                }
                // `DirEntry::metadata` is an `fstatat` without following symlinks.
                let meta = match item.metadata() {
                    Ok(m) => m,
                    // Gone between the listing and the stat (a process still running).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(InplaceError::Snapshot { path, source }),
                };
                let st = Stat::of(&meta);
                if st.is_dir() {
                    stack.push(path.clone());
                }
                entries.insert(path, st);
            }
        }
        Ok(Snapshot { entries })
    }

    /// Regular files with more than one link (sorted).
    pub fn hard_linked(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, s)| s.is_file() && s.nlink > 1)
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }

    /// What changed from `self` (before) to `after`.
    pub fn changes(&self, after: &Snapshot) -> Changes {
        let mut changed: Vec<String> = after
            .entries
            .iter()
            .filter(|(p, st)| self.entries.get(*p) != Some(st))
            .map(|(p, _)| p.clone())
            .collect();
        let mut removed: Vec<String> = self
            .entries
            .keys()
            .filter(|p| !after.entries.contains_key(*p))
            .cloned()
            .collect();
        changed.sort_by(|a, b| crate::engine::fs::path_order(a, b));
        removed.sort_by(|a, b| crate::engine::fs::path_order(a, b));
        Changes { changed, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_seen_without_reading_files() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        for dir in ["a", "proc", "keep"] {
            std::fs::create_dir(r.join(dir)).expect("mkdir");
        }
        for f in ["a/one", "a/two", "keep/same", "proc/x"] {
            std::fs::write(r.join(f), "1").expect("write");
        }
        let ignore = IgnoreList::new(&[], &[]);
        let before = Snapshot::take(r, &ignore).expect("snapshot");
        assert!(!before.entries.contains_key("/proc/x"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::remove_file(r.join("a/one")).expect("rm");
        std::fs::write(r.join("a/three"), "3").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(r.join("a/two"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let after = Snapshot::take(r, &ignore).expect("snapshot");
        let c = before.changes(&after);
        assert_eq!(c.changed, ["/a", "/a/three", "/a/two"]);
        assert_eq!(c.removed, ["/a/one"]);
    }
}
