//! Extracting a layer into an overlayfs-format directory, never writing outside it.
//!
//! Every parent directory is opened component by component relative to the destination
//! with `O_NOFOLLOW | O_DIRECTORY`, so a symlink planted by an earlier entry (or an entry
//! that is not a directory) makes the extraction fail instead of escaping the destination.
//! Entries are created with `*at` calls on those directory descriptors.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use sha2::{Digest, Sha256};

use super::read::{open_decompressed, parse_member, Parsed};
use super::{digest_string, LayerError};
use crate::engine::fs::{Entry, EntryKind};

/// Who is extracting: what may be created and set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Privilege {
    /// Real root: everything.
    Root,
    /// Root of a user namespace (rootless kiln): owners within the namespace's map, no
    /// device nodes (whiteouts are fine), no `trusted.*` xattrs.
    UserNamespace,
    /// A plain user: files stay the user's, no devices, only `user.*` xattrs.
    User,
}

fn privilege() -> Privilege {
    if !rustix::process::geteuid().is_root() {
        Privilege::User
    } else if crate::engine::run::userns::in_user_namespace() {
        Privilege::UserNamespace
    } else {
        Privilege::Root
    }
}

/// The xattr marking an opaque directory: `trusted.overlay.opaque` as root, the
/// `userxattr` form `user.overlay.opaque` otherwise (in a user namespace too, where
/// overlayfs is mounted with `userxattr`).
pub fn opaque_xattr_name() -> &'static str {
    if privilege() == Privilege::Root {
        "trusted.overlay.opaque"
    } else {
        "user.overlay.opaque"
    }
}

/// overlayfs's own xattrs are never taken from a layer's content: they would change what
/// the overlay shows (opaque, redirect, metacopy...).
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Extracts a layer blob into `dest` (which must exist) in overlayfs format: whiteouts
/// become 0/0 character devices, opaque markers set the opaque xattr on their directory.
pub fn extract_layer(blob: &Path, media_type: &str, dest: &Path) -> Result<(), LayerError> {
    extract_layer_verified(blob, media_type, dest).map(|_| ())
}

/// Like [`extract_layer`], and returns the diff_id (`sha256:` of the uncompressed tar,
/// trailing bytes included) so the caller can verify it.
pub fn extract_layer_verified(
    blob: &Path,
    media_type: &str,
    dest: &Path,
) -> Result<String, LayerError> {
    let reader = HashReader {
        inner: open_decompressed(blob, media_type)?,
        hasher: Sha256::new(),
    };
    let mut x = Extractor::new(dest)?;
    let tar_err = |source| LayerError::Tar {
        path: blob.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    for member in archive.entries().map_err(tar_err)? {
        let mut member = member.map_err(tar_err)?;
        match parse_member(&mut member, blob)? {
            None => {}
            Some(Parsed::Opaque(dir)) => x.opaque(&dir)?,
            Some(Parsed::Entry(e)) => x.entry(&e, &mut member)?,
        }
    }
    let mut reader = archive.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(tar_err)?;
    x.finish()?;
    Ok(digest_string(reader.hasher))
}

/// Writes the layer `spec` into `dest` (which must exist) in overlayfs format, as
/// extracting its blob would (entry times clamped to `epoch` as the tar has them). A
/// regular file whose content is a file below `link_root` (immutable extracted layers)
/// with the entry's owner, mode, mtime (to the second), size and no xattrs on either side
/// is hard-linked instead of copied: no new inode, no copy of the bytes.
pub fn extract_spec(
    spec: &crate::engine::fs::LayerSpec,
    dest: &Path,
    epoch: Option<i64>,
    link_root: &Path,
) -> Result<(), LayerError> {
    let mut x = Extractor::new(dest)?;
    for e in &spec.entries {
        if e.path == "/" {
            continue;
        }
        let mut e = e.clone();
        if let Some(t) = epoch {
            e.mtime = e.mtime.min(t);
        }
        if e.kind == EntryKind::File {
            let content = e.content.clone().ok_or_else(|| LayerError::Content {
                entry: e.path.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no content"),
            })?;
            if let crate::engine::fs::Content::Path(src) = &content {
                if src.starts_with(link_root) && x.link(&e, src)? {
                    continue;
                }
            }
            let reader = content.open().map_err(|source| LayerError::Content {
                entry: e.path.clone(),
                source,
            })?;
            let mut limited = reader.take(e.size + 1);
            x.entry(&e, &mut limited)?;
            let mut rest = [0u8; 1];
            if limited.read(&mut rest).unwrap_or(0) != 0 {
                return Err(LayerError::SizeMismatch {
                    entry: e.path.clone(),
                    expected: e.size,
                    actual: e.size + 1,
                });
            }
        } else {
            x.entry(&e, &mut io::empty())?;
        }
    }
    x.finish()
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

struct Extractor {
    root: OwnedFd,
    dest: PathBuf,
    privilege: Privilege,
    /// The last parent directory opened, by its path.
    cached: Option<(String, OwnedFd)>,
    /// Directory mtimes, applied at the end (children change them).
    dir_times: Vec<(String, i64)>,
}

impl Extractor {
    /// An extractor writing into the existing directory `dest`.
    fn new(dest: &Path) -> Result<Extractor, LayerError> {
        let root = rustix::fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayerError::io(dest, e.into()))?;
        Ok(Extractor {
            root,
            dest: dest.to_path_buf(),
            privilege: privilege(),
            cached: None,
            dir_times: Vec::new(),
        })
    }

    fn err(&self, entry: &str, source: io::Error) -> LayerError {
        LayerError::Extract {
            entry: entry.to_string(),
            path: self.dest.join(entry.trim_start_matches('/')),
            source,
        }
    }

    /// Opens the directory at `path` (clean absolute) without following symlinks,
    /// creating missing directories 0755 when `create`.
    fn open_dir(&self, path: &str, create: bool) -> Result<OwnedFd, LayerError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut cur = rustix::fs::openat(&self.root, ".", flags, Mode::empty())
            .map_err(|e| self.err(path, errno(e)))?;
        for comp in components(path) {
            let next = match rustix::fs::openat(&cur, comp, flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    rustix::fs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755))
                        .map_err(|e| self.err(path, errno(e)))?;
                    rustix::fs::openat(&cur, comp, flags, Mode::empty())
                }
                other => other,
            };
            cur = match next {
                Ok(fd) => fd,
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    return Err(LayerError::Unsafe {
                        entry: path.to_string(),
                        reason: format!("{comp:?} on its path is a symlink or not a directory"),
                    })
                }
                Err(e) => return Err(self.err(path, errno(e))),
            };
        }
        Ok(cur)
    }

    /// The parent directory of `path` (opened safely, created when `create`) and the name.
    fn parent_of(&mut self, path: &str, create: bool) -> Result<(OwnedFd, String), LayerError> {
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        if name.is_empty() {
            return Err(LayerError::Unsafe {
                entry: path.to_string(),
                reason: "the root cannot be replaced".into(),
            });
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        if let Some((p, fd)) = &self.cached {
            if p == dir {
                let fd = fd.try_clone().map_err(|e| self.err(path, e))?;
                return Ok((fd, name.to_string()));
            }
        }
        let fd = self.open_dir(dir, create)?;
        let copy = fd.try_clone().map_err(|e| self.err(path, e))?;
        self.cached = Some((dir.to_string(), copy));
        Ok((fd, name.to_string()))
    }

    /// Removes whatever is at `name` in `dir` (recursively for directories).
    fn remove(&self, dir: &OwnedFd, name: &str, entry: &str) -> Result<(), LayerError> {
        let name = std::ffi::CString::new(name)
            .map_err(|e| self.err(entry, io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        remove_at(dir, &name).map_err(|e| self.err(entry, e))
    }

    fn opaque(&mut self, dir: &str) -> Result<(), LayerError> {
        if dir == "/" {
            return Ok(());
        }
        let fd = self.open_dir(dir, true)?;
        rustix::fs::fsetxattr(&fd, opaque_xattr_name(), b"y", XattrFlags::empty())
            .map_err(|e| self.err(dir, errno(e)))
    }

    fn entry<R: Read>(&mut self, e: &Entry, data: &mut R) -> Result<(), LayerError> {
        let (dir, name) = self.parent_of(&e.path, true)?;
        let existing = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_dir =
            existing.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        let keep_dir = existing_dir && e.is_dir();
        if existing.is_some() && !keep_dir {
            // The cached parent may be the directory being replaced.
            self.cached = None;
            self.remove(&dir, &name, &e.path)?;
        }
        let path = e.path.as_str();
        let mode = Mode::from_raw_mode(e.mode & 0o7777);
        match &e.kind {
            EntryKind::Dir | EntryKind::OpaqueDir => {
                if !keep_dir {
                    rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o700))
                        .map_err(|err| self.err(path, errno(err)))?;
                }
                let fd = self.open_dir(path, false)?;
                self.owner(fd.as_fd(), None, e)?;
                rustix::fs::fchmod(&fd, mode).map_err(|err| self.err(path, errno(err)))?;
                self.xattrs_fd(&fd, e)?;
                if e.kind == EntryKind::OpaqueDir {
                    rustix::fs::fsetxattr(&fd, opaque_xattr_name(), b"y", XattrFlags::empty())
                        .map_err(|err| self.err(path, errno(err)))?;
                }
                self.dir_times.push((e.path.clone(), e.mtime));
            }
            EntryKind::File => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o600))
                    .map_err(|err| self.err(path, errno(err)))?;
                let mut file = File::from(fd);
                io::copy(data, &mut file).map_err(|err| self.err(path, err))?;
                file.flush().map_err(|err| self.err(path, err))?;
                self.owner(file.as_fd(), None, e)?;
                rustix::fs::fchmod(&file, mode).map_err(|err| self.err(path, errno(err)))?;
                self.xattrs_fd(&file, e)?;
                rustix::fs::futimens(&file, &times(e.mtime))
                    .map_err(|err| self.err(path, errno(err)))?;
            }
            EntryKind::Symlink(target) => {
                rustix::fs::symlinkat(target.as_str(), &dir, name.as_str())
                    .map_err(|err| self.err(path, errno(err)))?;
                self.finish_at(&dir, &name, e, false)?;
            }
            EntryKind::Hardlink(target) => {
                let (tdir, tname) = self.parent_of(target, false)?;
                rustix::fs::linkat(&tdir, tname.as_str(), &dir, name.as_str(), AtFlags::empty())
                    .map_err(|err| self.err(path, errno(err)))?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let ft = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                let dev = rustix::fs::makedev(*major, *minor);
                match rustix::fs::mknodat(&dir, name.as_str(), ft, mode, dev) {
                    Ok(()) => self.finish_at(&dir, &name, e, true)?,
                    Err(rustix::io::Errno::PERM) if self.privilege != Privilege::Root => {
                        tracing::warn!("not root: skipping device {path} in a layer");
                    }
                    Err(err) => return Err(self.err(path, errno(err))),
                }
            }
            EntryKind::Fifo => {
                rustix::fs::mknodat(&dir, name.as_str(), FileType::Fifo, mode, 0)
                    .map_err(|err| self.err(path, errno(err)))?;
                self.finish_at(&dir, &name, e, true)?;
            }
            EntryKind::Whiteout => {
                rustix::fs::mknodat(
                    &dir,
                    name.as_str(),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|err| self.err(path, errno(err)))?;
            }
        }
        Ok(())
    }

    /// Hard-links `src` at the entry's path when its metadata is the entry's; false (and
    /// nothing done) when it is not.
    fn link(&mut self, e: &Entry, src: &Path) -> Result<bool, LayerError> {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::symlink_metadata(src) else {
            return Ok(false);
        };
        let same = meta.file_type().is_file()
            && meta.mode() & 0o7777 == e.mode & 0o7777
            && meta.uid() == e.uid
            && meta.gid() == e.gid
            && meta.mtime() == e.mtime
            && meta.len() == e.size
            && e.xattrs.is_empty()
            && matches!(rustix::fs::llistxattr(src, &mut [0u8; 0][..]), Ok(0));
        if !same {
            return Ok(false);
        }
        let (dir, name) = self.parent_of(&e.path, true)?;
        if rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            self.cached = None;
            self.remove(&dir, &name, &e.path)?;
        }
        match rustix::fs::linkat(rustix::fs::CWD, src, &dir, name.as_str(), AtFlags::empty()) {
            Ok(()) => Ok(true),
            // Too many links, another filesystem...: copy instead.
            Err(_) => Ok(false),
        }
    }

    /// Owner, mode, xattrs and mtime of a non-directory created by name.
    fn finish_at(
        &self,
        dir: &OwnedFd,
        name: &str,
        e: &Entry,
        chmod: bool,
    ) -> Result<(), LayerError> {
        let path = e.path.as_str();
        self.owner(dir.as_fd(), Some(name), e)?;
        if chmod {
            rustix::fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(e.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|err| self.err(path, errno(err)))?;
        }
        let full = self.dest.join(path.trim_start_matches('/'));
        for (k, v) in e.xattrs.iter().filter(|(k, _)| !is_overlay_xattr(k)) {
            let r = rustix::fs::lsetxattr(&full, k.as_str(), v, XattrFlags::empty());
            self.xattr_result(r, path)?;
        }
        rustix::fs::utimensat(dir, name, &times(e.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| self.err(path, errno(err)))
    }

    /// Sets the owner of the fd itself (`name == None`) or of `name` in the directory fd.
    /// Not as root, a refused chown leaves the files owned by the current user.
    fn owner(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        name: Option<&str>,
        e: &Entry,
    ) -> Result<(), LayerError> {
        let uid = Some(Uid::from_raw(e.uid));
        let gid = Some(Gid::from_raw(e.gid));
        let r = match name {
            None => rustix::fs::fchown(fd, uid, gid),
            Some(n) => rustix::fs::chownat(fd, n, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
        };
        match (r, self.privilege) {
            (Ok(()), _) => Ok(()),
            (Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL), Privilege::User) => Ok(()),
            // The id has no mapping in this user namespace.
            (Err(rustix::io::Errno::INVAL), Privilege::UserNamespace) => {
                Err(self.unmapped_owner(e))
            }
            (Err(err), _) => Err(self.err(&e.path, errno(err))),
        }
    }

    fn unmapped_owner(&self, e: &Entry) -> LayerError {
        let map = crate::engine::run::userns::current_mapping();
        let (what, id) = match map {
            Some(m) if m.maps_uid(e.uid) => ("gid", e.gid),
            _ => ("uid", e.uid),
        };
        LayerError::UnmappedOwner {
            entry: e.path.clone(),
            what,
            id,
            map: map.map(|m| m.describe()).unwrap_or_default(),
        }
    }

    fn xattrs_fd<Fd: AsFd>(&self, fd: Fd, e: &Entry) -> Result<(), LayerError> {
        for (k, v) in e.xattrs.iter().filter(|(k, _)| !is_overlay_xattr(k)) {
            let r = rustix::fs::fsetxattr(&fd, k.as_str(), v, XattrFlags::empty());
            self.xattr_result(r, &e.path)?;
        }
        Ok(())
    }

    fn xattr_result(&self, r: rustix::io::Result<()>, path: &str) -> Result<(), LayerError> {
        match r {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP)
                if self.privilege != Privilege::Root =>
            {
                tracing::warn!("not root: dropping an extended attribute of {path}");
                Ok(())
            }
            Err(err) => Err(self.err(path, errno(err))),
        }
    }

    /// Applies directory mtimes, deepest first, re-opening each without following links.
    fn finish(mut self) -> Result<(), LayerError> {
        self.cached = None;
        let dirs = std::mem::take(&mut self.dir_times);
        for (path, mtime) in dirs.iter().rev() {
            match self.open_dir(path, false) {
                Ok(fd) => rustix::fs::futimens(&fd, &times(*mtime))
                    .map_err(|err| self.err(path, errno(err)))?,
                // Replaced by a later entry: nothing to do.
                Err(LayerError::Unsafe { .. }) => {}
                Err(LayerError::Extract { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Removes `name` in `dir`; directories are emptied first, never following symlinks.
fn remove_at(dir: &OwnedFd, name: &std::ffi::CStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) => {}
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let sub = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let mut names = Vec::new();
    for item in rustix::fs::Dir::read_from(&sub)? {
        let item = item?;
        let n = item.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    for n in names {
        remove_at(&sub, &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}
