//! The layer being built by one COPY/ADD: entries by path, destination resolution through
//! the image (symlinks resolved inside the root, seeing what this layer already wrote),
//! parent directories repeated or created.

use std::collections::BTreeMap;

use super::{io_err, Chmod, CopyError, CopyRequest, InlineSource};
use crate::dockerfile::ignore::Matcher;
use crate::engine::fs::{
    join, parent, resolve_in_root, Content, Entry, EntryKind, FsView, LayerSpec,
};

/// This layer's entries over the destination image.
struct Overlay<'a> {
    upper: &'a BTreeMap<String, Entry>,
    lower: &'a dyn FsView,
}

impl FsView for Overlay<'_> {
    fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>> {
        match self.upper.get(path) {
            Some(e) => Ok(Some(e.clone())),
            None => self.lower.lookup(path),
        }
    }

    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        let mut names = self.lower.read_dir(path)?;
        names.extend(
            self.upper
                .keys()
                .filter(|k| k.as_str() != "/" && parent(k) == path)
                .map(|k| super::base_name(k).to_string()),
        );
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Resolves a matched source path (symlinks followed inside the source root; a hard link
/// becomes its target's file). `None` when it does not exist.
pub(super) fn resolve_source(
    src: &dyn FsView,
    path: &str,
) -> Result<Option<(String, Entry)>, CopyError> {
    let real = resolve_in_root(src, path, true).map_err(io_err(path))?;
    let Some(entry) = src.lookup(&real).map_err(io_err(path))? else {
        // The root always exists, even in a view without entries (`FROM scratch`).
        if real == "/" {
            return Ok(Some((real, Entry::dir("/", 0o755, 0, 0))));
        }
        return Ok(None);
    };
    Ok(Some((real, materialize(src, entry)?)))
}

/// A hard link in a source view is copied as a full file (BuildKit does not keep links
/// to files of other layers).
fn materialize(src: &dyn FsView, entry: Entry) -> Result<Entry, CopyError> {
    if let EntryKind::Hardlink(target) = &entry.kind {
        if let Some(t) = src.lookup(target).map_err(io_err(target))? {
            return Ok(Entry {
                path: entry.path,
                ..t
            });
        }
    }
    Ok(entry)
}

pub(super) struct Builder<'a> {
    req: &'a CopyRequest,
    chmod: Option<Chmod>,
    lower: &'a dyn FsView,
    entries: BTreeMap<String, Entry>,
}

impl<'a> Builder<'a> {
    pub fn new(req: &'a CopyRequest, chmod: Option<Chmod>, lower: &'a dyn FsView) -> Self {
        Builder {
            req,
            chmod,
            lower,
            entries: BTreeMap::new(),
        }
    }

    fn overlay(&self) -> Overlay<'_> {
        Overlay {
            upper: &self.entries,
            lower: self.lower,
        }
    }

    fn lookup(&self, path: &str) -> Result<Option<Entry>, CopyError> {
        self.overlay().lookup(path).map_err(io_err(path))
    }

    fn resolve(&self, path: &str) -> Result<String, CopyError> {
        if self.req.link {
            return Ok(path.to_string());
        }
        resolve_in_root(&self.overlay(), path, true).map_err(io_err(path))
    }

    fn owner(&self) -> (u32, u32) {
        self.req.chown.unwrap_or((0, 0))
    }

    fn mtime(&self, own: i64) -> i64 {
        self.req.mtime_override.unwrap_or(own)
    }

    /// A directory this copy creates (missing parent or target): 0755 owned by the
    /// `--chown` user. `--chmod` does not apply to it: BuildKit creates these before the
    /// copy with a fixed mode (corpus `copy_link`: `COPY --link --chmod=700 a.txt /opt/`
    /// writes `/opt` 0755; `copy_chmod_symbolic`: `/m/symd` stays 0755).
    fn created_dir(&self, path: &str) -> Entry {
        let (uid, gid) = self.owner();
        let mut e = Entry::dir(path, 0o755, uid, gid);
        e.mtime = self.mtime(0);
        e
    }

    /// Puts every ancestor of `path` (not the root) into the layer: unchanged when it
    /// exists, created otherwise.
    fn ensure_parents(&mut self, path: &str) -> Result<(), CopyError> {
        let mut ancestors = Vec::new();
        let mut p = parent(path);
        while p != "/" {
            ancestors.push(p.to_string());
            p = parent(p);
        }
        for a in ancestors.into_iter().rev() {
            self.ensure_dir(&a, path)?;
        }
        Ok(())
    }

    fn ensure_dir(&mut self, dir: &str, for_path: &str) -> Result<(), CopyError> {
        if self.entries.get(dir).is_some_and(Entry::is_dir) {
            return Ok(());
        }
        let existing = if self.entries.contains_key(dir) {
            self.entries.get(dir).cloned()
        } else {
            self.lower.lookup(dir).map_err(io_err(dir))?
        };
        let entry = match existing {
            Some(mut e) if e.is_dir() => {
                e.kind = EntryKind::Dir;
                e.content = None;
                e
            }
            Some(_) => {
                return Err(CopyError::NotADirectory {
                    path: for_path.to_string(),
                    parent: dir.to_string(),
                })
            }
            None => self.created_dir(dir),
        };
        self.entries.insert(dir.to_string(), entry);
        Ok(())
    }

    /// Resolves a directory target (a directory source's contents or an archive go into
    /// it) and puts it and its parents into the layer.
    pub fn dir_target(&mut self, target: &str) -> Result<String, CopyError> {
        let d = self.resolve(target)?;
        self.ensure_parents(&d)?;
        if d != "/" {
            match self.lookup(&d)? {
                Some(e) if e.is_dir() => self.ensure_dir(&d, &d)?,
                // BuildKit does not replace a file with a directory here.
                Some(_) => return Err(CopyError::CopyToNonDir { path: d }),
                None => {
                    let e = self.created_dir(&d);
                    self.entries.insert(d.clone(), e);
                }
            }
        }
        Ok(d)
    }

    /// Resolves where a non-directory source lands: inside `target` when `named` (the
    /// destination ends with `/`) or when `target` is an existing directory, else at
    /// `target` itself (following a symlink there, inside the image).
    pub fn file_target(
        &mut self,
        target: &str,
        name: &str,
        named: bool,
    ) -> Result<String, CopyError> {
        let t = if named {
            let d = self.resolve(target)?;
            self.resolve(&join(&d, name))?
        } else {
            let r = self.resolve(target)?;
            let is_dir = !self.req.link && self.lookup(&r)?.is_some_and(|e| e.is_dir());
            if is_dir {
                self.resolve(&join(&r, name))?
            } else {
                r
            }
        };
        // BuildKit does not replace a directory with a file.
        if self.lookup(&t)?.is_some_and(|e| e.is_dir()) {
            return Err(CopyError::ReplaceDirWithFile { path: t });
        }
        self.ensure_parents(&t)?;
        Ok(t)
    }

    /// The layer entry for a source entry copied to `path`.
    fn convert(&self, e: &Entry, path: &str) -> Entry {
        let (uid, gid) = match self.req.chown {
            Some(o) => o,
            None if self.req.from_context => (0, 0),
            None => (e.uid, e.gid),
        };
        let mut mode = e.mode & 0o7777;
        if let (Some(c), false) = (&self.chmod, matches!(e.kind, EntryKind::Symlink(_))) {
            mode = c.apply(mode, e.is_dir());
        }
        Entry {
            path: path.to_string(),
            kind: if e.is_dir() {
                EntryKind::Dir
            } else {
                e.kind.clone()
            },
            mode,
            uid,
            gid,
            mtime: self.mtime(e.mtime),
            size: if e.kind == EntryKind::File { e.size } else { 0 },
            content: if e.kind == EntryKind::File {
                e.content.clone()
            } else {
                None
            },
            xattrs: e.xattrs.clone(),
        }
    }

    pub fn put_source(
        &mut self,
        _src: &dyn FsView,
        e: &Entry,
        path: &str,
    ) -> Result<(), CopyError> {
        let entry = self.convert(e, path);
        self.entries.insert(path.to_string(), entry);
        Ok(())
    }

    pub fn put_inline(&mut self, s: &InlineSource, path: &str) -> Result<(), CopyError> {
        let (uid, gid) = self.owner();
        let mode = match &self.chmod {
            Some(c) => c.apply(s.mode, false),
            None => s.mode,
        };
        let entry = Entry {
            path: path.to_string(),
            kind: EntryKind::File,
            mode,
            uid,
            gid,
            mtime: self.mtime(s.mtime),
            size: s.content.len() as u64,
            content: Some(Content::Bytes(s.content.clone())),
            xattrs: BTreeMap::new(),
        };
        self.entries.insert(path.to_string(), entry);
        Ok(())
    }

    /// Copies the children of the source directory `dir` into `to` (already in the
    /// layer), recursively; symlinks are copied as symlinks. `rel` is `dir` relative to
    /// the copied source, for `--exclude`.
    pub fn copy_tree(
        &mut self,
        src: &dyn FsView,
        dir: &str,
        to: &str,
        rel: &str,
        exclude: &Matcher,
    ) -> Result<(), CopyError> {
        for name in src.read_dir(dir).map_err(io_err(dir))? {
            let child = join(dir, &name);
            let Some(e) = src.lookup(&child).map_err(io_err(&child))? else {
                continue;
            };
            let e = materialize(src, e)?;
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if !exclude.is_empty() && exclude.is_excluded(&child_rel, e.is_dir()) {
                continue;
            }
            let target = join(to, &name);
            // Below the destination nothing is followed or replaced across kinds: a
            // directory meets only a directory (an image's symlink is not one), a file
            // never replaces a directory (BuildKit's fsutil copy).
            if let Some(existing) = self.lookup(&target)? {
                match (e.is_dir(), existing.is_dir()) {
                    (true, false) => return Err(CopyError::CopyToNonDir { path: target }),
                    (false, true) => return Err(CopyError::ReplaceDirWithFile { path: target }),
                    _ => {}
                }
            }
            let entry = self.convert(&e, &target);
            self.entries.insert(target.clone(), entry);
            if e.is_dir() {
                self.copy_tree(src, &child, &target, &child_rel, exclude)?;
            }
        }
        Ok(())
    }

    /// Puts the members of an archive (paths relative to its root) below `to`. Owners
    /// are the archive's unless `--chown`; `--chmod` does not apply.
    pub fn extract(&mut self, to: &str, members: Vec<Entry>) -> Result<(), CopyError> {
        let under = |p: &str| -> String {
            if p == "/" {
                to.to_string()
            } else {
                join(to, p.trim_start_matches('/'))
            }
        };
        // Where each member landed, for hard links to it.
        let mut placed: std::collections::HashMap<String, String> = Default::default();
        for mut m in members {
            let raw = under(&m.path);
            let is_root = raw == to;
            // Existing symlinks among the parents resolve inside the image, as when the
            // archive is unpacked into the root filesystem.
            let path = if is_root || raw == "/" {
                raw
            } else {
                let dir = self.resolve(parent(&raw))?;
                join(&dir, super::base_name(&raw))
            };
            placed.insert(m.path.clone(), path.clone());
            // The archive's own root (`./`) leaves the destination directory as it is
            // (BuildKit's untar skips "." when the destination exists, and it always does).
            if is_root && m.is_dir() {
                continue;
            }
            if let EntryKind::Hardlink(t) = &m.kind {
                let target = placed.get(t).cloned().unwrap_or_else(|| under(t));
                m.kind = EntryKind::Hardlink(target);
            }
            if let Some((uid, gid)) = self.req.chown {
                m.uid = uid;
                m.gid = gid;
            }
            // A symlink unpacked on Linux has mode 0777 whatever the archive says.
            if matches!(m.kind, EntryKind::Symlink(_)) {
                m.mode = 0o777;
            }
            m.mtime = self.mtime(m.mtime);
            if path == "/" {
                continue;
            }
            self.ensure_parents(&path)?;
            m.path = path.clone();
            self.entries.insert(path, m);
        }
        Ok(())
    }

    pub fn finish(self) -> LayerSpec {
        let mut spec = LayerSpec {
            entries: self
                .entries
                .into_values()
                .filter(|e| e.path != "/")
                .collect(),
        };
        spec.sort();
        spec
    }
}
