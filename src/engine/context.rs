//! The build context as an [`FsView`]: a local directory whose paths map to `/...`, with
//! `.dockerignore` applied (excluded paths do not exist; an excluded directory exists only
//! as the parent of re-included children), symlinks returned as symlinks (never followed
//! out of the context), regular files as [`Content::Path`].
//!
//! [`digest_sources`] hashes what a COPY reads for cache keys; [`StatCache`] remembers file
//! hashes by (dev, inode, size, mtime) so unchanged files are not read again.

mod digest;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::dockerfile::ignore::{Decision, IgnoreError, MatchInfo, Matcher};
use crate::engine::fs::{clean_abs, Content, Entry, EntryKind, FsView};

pub use self::digest::{digest_sources, StatCache};

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
#[derive(Debug, Clone)]
pub struct ContextFs {
    root: PathBuf,
    matcher: Matcher,
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
        Ok(ContextFs { root, matcher })
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

    /// Walks `rel`'s components: each must exist, every one but the last must be a real
    /// directory, and the ignore rules decide. Gives the last component's metadata, its
    /// decision and its match info.
    fn walk(&self, rel: &str) -> std::io::Result<Option<(std::fs::Metadata, Decision, MatchInfo)>> {
        let parts: Vec<&str> = rel.split('/').collect();
        let mut info = MatchInfo::default();
        let mut end = 0usize;
        for (k, part) in parts.iter().enumerate() {
            end += part.len() + usize::from(k > 0);
            let prefix = &rel[..end];
            let md = match std::fs::symlink_metadata(self.disk(prefix)) {
                Ok(md) => md,
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            let last = k + 1 == parts.len();
            if !last && !md.is_dir() {
                return Ok(None);
            }
            let (decision, next) = if self.matcher.is_empty() {
                (Decision::Include, MatchInfo::default())
            } else {
                self.matcher.walk(prefix, md.is_dir(), &info)
            };
            if last {
                return Ok(Some((md, decision, next)));
            }
            if decision == Decision::SkipDir {
                return Ok(None);
            }
            info = next;
        }
        Ok(None)
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

impl FsView for ContextFs {
    fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>> {
        let clean = clean_abs(path);
        let rel = clean.trim_start_matches('/');
        if rel.is_empty() {
            let md = std::fs::metadata(&self.root)?;
            return entry_from_disk("/", &self.root, &md).map(Some);
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
        entry_from_disk(&clean, &self.disk(rel), &md).map(Some)
    }

    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        let clean = clean_abs(path);
        match self.lookup(&clean)? {
            Some(e) if e.kind == EntryKind::Dir => {}
            _ => return Ok(Vec::new()),
        }
        let rel = clean.trim_start_matches('/');
        let mut out = Vec::new();
        for name in sorted_names(&self.disk(rel))? {
            let child = if rel.is_empty() {
                format!("/{name}")
            } else {
                format!("/{rel}/{name}")
            };
            if self.matcher.is_empty() || self.lookup(&child)?.is_some() {
                out.push(name);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
