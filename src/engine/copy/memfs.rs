//! An in-memory [`FsView`]: a map of entries. Holds a base image read from a layer tar in
//! tests, heredoc/download sources, and applies [`LayerSpec`]s the way a layer chain does.

use std::collections::BTreeMap;

use crate::engine::fs::{parent, Entry, EntryKind, FsView, LayerSpec};

/// A root filesystem held in memory; the root directory always exists.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    entries: BTreeMap<String, Entry>,
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Adds or replaces an entry (its parents are not created).
    pub fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.path.clone(), entry);
    }

    /// All entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    fn remove_tree(&mut self, path: &str) {
        let prefix = format!("{path}/");
        self.entries
            .retain(|k, _| k != path && !k.starts_with(&prefix));
    }

    /// Applies a layer as an overlay would: whiteouts delete, opaque directories hide
    /// what is below, a non-directory replaces a directory, hard links copy their target.
    pub fn apply(&mut self, layer: &LayerSpec) {
        for e in &layer.entries {
            match &e.kind {
                EntryKind::Whiteout => self.remove_tree(&e.path),
                EntryKind::OpaqueDir => {
                    self.remove_tree(&e.path);
                    let mut d = e.clone();
                    d.kind = EntryKind::Dir;
                    self.insert(d);
                }
                EntryKind::Hardlink(target) => {
                    self.remove_tree(&e.path);
                    let mut copy = layer
                        .entries
                        .iter()
                        .find(|x| &x.path == target)
                        .or_else(|| self.entries.get(target))
                        .cloned()
                        .unwrap_or_else(|| e.clone());
                    copy.path = e.path.clone();
                    self.insert(copy);
                }
                EntryKind::Dir => {
                    if !self.entries.get(&e.path).is_some_and(Entry::is_dir) {
                        self.remove_tree(&e.path);
                    }
                    self.insert(e.clone());
                }
                _ => {
                    self.remove_tree(&e.path);
                    self.insert(e.clone());
                }
            }
        }
    }
}

impl FsView for MemFs {
    fn lookup(&self, path: &str) -> std::io::Result<Option<Entry>> {
        if path == "/" {
            return Ok(Some(
                self.entries
                    .get("/")
                    .cloned()
                    .unwrap_or_else(|| Entry::dir("/", 0o755, 0, 0)),
            ));
        }
        Ok(self.entries.get(path).cloned())
    }

    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let mut names: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.as_str() != "/" && parent(k) == path)
            .map(|(k, _)| k[prefix.len()..].to_string())
            .collect();
        names.sort();
        Ok(names)
    }
}
