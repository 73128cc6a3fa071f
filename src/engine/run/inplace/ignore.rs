//! What the unprivileged executor never touches in `/`: every mount point of this process
//! but `/` itself (with everything below it), `/proc`, `/sys`, `/dev`, the container
//! runtime's marker files, and kiln's own paths (its binary, the store, contexts,
//! outputs...). The strict ancestors of those paths are *scaffolding*: they must stay
//! directories, so the sync never removes them, only what else they hold.
//!
//! Paths are in-root paths (`/a/b`, see [`crate::engine::fs`]): the executor's root is `/`
//! in a build, a temp dir in the unit tests.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::engine::fs::{clean_abs, parent};

/// Always ignored, whether or not they are mount points here.
const FIXED: &[&str] = &["/proc", "/sys", "/dev", "/.dockerenv", "/run/.containerenv"];

/// Never a RUN mount target: kernel filesystems the command needs as they are.
const NO_TARGET: &[&str] = &["/proc", "/sys"];

/// The set of ignored subtrees, their scaffolding, and kiln's own (protected) paths.
#[derive(Debug, Clone, Default)]
pub(crate) struct IgnoreList {
    roots: HashSet<String>,
    mount_points: HashSet<String>,
    scaffold: HashSet<String>,
    protected: HashSet<String>,
}

impl IgnoreList {
    /// From mount points (in-root, `/` itself is left out) and kiln's own paths.
    pub fn new(mount_points: &[String], protected: &[String]) -> IgnoreList {
        let mut list = IgnoreList::default();
        for m in mount_points {
            let m = clean_abs(m);
            if m != "/" {
                list.mount_points.insert(m.clone());
                list.add_root(m);
            }
        }
        for f in FIXED {
            list.add_root((*f).to_string());
        }
        let fixed = NO_TARGET.iter().map(|s| (*s).to_string());
        for p in protected.iter().cloned().chain(fixed) {
            let p = clean_abs(&p);
            if p != "/" {
                list.protected.insert(p.clone());
                list.add_root(p);
            }
        }
        list
    }

    /// The ignore list of the running system: `/proc/self/mountinfo`'s mount points and
    /// kiln's paths (host paths, resolved through symlinks).
    pub fn current(protected: &[PathBuf]) -> std::io::Result<IgnoreList> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")?;
        let mounts = parse_mountinfo(&text);
        let own: Vec<String> = protected.iter().map(|p| real_path(p)).collect();
        Ok(IgnoreList::new(&mounts, &own))
    }

    fn add_root(&mut self, root: String) {
        let mut p = parent(&root).to_string();
        while p != "/" {
            self.scaffold.insert(p.clone());
            p = parent(&p).to_string();
        }
        self.roots.insert(root);
    }

    /// Whether `path` or one of its ancestors is ignored.
    pub fn is_ignored(&self, path: &str) -> bool {
        any_ancestor(path, |p| self.roots.contains(p))
    }

    /// Whether `path` is a strict ancestor of an ignored path (it must stay a directory).
    pub fn is_scaffold(&self, path: &str) -> bool {
        self.scaffold.contains(path)
    }

    /// Whether `path` is inside kiln's own paths or a kernel filesystem (no RUN mount
    /// may be placed there).
    pub fn is_protected(&self, path: &str) -> bool {
        any_ancestor(path, |p| self.protected.contains(p))
    }

    /// Whether `path` is itself a mount point (it cannot be renamed or removed).
    pub fn is_mount_point(&self, path: &str) -> bool {
        self.mount_points.contains(path)
    }
}

/// Calls `f` on `path` and each of its ancestors but `/`; true when one matches.
fn any_ancestor(path: &str, f: impl Fn(&str) -> bool) -> bool {
    let mut p = path;
    while p != "/" && !p.is_empty() {
        if f(p) {
            return true;
        }
        p = parent(p);
    }
    false
}

/// The mount points (field 5) of a `/proc/self/mountinfo` text, unescaped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// `\040`-style octal escapes of mountinfo (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A host path as the walk of `/` meets it: absolute, symlinks of its existing part
/// resolved (the missing rest appended as written).
pub(crate) fn real_path(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut full = c;
            for r in rest.iter().rev() {
                full.push(r);
            }
            return clean_abs(&full.to_string_lossy());
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return clean_abs(&abs.to_string_lossy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_points_are_unescaped() {
        let text = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /dev rw - tmpfs tmpfs rw\n\
                    31 22 8:1 /x /my\\040dir rw - ext4 /dev/sda1 rw\n";
        assert_eq!(parse_mountinfo(text), ["/", "/dev", "/my dir"]);
    }

    #[test]
    fn roots_scaffolding_and_protection() {
        let l = IgnoreList::new(
            &["/".into(), "/etc/hosts".into(), "/ctx".into()],
            &["/root/.cache/kiln".into()],
        );
        assert!(l.is_ignored("/etc/hosts"));
        assert!(!l.is_ignored("/etc/hostname"));
        assert!(l.is_ignored("/proc/1/cgroup"));
        assert!(l.is_ignored("/root/.cache/kiln/blobs"));
        assert!(!l.is_ignored("/root/.cache"));
        assert!(l.is_scaffold("/root/.cache") && l.is_scaffold("/root") && l.is_scaffold("/etc"));
        assert!(!l.is_scaffold("/ctx") && !l.is_scaffold("/"));
        assert!(l.is_protected("/root/.cache/kiln/tmp") && l.is_protected("/sys/x"));
        assert!(!l.is_protected("/dev/pipes/x") && !l.is_protected("/ctx"));
        assert!(l.is_mount_point("/ctx") && !l.is_mount_point("/ctx/a"));
    }

    #[test]
    fn real_path_resolves_the_existing_part() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("real")).expect("mkdir");
        std::os::unix::fs::symlink("real", d.path().join("link")).expect("symlink");
        let canon = std::fs::canonicalize(d.path()).expect("canon");
        assert_eq!(
            real_path(&d.path().join("link/missing/file")),
            format!("{}/real/missing/file", canon.display())
        );
    }
}
