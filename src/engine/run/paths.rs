//! Paths inside the sandbox root on the real filesystem: resolution that never leaves
//! the root, mount stubs, directories and file mount points.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Mode, Uid};

/// Resolves `path` inside `root` on the real filesystem, following symlinks (the last
/// component too) without ever leaving `root`: `..` and absolute link targets stop at it.
pub(crate) fn resolve_in(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .rev()
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&cur);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&candidate)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    cur.clear();
                }
                for t in target.split('/').filter(|s| !s.is_empty()).rev() {
                    pending.push(t.to_string());
                }
            }
            _ => cur.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    Ok(out)
}

/// Records the paths of `target` (resolved in `root`) that do not exist yet, the target
/// first, then its missing parents.
pub(crate) fn record_stubs(root: &Path, target: &str, stubs: &mut Vec<PathBuf>) {
    let Ok(mut real) = resolve_in(root, target) else {
        return;
    };
    while real != root {
        match std::fs::symlink_metadata(&real) {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                stubs.push(real.clone());
            }
            _ => break,
        }
        match real.parent() {
            Some(p) if p != root && p.starts_with(root) => real = p.to_path_buf(),
            _ => break,
        }
    }
}

/// Creates the missing directories of `path` (resolved in `root`) with `mode`, owned by
/// `owner`; gives the real path.
pub(crate) fn mkdir_all_in(
    root: &Path,
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<PathBuf> {
    let real = resolve_in(root, path)?;
    let rel = real.strip_prefix(root).map_err(io::Error::other)?;
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur)?;
                rustix::fs::chmod(&cur, Mode::from_raw_mode(mode))?;
                if let Some((uid, gid)) = owner {
                    rustix::fs::chown(&cur, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(real)
}

/// A mount point for a file: its parents created, an empty file if missing.
pub(crate) fn file_mountpoint(root: &Path, path: &str) -> io::Result<PathBuf> {
    let real = resolve_in(root, path)?;
    let parent_rel = real
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .map(|p| format!("/{}", p.display()))
        .unwrap_or_else(|| "/".into());
    mkdir_all_in(root, &parent_rel, 0o755, None)?;
    match std::fs::symlink_metadata(&real) {
        Ok(m) if m.is_dir() => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Ok(_) => Ok(real),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&real)?;
            Ok(real)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn resolve_stays_inside() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::create_dir_all(root.join("var")).expect("mkdir");
        std::os::unix::fs::symlink("/run", root.join("var/run")).expect("symlink");
        std::os::unix::fs::symlink("../../../../../etc", root.join("escape")).expect("symlink");
        std::os::unix::fs::symlink("loop", root.join("loop")).expect("symlink");
        assert_eq!(resolve_in(root, "/var/run/x").unwrap(), root.join("run/x"));
        assert_eq!(
            resolve_in(root, "/escape/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in(root, "/../../x").unwrap(), root.join("x"));
        assert!(resolve_in(root, "/loop/x").is_err());
    }

    #[test]
    fn stubs_are_the_missing_paths() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        let mut stubs = Vec::new();
        record_stubs(root, "/run/secrets/id", &mut stubs);
        record_stubs(root, "/run", &mut stubs);
        assert_eq!(
            stubs,
            vec![root.join("run/secrets/id"), root.join("run/secrets")]
        );
        let p = mkdir_all_in(root, "/a/b", 0o750, None).expect("mkdir");
        assert!(p.is_dir());
        let m = std::fs::metadata(root.join("a")).expect("meta");
        assert_eq!(m.mode() & 0o7777, 0o750);
    }
}
