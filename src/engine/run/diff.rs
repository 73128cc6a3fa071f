//! The overlay upper dir of a RUN as a layer, by BuildKit's rules (its overlay differ
//! feeding containerd's change writer):
//!
//! * an entry of the upper dir is recorded unless the lower has the same path with the
//!   same type, mode, owner, device and `security.capability`, and, for non-directories,
//!   the same size and mtime (when both mtimes have no sub-second part, the content
//!   decides);
//! * a whiteout (char 0/0) is one deletion, recorded only if the lower has the path;
//! * an opaque directory is expanded: one deletion per lower child no longer there, and
//!   below it every entry is compared with the lower (no `.wh..wh..opq` markers);
//! * every parent directory of a recorded path is repeated with its metadata in the upper
//!   dir, never the root;
//! * entries sharing an inode: the first recorded one carries the content, later ones are
//!   hard links to it (a link to a lower file thus becomes a full copy);
//! * sockets are left out; of the xattrs only `security.capability` is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::engine::fs::{join, parent, Content, Entry, EntryKind, FsView, LayerSpec};
use crate::engine::layered_fs::entry_from_disk;

use super::RunError;

const CAPABILITY: &str = "security.capability";

fn diff_err(path: &str) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Diff {
        path: path.to_string(),
        source,
    }
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// An opaque directory of the upper dir: the xattr overlayfs itself writes, which is
/// `trusted.overlay.opaque` as root and `user.overlay.opaque` in a user namespace
/// (`userxattr`); the other one is ordinary content a RUN may have set.
fn is_opaque(real: &Path) -> bool {
    let name = crate::engine::layer::opaque_xattr_name();
    let mut buf = [0u8; 4];
    matches!(rustix::fs::lgetxattr(real, name, &mut buf[..]), Ok(1) if buf[0] == b'y')
}

struct Differ<'a> {
    upper: &'a Path,
    lower: &'a dyn FsView,
    /// Stub paths that leave no trace (mount targets, hosts, resolv.conf).
    ignored: BTreeSet<String>,
    /// Recorded entries with the (dev, inode) of non-directories.
    recorded: Vec<(Entry, Option<(u64, u64)>)>,
}

impl Differ<'_> {
    fn real(&self, path: &str) -> std::path::PathBuf {
        self.upper.join(path.trim_start_matches('/'))
    }

    fn lookup_lower(&self, path: &str) -> Result<Option<Entry>, RunError> {
        match self.lower.lookup(path) {
            Ok(e) => Ok(e),
            // A non-directory on the way: the path does not exist below.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(diff_err(path)(e)),
        }
    }

    fn walk(&mut self, dir: &str, opaque: bool) -> Result<(), RunError> {
        let real_dir = self.real(dir);
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&real_dir)
            .map_err(diff_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(diff_err(dir))?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        let mut present = BTreeSet::new();
        for name in names {
            let Some(name) = name.to_str().map(str::to_string) else {
                return Err(RunError::UnsafeDiff {
                    path: format!("{dir}/{}", name.to_string_lossy()),
                    reason: "the name is not valid UTF-8".into(),
                });
            };
            let path = join(dir, &name);
            let real = self.real(&path);
            let meta = std::fs::symlink_metadata(&real).map_err(diff_err(&path))?;
            if is_whiteout(&meta) {
                if !opaque && self.lookup_lower(&path)?.is_some() {
                    self.record_whiteout(&path);
                }
                continue;
            }
            present.insert(name);
            if meta.file_type().is_socket() || self.ignored.contains(&path) {
                continue;
            }
            let entry = layer_entry(&real, &path, &meta)?;
            let lower = self.lookup_lower(&path)?;
            let changed = match &lower {
                None => true,
                Some(l) => !same(l, &entry, &meta).map_err(diff_err(&path))?,
            };
            let is_dir = meta.is_dir();
            if changed {
                let ino = (!is_dir && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
                self.recorded.push((entry, ino));
            }
            if is_dir {
                let expand = opaque || (lower.is_some() && is_opaque(&real));
                self.walk(&path, expand)?;
                if expand && lower.as_ref().is_some_and(Entry::is_dir) {
                    self.whiteout_missing(&path)?;
                }
            }
        }
        Ok(())
    }

    /// In an opaque directory: one deletion per lower child the upper dir lacks.
    fn whiteout_missing(&mut self, dir: &str) -> Result<(), RunError> {
        let lower_names = self.lower.read_dir(dir).map_err(diff_err(dir))?;
        for name in lower_names {
            let path = join(dir, &name);
            let real = self.real(&path);
            let gone = match std::fs::symlink_metadata(&real) {
                Ok(m) => is_whiteout(&m),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(diff_err(&path)(e)),
            };
            if gone {
                self.record_whiteout(&path);
            }
        }
        Ok(())
    }

    fn record_whiteout(&mut self, path: &str) {
        let mut e = Entry::dir(path, 0, 0, 0);
        e.kind = EntryKind::Whiteout;
        self.recorded.push((e, None));
    }

    fn finish(self) -> Result<LayerSpec, RunError> {
        let mut recorded = self.recorded;
        recorded.sort_by(|a, b| crate::engine::fs::path_order(&a.0.path, &b.0.path));
        let mut have: BTreeSet<String> = recorded.iter().map(|(e, _)| e.path.clone()).collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(recorded.len());
        let mut sources: HashMap<(u64, u64), String> = HashMap::new();
        let mut parents: BTreeMap<String, Entry> = BTreeMap::new();
        for (mut e, ino) in recorded {
            let mut p = parent(&e.path).to_string();
            while p != "/" && !have.contains(&p) {
                let real = self.upper.join(p.trim_start_matches('/'));
                let meta = std::fs::symlink_metadata(&real).map_err(diff_err(&p))?;
                if !meta.is_dir() {
                    return Err(RunError::UnsafeDiff {
                        path: p,
                        reason: "a parent in the upper dir is not a directory".into(),
                    });
                }
                parents.insert(p.clone(), layer_entry(&real, &p, &meta)?);
                have.insert(p.clone());
                p = parent(&p).to_string();
            }
            if let Some(key) = ino {
                if let Some(src) = sources.get(&key) {
                    e.kind = EntryKind::Hardlink(src.clone());
                    e.size = 0;
                    e.content = None;
                } else {
                    sources.insert(key, e.path.clone());
                }
            }
            entries.push(e);
        }
        entries.extend(parents.into_values());
        let mut spec = LayerSpec { entries };
        spec.sort();
        Ok(spec)
    }
}

/// An upper dir entry as it goes into the layer: like containerd's change writer, only
/// the `security.capability` xattr is kept.
pub(crate) fn layer_entry(
    real: &Path,
    path: &str,
    meta: &std::fs::Metadata,
) -> Result<Entry, RunError> {
    let mut e = entry_from_disk(real, path, meta).map_err(diff_err(path))?;
    e.xattrs.retain(|k, _| k == CAPABILITY);
    Ok(e)
}

/// BuildKit's `sameDirent`: is the upper entry unchanged from the lower one?
pub(crate) fn same(
    lower: &Entry,
    upper: &Entry,
    umeta: &std::fs::Metadata,
) -> std::io::Result<bool> {
    let same_type = match (&lower.kind, &upper.kind) {
        (EntryKind::Dir | EntryKind::OpaqueDir, EntryKind::Dir) => true,
        (EntryKind::File, EntryKind::File) => true,
        (EntryKind::Symlink(_), EntryKind::Symlink(_)) => true,
        (EntryKind::Fifo, EntryKind::Fifo) => true,
        (a @ EntryKind::CharDevice { .. }, b @ EntryKind::CharDevice { .. })
        | (a @ EntryKind::BlockDevice { .. }, b @ EntryKind::BlockDevice { .. }) => a == b,
        _ => false,
    };
    if !same_type || lower.mode != upper.mode || lower.uid != upper.uid || lower.gid != upper.gid {
        return Ok(false);
    }
    if lower.xattrs.get(CAPABILITY) != upper.xattrs.get(CAPABILITY) {
        return Ok(false);
    }
    if upper.is_dir() {
        return Ok(true);
    }
    if let (EntryKind::Symlink(a), EntryKind::Symlink(b)) = (&lower.kind, &upper.kind) {
        if a.len() != b.len() {
            return Ok(false);
        }
    } else if lower.size != upper.size {
        return Ok(false);
    }
    if lower.mtime != umeta.mtime() {
        return Ok(false);
    }
    let lower_nsec = match &lower.content {
        Some(Content::Path(p)) => std::fs::symlink_metadata(p)?.mtime_nsec(),
        _ => 0,
    };
    let upper_nsec = umeta.mtime_nsec();
    if lower_nsec == 0 && upper_nsec == 0 {
        return match (&lower.kind, &upper.kind) {
            (EntryKind::Symlink(a), EntryKind::Symlink(b)) => Ok(a == b),
            _ if upper.size == 0 => Ok(true),
            _ => same_content(lower, upper),
        };
    }
    Ok(lower_nsec == upper_nsec)
}

fn same_content(lower: &Entry, upper: &Entry) -> std::io::Result<bool> {
    let (Some(a), Some(b)) = (&lower.content, &upper.content) else {
        return Ok(lower.content.is_none() && upper.content.is_none());
    };
    let (mut a, mut b) = (a.open()?, b.open()?);
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = crate::engine::fs::read_full(&mut a, &mut ba)?;
        let nb = crate::engine::fs::read_full(&mut b, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Stub paths that must leave no trace: the mount targets, `/etc/hosts`,
/// `/etc/resolv.conf` and their parents, where the upper dir has them, the lower does not,
/// and they are empty (files of size 0, directories holding only other stubs). The
/// sandbox removes them itself; this catches a run whose clean-up did not happen.
fn stubs(
    upper: &Path,
    lower: &dyn FsView,
    targets: &[String],
) -> Result<BTreeSet<String>, RunError> {
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    let all = targets
        .iter()
        .map(String::as_str)
        .chain(["/etc/hosts", "/etc/resolv.conf"]);
    for t in all {
        let mut p = crate::engine::fs::clean_abs(t);
        while p != "/" {
            candidates.insert(p.clone());
            p = parent(&p).to_string();
        }
    }
    let mut ignored = BTreeSet::new();
    // Deepest first, so a directory sees which of its children are ignored.
    let mut ordered: Vec<String> = candidates.into_iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in ordered {
        let real = upper.join(p.trim_start_matches('/'));
        let Ok(meta) = std::fs::symlink_metadata(&real) else {
            continue;
        };
        let lower_has = match lower.lookup(&p) {
            Ok(e) => e.is_some(),
            Err(_) => false,
        };
        if lower_has || is_whiteout(&meta) {
            continue;
        }
        let empty = if meta.is_dir() {
            let names = std::fs::read_dir(&real).map_err(diff_err(&p))?;
            let mut all_ignored = true;
            for n in names {
                let n = n.map_err(diff_err(&p))?;
                let child = join(&p, &n.file_name().to_string_lossy());
                if !ignored.contains(&child) {
                    all_ignored = false;
                }
            }
            all_ignored
        } else {
            meta.file_type().is_file() && meta.len() == 0
        };
        if empty {
            ignored.insert(p);
        }
    }
    Ok(ignored)
}

/// Removes from `upper` the stubs [`diff_upper`] leaves out of the layer (mount targets,
/// `/etc/hosts`, `/etc/resolv.conf` that the lower did not have), deepest first, so that the
/// upper dir seen as an overlay layer shows what the layer holds. Call it after
/// [`diff_upper`] (whose result does not point at stubs).
pub fn strip_stubs(
    upper: &Path,
    lower: &dyn FsView,
    mount_targets: &[String],
) -> Result<(), RunError> {
    let ignored = stubs(upper, lower, mount_targets)?;
    let mut ordered: Vec<&String> = ignored.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in ordered {
        let real = upper.join(p.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&real).map_err(diff_err(p))?;
        if meta.is_dir() {
            std::fs::remove_dir(&real).map_err(diff_err(p))?;
        } else {
            std::fs::remove_file(&real).map_err(diff_err(p))?;
        }
    }
    Ok(())
}

/// The layer a RUN made: `upper` is the overlay upper dir ([`super::RunOutcome::upper`]),
/// `lower` the filesystem the RUN started from, `mount_targets` the targets of its mounts.
/// Regular files point into `upper` ([`Content::Path`]): write the layer before removing
/// the scratch dir.
pub fn diff_upper(
    upper: &Path,
    lower: &dyn FsView,
    mount_targets: &[String],
) -> Result<LayerSpec, RunError> {
    let meta = std::fs::symlink_metadata(upper).map_err(diff_err("/"))?;
    if !meta.is_dir() {
        return Err(RunError::UnsafeDiff {
            path: upper.display().to_string(),
            reason: "the upper dir is not a directory".into(),
        });
    }
    let ignored = stubs(upper, lower, mount_targets)?;
    let mut d = Differ {
        upper,
        lower,
        ignored,
        recorded: Vec::new(),
    };
    d.walk("/", false)?;
    d.finish()
}

/// The layer of entries recorded by another differ (each non-directory with other links
/// paired with its (dev, inode)), their parents read under `root`: the unprivileged
/// executor ([`super::inplace`], whose `root` is `/`) shares these conventions.
pub(crate) fn finish_layer(
    root: &Path,
    lower: &dyn FsView,
    recorded: Vec<(Entry, Option<(u64, u64)>)>,
) -> Result<LayerSpec, RunError> {
    Differ {
        upper: root,
        lower,
        ignored: BTreeSet::new(),
        recorded,
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layered_fs::LayeredFs;
    use std::os::unix::fs::PermissionsExt;

    fn set_times(p: &Path, sec: i64, nsec: i64) {
        let ts = rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        };
        let times = rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .expect("utimensat");
    }

    fn whiteout(p: &Path) -> bool {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .is_ok()
    }

    fn names(l: &LayerSpec) -> Vec<String> {
        l.entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Whiteout => format!("-{}", e.path),
                EntryKind::Hardlink(t) => format!("{}=>{t}", e.path),
                _ => e.path.clone(),
            })
            .collect()
    }

    #[test]
    fn overlay_upper_becomes_buildkit_layer() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: whiteouts and trusted xattrs need root");
            return;
        }
        let lower = tempfile::tempdir().expect("tempdir");
        let upper = tempfile::tempdir().expect("tempdir");
        let (l, u) = (lower.path(), upper.path());
        for d in ["etc", "d/sub", "keep"] {
            std::fs::create_dir_all(l.join(d)).expect("mkdir");
        }
        for f in [
            "etc/a",
            "etc/b",
            "d/one",
            "d/sub/two",
            "keep/same",
            "keep/touched",
        ] {
            std::fs::write(l.join(f), "content").expect("write");
            set_times(&l.join(f), 1000, 0);
        }
        // upper: /etc/a deleted, /etc copied up unchanged; /d removed and recreated
        // (opaque) with a new file; /keep/same copied up unchanged, /keep/touched with a new
        // mtime; a whiteout for a path the lower never had; hard links.
        std::fs::create_dir_all(u.join("etc")).expect("mkdir");
        if !whiteout(&u.join("etc/a")) {
            eprintln!("SKIP: cannot create whiteouts here");
            return;
        }
        assert!(whiteout(&u.join("etc/never")));
        std::fs::create_dir_all(u.join("d")).expect("mkdir");
        rustix::fs::lsetxattr(
            u.join("d"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .expect("xattr");
        std::fs::write(u.join("d/fresh"), "new").expect("write");
        std::fs::create_dir_all(u.join("keep")).expect("mkdir");
        std::fs::write(u.join("keep/same"), "content").expect("write");
        set_times(&u.join("keep/same"), 1000, 0);
        std::fs::write(u.join("keep/touched"), "content").expect("write");
        set_times(&u.join("keep/touched"), 1000, 5);
        std::fs::write(u.join("h1"), "x").expect("write");
        std::fs::hard_link(u.join("h1"), u.join("h2")).expect("link");
        std::fs::write(u.join("caps"), "bin").expect("write");
        rustix::fs::lsetxattr(
            u.join("caps"),
            "security.capability",
            b"\x01\x00\x00\x02",
            rustix::fs::XattrFlags::empty(),
        )
        .ok();
        std::fs::set_permissions(u.join("caps"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let view = LayeredFs::new(vec![l.to_path_buf()]);
        let layer = diff_upper(u, &view, &[]).expect("diff");
        assert_eq!(
            names(&layer),
            [
                "/caps",
                "/d",
                "/d/fresh",
                "-/d/one",
                "-/d/sub",
                "/etc",
                "-/etc/a",
                "/h1",
                "/h2=>/h1",
                "/keep",
                "/keep/touched",
            ]
        );
        let caps = layer
            .entries
            .iter()
            .find(|e| e.path == "/caps")
            .expect("caps");
        if let Some(v) = caps.xattrs.get(CAPABILITY) {
            assert_eq!(v, b"\x01\x00\x00\x02");
        }
    }
}
