//! Making the root hold exactly a stage's filesystem (a [`FsView`] of its layer chain):
//! what the stage lacks is removed, what differs is (re)written, what is equal is left
//! alone; ignored paths ([`IgnoreList`]) are never touched and their ancestors stay
//! directories.
//!
//! "Equal" is a quick check, like rsync's: same type, mode, owner, size, mtime (seconds
//! and nanoseconds), symlink target, device numbers and content xattrs, and a regular
//! file must not be a hard link (a file the stage has once must not change with another
//! path when a RUN writes to it; the overlay of the sandbox breaks links the same way).
//! Files are written under a temporary name and renamed into place, so a running program
//! (kiln itself, its libraries) keeps the inode it has open.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use super::error::{sync_err, InplaceError};
use super::ignore::IgnoreList;
use crate::engine::fs::{join, Content, Entry, EntryKind, FsView};
use crate::engine::layered_fs::content_xattrs;

/// What a sync did.
#[derive(Debug, Default)]
pub(crate) struct SyncReport {
    /// Entries created or replaced.
    pub written: usize,
    /// Entries removed (a removed directory counts once).
    pub removed: usize,
    /// Paths of the stage that could not be made as the stage has them (a non-directory
    /// where kiln needs a directory, an xattr the container refuses).
    pub notes: Vec<String>,
}

/// Makes `root` hold what `view` holds (see the module docs).
pub(crate) fn sync_root(
    view: &dyn FsView,
    root: &Path,
    ignore: &IgnoreList,
) -> Result<SyncReport, InplaceError> {
    let mut s = Syncer {
        view,
        root,
        ignore,
        report: SyncReport::default(),
        counter: 0,
    };
    s.dir("/", true)?;
    Ok(s.report)
}

/// How a path on disk compares with the stage's entry.
enum Compared {
    Same,
    /// Same content, other mode or owner: fixed in place.
    MetaOnly,
    Differs,
}

struct Syncer<'a> {
    view: &'a dyn FsView,
    root: &'a Path,
    ignore: &'a IgnoreList,
    report: SyncReport,
    counter: u64,
}

impl Syncer<'_> {
    fn real(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Syncs the children of `dir` (`in_view`: the stage has it; otherwise it is
    /// scaffolding and only emptied of what is not ignored).
    fn dir(&mut self, dir: &str, in_view: bool) -> Result<(), InplaceError> {
        let want: Vec<String> = if in_view {
            self.view.read_dir(dir).map_err(sync_err(dir))?
        } else {
            Vec::new()
        };
        let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
        let real_dir = self.real(dir);
        let have: Vec<OsString> = std::fs::read_dir(&real_dir)
            .map_err(sync_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(sync_err(dir))?;
        for name in have {
            let Some(n) = name.to_str() else {
                // Not UTF-8: never a name of the stage (its names are strings).
                remove_any(&real_dir.join(&name)).map_err(sync_err(dir))?;
                self.report.removed += 1;
                continue;
            };
            if wanted.contains(n) {
                continue;
            }
            let path = join(dir, n);
            if self.ignore.is_ignored(&path) {
                continue;
            }
            let real = self.real(&path);
            if self.ignore.is_scaffold(&path) {
                if std::fs::symlink_metadata(&real).is_ok_and(|m| m.is_dir()) {
                    self.dir(&path, false)?;
                }
                continue;
            }
            remove_any(&real).map_err(sync_err(&path))?;
            self.report.removed += 1;
        }
        for name in &want {
            let path = join(dir, name);
            if self.ignore.is_ignored(&path) {
                continue;
            }
            let Some(entry) = self.view.lookup(&path).map_err(sync_err(&path))? else {
                continue;
            };
            if self.ignore.is_scaffold(&path) && !entry.is_dir() {
                self.report.notes.push(format!(
                    "{path}: kept as a directory (kiln needs a path below it), the stage has another file type there"
                ));
                continue;
            }
            self.entry(&path, &entry)?;
            if entry.is_dir() {
                self.dir(&path, true)?;
                set_times(&self.real(&path), entry.mtime, 0, true).map_err(sync_err(&path))?;
            }
        }
        Ok(())
    }

    /// Makes the path `path` what `e` says.
    fn entry(&mut self, path: &str, e: &Entry) -> Result<(), InplaceError> {
        let real = self.real(path);
        let existing = match std::fs::symlink_metadata(&real) {
            Ok(m) => Some(m),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(sync_err(path)(err)),
        };
        if let Some(m) = &existing {
            match compare(&real, m, e).map_err(sync_err(path))? {
                Compared::Same => return Ok(()),
                Compared::MetaOnly => {
                    set_owner_mode(&real, e, m.file_type().is_symlink()).map_err(sync_err(path))?;
                    return Ok(());
                }
                Compared::Differs => {}
            }
        }
        self.report.written += 1;
        let was_dir = existing.as_ref().is_some_and(|m| m.is_dir());
        if e.is_dir() {
            if existing.is_some() {
                remove_any(&real).map_err(sync_err(path))?;
            }
            std::fs::create_dir(&real).map_err(sync_err(path))?;
            set_owner_mode(&real, e, false).map_err(sync_err(path))?;
            self.set_xattrs(&real, path, e);
            return Ok(());
        }
        if was_dir {
            std::fs::remove_dir_all(&real).map_err(sync_err(path))?;
        }
        self.counter += 1;
        let tmp = real.with_file_name(format!(
            ".kiln-sync-{}-{}",
            std::process::id(),
            self.counter
        ));
        let made = self.make_node(&tmp, path, e);
        if let Err(err) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
        std::fs::rename(&tmp, &real).map_err(|err| {
            let _ = std::fs::remove_file(&tmp);
            sync_err(path)(err)
        })
    }

    /// Creates a non-directory `e` at `tmp` with its owner, mode, xattrs and times.
    fn make_node(&mut self, tmp: &Path, path: &str, e: &Entry) -> Result<(), InplaceError> {
        let err = sync_err;
        let mut nsec = 0;
        match &e.kind {
            EntryKind::File => {
                match &e.content {
                    Some(Content::Path(src)) => {
                        std::fs::copy(src, tmp).map_err(err(path))?;
                        nsec = std::fs::symlink_metadata(src)
                            .map_err(err(path))?
                            .mtime_nsec();
                    }
                    Some(Content::Bytes(b)) => {
                        std::fs::write(tmp, b.as_ref()).map_err(err(path))?
                    }
                    None => std::fs::write(tmp, b"").map_err(err(path))?,
                }
                set_owner_mode(tmp, e, false).map_err(err(path))?;
            }
            EntryKind::Symlink(target) => {
                std::os::unix::fs::symlink(target, tmp).map_err(err(path))?;
                set_owner_mode(tmp, e, true).map_err(err(path))?;
            }
            EntryKind::Fifo | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
                let (ft, dev) = match e.kind {
                    EntryKind::CharDevice { major, minor } => {
                        (FileType::CharacterDevice, rustix::fs::makedev(major, minor))
                    }
                    EntryKind::BlockDevice { major, minor } => {
                        (FileType::BlockDevice, rustix::fs::makedev(major, minor))
                    }
                    _ => (FileType::Fifo, 0),
                };
                rustix::fs::mknodat(rustix::fs::CWD, tmp, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| err(path)(e.into()))?;
                set_owner_mode(tmp, e, false).map_err(err(path))?;
            }
            // Not in a view of extracted layers.
            EntryKind::Dir
            | EntryKind::OpaqueDir
            | EntryKind::Hardlink(_)
            | EntryKind::Whiteout => return Ok(()),
        }
        self.set_xattrs(tmp, path, e);
        set_times(tmp, e.mtime, nsec, true).map_err(err(path))
    }

    fn set_xattrs(&mut self, real: &Path, path: &str, e: &Entry) {
        for (name, value) in &e.xattrs {
            if let Err(err) = rustix::fs::lsetxattr(real, name, value, XattrFlags::empty()) {
                self.report
                    .notes
                    .push(format!("{path}: cannot set the xattr {name}: {err}"));
            }
        }
    }
}

fn compare(real: &Path, m: &std::fs::Metadata, e: &Entry) -> std::io::Result<Compared> {
    let ft = m.file_type();
    let meta_same = m.mode() & 0o7777 == e.mode && m.uid() == e.uid && m.gid() == e.gid;
    let or_meta = |same_content: bool| match (same_content, meta_same) {
        (false, _) => Compared::Differs,
        (true, true) => Compared::Same,
        (true, false) => Compared::MetaOnly,
    };
    Ok(match &e.kind {
        EntryKind::Dir | EntryKind::OpaqueDir => or_meta(ft.is_dir()),
        EntryKind::File => {
            let src_nsec = match &e.content {
                Some(Content::Path(p)) => std::fs::symlink_metadata(p)?.mtime_nsec(),
                _ => 0,
            };
            let same = ft.is_file()
                && m.nlink() == 1
                && m.len() == e.size
                && m.mtime() == e.mtime
                && m.mtime_nsec() == src_nsec
                && content_xattrs(real) == e.xattrs;
            or_meta(same)
        }
        EntryKind::Symlink(target) => {
            let same = ft.is_symlink()
                && std::fs::read_link(real)?.as_os_str().as_encoded_bytes() == target.as_bytes()
                && meta_same;
            or_meta(same)
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            let kind_same = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                ft.is_char_device()
            } else {
                ft.is_block_device()
            };
            or_meta(kind_same && m.rdev() == rustix::fs::makedev(*major, *minor))
        }
        EntryKind::Fifo => or_meta(ft.is_fifo()),
        EntryKind::Hardlink(_) | EntryKind::Whiteout => Compared::Same,
    })
}

/// Gives each of `paths` (regular files with other links) a copy of its own, with the
/// same content, mode, owner, xattrs and times: the sandbox's overlay breaks a lower
/// file's links when a RUN writes it, so that a write through one name never changes
/// another. A previous RUN that made links in `/` would otherwise let it.
pub(crate) fn break_links(root: &Path, paths: &[String]) -> Result<(), InplaceError> {
    for (i, path) in paths.iter().enumerate() {
        let real = root.join(path.trim_start_matches('/'));
        let m = std::fs::symlink_metadata(&real).map_err(sync_err(path))?;
        let e = Entry {
            path: path.clone(),
            kind: EntryKind::File,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            size: m.len(),
            content: None,
            xattrs: content_xattrs(&real),
        };
        let tmp = real.with_file_name(format!(".kiln-unlink-{}-{i}", std::process::id()));
        let made = (|| {
            std::fs::copy(&real, &tmp)?;
            set_owner_mode(&tmp, &e, false)?;
            for (name, value) in &e.xattrs {
                rustix::fs::lsetxattr(&tmp, name, value, XattrFlags::empty())?;
            }
            set_times(&tmp, m.mtime(), m.mtime_nsec(), false)?;
            std::fs::rename(&tmp, &real)
        })();
        if let Err(err) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(sync_err(path)(err));
        }
    }
    Ok(())
}

/// Owner first (a chown clears setuid bits), then the mode (not on symlinks).
fn set_owner_mode(real: &Path, e: &Entry, symlink: bool) -> std::io::Result<()> {
    rustix::fs::chownat(
        rustix::fs::CWD,
        real,
        Some(Uid::from_raw(e.uid)),
        Some(Gid::from_raw(e.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !symlink {
        rustix::fs::chmod(real, Mode::from_raw_mode(e.mode & 0o7777))?;
    }
    Ok(())
}

/// Sets atime and mtime (`only_if_different`: leaves a matching mtime alone).
pub(crate) fn set_times(
    real: &Path,
    sec: i64,
    nsec: i64,
    only_if_different: bool,
) -> std::io::Result<()> {
    if only_if_different {
        let m = std::fs::symlink_metadata(real)?;
        if m.mtime() == sec && m.mtime_nsec() == nsec {
            return Ok(());
        }
    }
    let ts = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        real,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Removes a file, symlink or whole directory (never following symlinks).
pub(crate) fn remove_any(real: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(real) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(real),
        Ok(_) => std::fs::remove_file(real),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
