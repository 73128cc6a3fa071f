//! `RUN --mount` without mount namespaces: what would be mounted is put in place in the
//! root before the command and taken away after it, and the targets never reach the
//! layer ([`super::layer`]). What was at a target before (the stage's own files) is
//! moved aside and put back, and the directories created only to hold a target are
//! removed again (when still empty), their parents' times restored, as the sandbox does.
//!
//! | type | here | differs from a real mount |
//! |---|---|---|
//! | `bind` | a copy of the source | `readonly` is not enforced (writes are discarded, as with `rw`); big sources cost a copy |
//! | `cache` | the cache directory itself, renamed into place and back (a symlink to it when the store is on another filesystem) | a crash during the RUN loses that cache |
//! | `tmpfs` | an empty directory (mode 1777) | `size` is not enforced; the data lives on the root's filesystem |
//! | `secret` | a file with the mode and owner asked for, removed afterwards | the secret sits on the root's filesystem while the RUN runs |
//! | `ssh` | a symlink to the agent's socket | the socket keeps the agent's mode and owner |

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Mode, Uid};

use super::error::InplaceError;
use super::ignore::IgnoreList;
use super::sync::{remove_any, set_times};
use crate::engine::run::paths::{mkdir_all_in, record_stubs, resolve_in};
use crate::engine::run::MountSpec;

/// How a target was put in place.
#[derive(Debug)]
enum Placed {
    /// A copy, a tmpfs stand-in or a secret file: removed afterwards.
    Owned,
    /// A cache directory renamed from `source`: renamed back.
    Renamed { source: PathBuf },
    /// A symlink (cache on another filesystem, ssh socket): removed.
    Link,
}

#[derive(Debug)]
struct Item {
    real: PathBuf,
    placed: Placed,
    /// Where the stage's own entry at the target waits meanwhile.
    aside: Option<PathBuf>,
}

/// A directory with its (atime, mtime), each as (seconds, nanoseconds).
type DirTimes = (PathBuf, (i64, i64), (i64, i64));

/// The emulated mounts of one RUN; [`MountSet::teardown`] (or dropping it) takes them
/// away.
#[derive(Debug)]
pub(crate) struct MountSet {
    root: PathBuf,
    items: Vec<Item>,
    stubs: Vec<PathBuf>,
    /// Existing ancestor directories of the targets with their times.
    times: Vec<DirTimes>,
    /// In-root paths of the targets (resolved), for the layer to leave out.
    pub targets: Vec<String>,
    done: bool,
}

fn mount_err(target: &str, e: impl std::fmt::Display) -> InplaceError {
    InplaceError::Mount {
        target: target.to_string(),
        reason: e.to_string(),
    }
}

impl MountSet {
    /// Puts every mount of `mounts` in place under `root`; `scratch` (the RUN's own
    /// directory, never in the layer) holds what is moved aside. On an error, what was
    /// already done is undone.
    pub fn setup(
        root: &Path,
        mounts: &[MountSpec],
        ignore: &IgnoreList,
        scratch: &Path,
    ) -> Result<MountSet, InplaceError> {
        let mut set = MountSet {
            root: root.to_path_buf(),
            items: Vec::new(),
            stubs: Vec::new(),
            times: Vec::new(),
            targets: Vec::new(),
            done: false,
        };
        let mut ordered: Vec<&MountSpec> = mounts.iter().filter(|m| m.target().is_some()).collect();
        ordered.sort_by_key(|m| m.target().map_or(0, |t| t.split('/').count()));
        for (i, m) in ordered.into_iter().enumerate() {
            if let Err(e) = set.place(i, m, ignore, scratch) {
                set.teardown_quietly();
                return Err(e);
            }
        }
        Ok(set)
    }

    fn place(
        &mut self,
        i: usize,
        m: &MountSpec,
        ignore: &IgnoreList,
        scratch: &Path,
    ) -> Result<(), InplaceError> {
        let Some(target) = m.target() else {
            return Ok(());
        };
        let root = self.root.clone();
        let real = resolve_in(&root, target).map_err(|e| mount_err(target, e))?;
        let inroot = match real.strip_prefix(&root) {
            Ok(r) => format!("/{}", r.display()),
            Err(_) => return Err(mount_err(target, "resolves outside the root")),
        };
        let inroot = crate::engine::fs::clean_abs(&inroot);
        if inroot == "/" || ignore.is_protected(&inroot) || ignore.is_mount_point(&inroot) {
            return Err(mount_err(
                target,
                format!(
                    "{inroot} is a path kiln or the container needs as it is (its store, \
                     context, outputs, a mount point, /proc or /sys)"
                ),
            ));
        }
        self.remember_times(&real);
        record_stubs(&root, target, &mut self.stubs);
        let aside = match std::fs::symlink_metadata(&real) {
            Ok(_) => Some(
                self.move_aside(&real, i, scratch)
                    .map_err(|e| mount_err(target, e))?,
            ),
            Err(_) => None,
        };
        self.targets.push(inroot.clone());
        let parent = crate::engine::fs::parent(&inroot).to_string();
        mkdir_all_in(&root, &parent, 0o755, None).map_err(|e| mount_err(target, e))?;
        let err = |e: io::Error| mount_err(target, e);
        let placed = match m {
            MountSpec::Bind { source, .. } => {
                copy_tree(source, &real).map_err(err)?;
                Placed::Owned
            }
            MountSpec::Cache { source, .. } => match std::fs::rename(source, &real) {
                Ok(()) => Placed::Renamed {
                    source: source.clone(),
                },
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                    std::os::unix::fs::symlink(source, &real).map_err(err)?;
                    Placed::Link
                }
                Err(e) => return Err(err(e)),
            },
            MountSpec::Tmpfs { .. } => {
                std::fs::create_dir(&real).map_err(err)?;
                rustix::fs::chmod(&real, Mode::from_raw_mode(0o1777)).map_err(|e| err(e.into()))?;
                Placed::Owned
            }
            MountSpec::Secret {
                source,
                mode,
                uid,
                gid,
                ..
            } => {
                std::fs::copy(source, &real).map_err(err)?;
                rustix::fs::chown(&real, Some(Uid::from_raw(*uid)), Some(Gid::from_raw(*gid)))
                    .map_err(|e| err(e.into()))?;
                rustix::fs::chmod(&real, Mode::from_raw_mode(*mode & 0o7777))
                    .map_err(|e| err(e.into()))?;
                Placed::Owned
            }
            MountSpec::Ssh { socket, .. } => {
                std::os::unix::fs::symlink(socket, &real).map_err(err)?;
                Placed::Link
            }
            MountSpec::SecretEnv { .. } => return Ok(()),
        };
        self.items.push(Item {
            real,
            placed,
            aside,
        });
        Ok(())
    }

    /// Keeps the times of the existing directories on the way to `real`.
    fn remember_times(&mut self, real: &Path) {
        let mut cur = real.parent();
        while let Some(dir) = cur {
            if !dir.starts_with(&self.root) {
                break;
            }
            if let Ok(m) = std::fs::symlink_metadata(dir) {
                if m.is_dir() && !self.times.iter().any(|(p, _, _)| p == dir) {
                    self.times.push((
                        dir.to_path_buf(),
                        (m.atime(), m.atime_nsec()),
                        (m.mtime(), m.mtime_nsec()),
                    ));
                }
            }
            if dir == self.root {
                break;
            }
            cur = dir.parent();
        }
    }

    /// Moves the stage's entry at `real` into the scratch dir (or, across filesystems,
    /// next to itself).
    fn move_aside(&self, real: &Path, i: usize, scratch: &Path) -> io::Result<PathBuf> {
        let away = scratch.join(format!("aside-{i}"));
        match std::fs::rename(real, &away) {
            Ok(()) => Ok(away),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let name = real.file_name().map(|n| n.to_string_lossy().into_owned());
                let away =
                    real.with_file_name(format!(".kiln-aside-{i}-{}", name.unwrap_or_default()));
                std::fs::rename(real, &away)?;
                Ok(away)
            }
            Err(e) => Err(e),
        }
    }

    /// Takes everything away again; the first error is returned after doing the rest
    /// (a secret must go even when something else fails).
    pub fn teardown(&mut self) -> Result<(), InplaceError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut first: Option<InplaceError> = None;
        let mut keep = |r: io::Result<()>, what: &Path| {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(mount_err(&what.display().to_string(), e));
                }
            }
        };
        for item in self.items.drain(..).rev() {
            let r = match &item.placed {
                Placed::Owned | Placed::Link => remove_any(&item.real),
                Placed::Renamed { source } => put_cache_back(&item.real, source),
            };
            keep(r, &item.real);
            if let Some(aside) = &item.aside {
                keep(std::fs::rename(aside, &item.real), &item.real);
            }
        }
        let mut stubs = std::mem::take(&mut self.stubs);
        stubs.sort_by_key(|s| std::cmp::Reverse(s.components().count()));
        stubs.dedup();
        for stub in stubs {
            remove_if_empty(&stub);
        }
        for (dir, atime, mtime) in &self.times {
            let _ = set_atime_mtime(dir, *atime, *mtime);
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn teardown_quietly(&mut self) {
        let _ = self.teardown();
    }
}

impl Drop for MountSet {
    fn drop(&mut self) {
        self.teardown_quietly();
    }
}

/// The cache directory goes back to the store (an empty one if the RUN removed it; the
/// next RUN makes it again).
fn put_cache_back(real: &Path, source: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(real) {
        Ok(m) if m.is_dir() => std::fs::rename(real, source),
        Ok(_) => std::fs::remove_file(real),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_if_empty(p: &Path) {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return;
    };
    if m.is_dir() {
        let _ = std::fs::remove_dir(p);
    } else if m.is_file() && m.len() == 0 {
        let _ = std::fs::remove_file(p);
    }
}

fn set_atime_mtime(dir: &Path, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let ts = |(s, n): (i64, i64)| rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: n as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dir,
        &rustix::fs::Timestamps {
            last_access: ts(atime),
            last_modification: ts(mtime),
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Copies a file or directory tree (symlinks as symlinks; mode, owner and mtime kept).
pub(crate) fn copy_tree(src: &Path, dest: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    let ft = m.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dest)?;
        for item in std::fs::read_dir(src)? {
            let item = item?;
            copy_tree(&item.path(), &dest.join(item.file_name()))?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dest)?;
    } else if ft.is_file() {
        std::fs::copy(src, dest)?;
    } else {
        // Sockets, fifos, devices in a mount source are left out.
        return Ok(());
    }
    let _ = rustix::fs::chownat(
        rustix::fs::CWD,
        dest,
        Some(Uid::from_raw(m.uid())),
        Some(Gid::from_raw(m.gid())),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
    if !ft.is_symlink() {
        rustix::fs::chmod(dest, Mode::from_raw_mode(m.mode() & 0o7777))?;
    }
    set_times(dest, m.mtime(), m.mtime_nsec(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_come_and_go_leaving_the_stage_as_it_was() {
        let d = tempfile::tempdir().expect("tempdir");
        let scratch = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::create_dir_all(root.join("cache")).expect("mkdir");
        std::fs::write(root.join("cache/stage-file"), "stage").expect("write");
        let src = scratch.path().join("src");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::write(src.join("f"), "ctx").expect("write");
        let secret = scratch.path().join("secret");
        std::fs::write(&secret, "s3cret").expect("write");
        let cache = scratch.path().join("cachedir");
        std::fs::create_dir(&cache).expect("mkdir");
        let mounts = vec![
            MountSpec::Bind {
                source: src,
                target: "/src".into(),
                readonly: true,
            },
            MountSpec::Secret {
                source: secret,
                target: "/run/secrets/tok".into(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
            MountSpec::Cache {
                source: cache.clone(),
                target: "/cache".into(),
                readonly: false,
            },
            MountSpec::Tmpfs {
                target: "/tmp/t".into(),
                size: None,
            },
        ];
        let ignore = IgnoreList::new(&[], &[]);
        let mut set = MountSet::setup(root, &mounts, &ignore, scratch.path()).expect("setup");
        assert_eq!(
            std::fs::read_to_string(root.join("src/f")).expect("read"),
            "ctx"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("run/secrets/tok")).expect("read"),
            "s3cret"
        );
        assert!(!root.join("cache/stage-file").exists());
        std::fs::write(root.join("cache/kept"), "x").expect("write into the cache");
        assert!(root.join("tmp/t").is_dir());
        set.teardown().expect("teardown");
        assert!(!root.join("src").exists());
        assert!(!root.join("run/secrets").exists() && root.join("run").is_dir());
        assert!(!root.join("tmp").exists());
        assert!(root.join("cache/stage-file").exists());
        assert!(
            cache.join("kept").exists(),
            "the cache keeps what the RUN wrote"
        );
        let mut t = set.targets.clone();
        t.sort();
        assert_eq!(t, ["/cache", "/run/secrets/tok", "/src", "/tmp/t"]);
    }

    #[test]
    fn kiln_paths_are_no_targets() {
        let d = tempfile::tempdir().expect("tempdir");
        let ignore = IgnoreList::new(&[], &["/store".into()]);
        let m = [MountSpec::Tmpfs {
            target: "/store/x".into(),
            size: None,
        }];
        let err = MountSet::setup(d.path(), &m, &ignore, d.path()).expect_err("refused");
        assert!(err.to_string().contains("/store/x"), "{err}");
    }
}
