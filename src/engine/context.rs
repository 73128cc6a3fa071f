//! The build context as an [`FsView`]: a local directory whose paths map to `/...`, with
//! `.dockerignore` applied (excluded paths do not exist; an excluded directory exists only
//! as the parent of re-included children), symlinks returned as symlinks (never followed
//! out of the context), regular files as [`Content::Path`].
//!
//! [`digest_sources`] hashes what a COPY reads for cache keys; [`StatCache`] remembers file
//! hashes by (dev, inode, size, mtime) so unchanged files are not read again.

mod digest;
mod statcache;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dockerfile::ignore::{Decision, IgnoreError, MatchInfo, Matcher};
use crate::engine::fs::{clean_abs, Content, Entry, EntryKind, FsView};

pub use self::digest::digest_sources;
pub use self::statcache::{StatCache, StatKey, STAT_CACHE_FILE};

/// A context that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {} is not a directory (hint: pass the directory that holds the files COPY reads)", path.display())]
    NotADirectory { path: PathBuf },
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error("failed to read {} in the build context: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A build context directory with its ignore rules.
#[derive(Debug)]
pub struct ContextFs {
    root: PathBuf,
    matcher: Matcher,
    /// Per directory (relative path): `None` when it is not a real, walkable directory of
    /// the view, else the match info for its children. A context does not change during
    /// a build, so this is never invalidated.
    dirs: Mutex<HashMap<String, Option<MatchInfo>>>,
}

/// Major and minor numbers of a device (glibc's encoding).
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The entry for a path of the local disk (not following a final symlink).
pub(crate) fn entry_from_disk(
    path: &str,
    disk: &Path,
    md: &std::fs::Metadata,
) -> std::io::Result<Entry> {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink(std::fs::read_link(disk)?.to_string_lossy().into_owned())
    } else if ft.is_char_device() {
        let (major, minor) = dev_numbers(md.rdev());
        EntryKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        let (major, minor) = dev_numbers(md.rdev());
        EntryKind::BlockDevice { major, minor }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        EntryKind::File
    };
    let is_file = kind == EntryKind::File;
    Ok(Entry {
        path: path.to_string(),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
        size: if is_file { md.len() } else { 0 },
        content: is_file.then(|| Content::Path(disk.to_path_buf())),
        xattrs: BTreeMap::new(),
    })
}

impl ContextFs {
    /// A context with explicit ignore rules.
    pub fn new(root: impl Into<PathBuf>, matcher: Matcher) -> Result<ContextFs, ContextError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(ContextError::NotADirectory { path: root });
        }
        Ok(ContextFs {
            root,
            matcher,
            dirs: Mutex::new(HashMap::new()),
        })
    }

    /// A context with the ignore file BuildKit picks for `dockerfile`
    /// (`<Dockerfile>.dockerignore`, else `.dockerignore` at the root).
    pub fn for_build(root: &Path, dockerfile: &Path) -> Result<ContextFs, ContextError> {
        let matcher = Matcher::for_build(root, dockerfile)?;
        ContextFs::new(root, matcher)
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ignore rules.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    fn disk(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// The match info for the children of directory `rel` ("" is the root), or `None` when
    /// `rel` is not a real directory the walker enters (missing, a symlink, a file, or
    /// skipped by the ignore rules). Memoised.
    fn dir_info(&self, rel: &str) -> std::io::Result<Option<MatchInfo>> {
        if rel.is_empty() {
            return Ok(Some(MatchInfo::default()));
        }
        if let Some(hit) = self.dirs.lock().ok().and_then(|m| m.get(rel).cloned()) {
            return Ok(hit);
        }
        let parent_rel = rel.rfind('/').map_or("", |i| &rel[..i]);
        let state = match self.dir_info(parent_rel)? {
            None => None,
            Some(parent_info) => match self.stat(rel)? {
                Some(md) if md.is_dir() => {
                    let (decision, info) = self.decide(rel, true, &parent_info);
                    (decision != Decision::SkipDir).then_some(info)
                }
                _ => None,
            },
        };
        if let Ok(mut m) = self.dirs.lock() {
            m.insert(rel.to_string(), state.clone());
        }
        Ok(state)
    }

    fn stat(&self, rel: &str) -> std::io::Result<Option<std::fs::Metadata>> {
        match std::fs::symlink_metadata(self.disk(rel)) {
            Ok(md) => Ok(Some(md)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn decide(&self, rel: &str, is_dir: bool, parent: &MatchInfo) -> (Decision, MatchInfo) {
        if self.matcher.is_empty() {
            (Decision::Include, MatchInfo::default())
        } else {
            self.matcher.walk(rel, is_dir, parent)
        }
    }

    /// Finds `rel` (not the root): its parent must be a walkable directory; gives its
    /// metadata, the ignore decision and its match info.
    fn walk(&self, rel: &str) -> std::io::Result<Option<(std::fs::Metadata, Decision, MatchInfo)>> {
        let parent_rel = rel.rfind('/').map_or("", |i| &rel[..i]);
        let Some(parent_info) = self.dir_info(parent_rel)? else {
            return Ok(None);
        };
        let Some(md) = self.stat(rel)? else {
            return Ok(None);
        };
        let (decision, info) = self.decide(rel, md.is_dir(), &parent_info);
        Ok(Some((md, decision, info)))
    }

    /// Whether an excluded directory holds something re-included below it.
    fn has_included(&self, rel: &str, info: &MatchInfo) -> std::io::Result<bool> {
        for name in sorted_names(&self.disk(rel))? {
            let child = format!("{rel}/{name}");
            let md = match std::fs::symlink_metadata(self.disk(&child)) {
                Ok(md) => md,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e),
            };
            match self.matcher.walk(&child, md.is_dir(), info) {
                (Decision::Include, _) => return Ok(true),
                (Decision::Exclude, next) if md.is_dir() && self.has_included(&child, &next)? => {
                    return Ok(true);
                }
                _ => {}
            }
        }
        Ok(false)
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn sorted_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for d in std::fs::read_dir(dir)? {
        names.push(d?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

impl ContextFs {
    /// Like [`FsView::lookup`], plus, for a regular file, the [`StatKey`] of the version
    /// that was found (from the same `stat`).
    fn lookup_keyed(&self, path: &str) -> std::io::Result<Option<(Entry, Option<StatKey>)>> {
        let clean = clean_abs(path);
        let rel = clean.trim_start_matches('/');
        if rel.is_empty() {
            let md = std::fs::metadata(&self.root)?;
            return entry_from_disk("/", &self.root, &md).map(|e| Some((e, None)));
        }
        let Some((md, decision, info)) = self.walk(rel)? else {
            return Ok(None);
        };
        let visible = match decision {
            Decision::Include => true,
            Decision::Exclude => md.is_dir() && self.has_included(rel, &info)?,
            Decision::SkipDir => false,
        };
        if !visible {
            return Ok(None);
        }
        let key = md.is_file().then(|| StatKey::from_metadata(&md));
        entry_from_disk(&clean, &self.disk(rel), &md).map(|e| Some((e, key)))
    }
}

impl FsView for ContextFs {
    fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>> {
        Ok(self.lookup_keyed(path)?.map(|(e, _)| e))
    }

    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        let clean = clean_abs(path);
        let rel = clean.trim_start_matches('/');
        if !rel.is_empty()
            && !self
                .lookup(&clean)?
                .is_some_and(|e| e.kind == EntryKind::Dir)
        {
            return Ok(Vec::new());
        }
        let Some(info) = self.dir_info(rel)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for d in std::fs::read_dir(self.disk(rel))? {
            let d = d?;
            let name = d.file_name().to_string_lossy().into_owned();
            if self.matcher.is_empty() {
                out.push(name);
                continue;
            }
            let is_dir = d.file_type()?.is_dir();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let visible = match self.decide(&child, is_dir, &info) {
                (Decision::Include, _) => true,
                (Decision::Exclude, next) => is_dir && self.has_included(&child, &next)?,
                (Decision::SkipDir, _) => false,
            };
            if visible {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
