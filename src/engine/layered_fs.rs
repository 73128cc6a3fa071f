//! A read-only [`FsView`] over a chain of extracted layer directories in overlayfs format
//! (what [`crate::engine::layer::extract_layer`] writes), with overlay semantics: a 0/0
//! character device hides the path below it, an opaque directory hides lower children.
//! A layer can also be given by its [`LayerSpec`] (a layer this build just wrote), so
//! that looking at a stage does not need the layer unpacked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::fs::{clean_abs, parent, Content, Entry, EntryKind, FsView, LayerSpec};

/// Overlay layers, the top layer first.
#[derive(Debug, Clone, Default)]
pub struct LayeredFs {
    layers: Vec<ViewLayer>,
}

/// One layer of a [`LayeredFs`].
#[derive(Debug, Clone)]
pub enum ViewLayer {
    /// An extracted layer directory (overlayfs format).
    Dir(PathBuf),
    /// A layer's entries, as its tar has them.
    Spec(Arc<SpecLayer>),
}

/// A layer's entries by path, shown as extracting its tar would show them: times clamped
/// to the build's `SOURCE_DATE_EPOCH`, hard links as the file they link to.
#[derive(Debug)]
pub struct SpecLayer {
    entries: HashMap<String, Entry>,
    /// Names of the children of each directory that has entries below it.
    children: HashMap<String, BTreeSet<String>>,
}

impl SpecLayer {
    pub fn new(spec: &LayerSpec, epoch: Option<i64>) -> SpecLayer {
        let mut entries = HashMap::new();
        let mut children: HashMap<String, BTreeSet<String>> = HashMap::new();
        for e in &spec.entries {
            let mut e = e.clone();
            if let Some(t) = epoch {
                e.mtime = e.mtime.min(t);
            }
            let mut p = e.path.clone();
            while p != "/" {
                let up = parent(&p).to_string();
                let name = p[up.len()..].trim_start_matches('/').to_string();
                let fresh = children.entry(up.clone()).or_default().insert(name);
                if !fresh {
                    break;
                }
                p = up;
            }
            entries.insert(e.path.clone(), e);
        }
        SpecLayer { entries, children }
    }

    /// The entry at `path` as a file system shows it (a hard link as its target's inode).
    fn shown(&self, path: &str) -> Option<Entry> {
        let e = self.entries.get(path)?;
        if let EntryKind::Hardlink(target) = &e.kind {
            let t = self.entries.get(target)?;
            return Some(Entry {
                path: path.to_string(),
                ..t.clone()
            });
        }
        let mut shown = e.clone();
        match shown.kind {
            // On disk: a directory with the opaque xattr; a symlink's mode is always 0777.
            EntryKind::OpaqueDir => shown.kind = EntryKind::Dir,
            EntryKind::Symlink(_) => shown.mode = 0o777,
            _ => {}
        }
        Some(shown)
    }

    fn probe(&self, path: &str) -> InLayer {
        let mut opaque_above = false;
        let mut prefix = String::new();
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        if comps.is_empty() {
            // The root: whatever a layer says of it, the lowest layer's root is shown.
            return InLayer::Absent;
        }
        for (i, comp) in comps.iter().enumerate() {
            prefix.push('/');
            prefix.push_str(comp);
            let last = i + 1 == comps.len();
            let Some(e) = self.entries.get(&prefix) else {
                if last {
                    return if opaque_above {
                        InLayer::Hidden
                    } else {
                        InLayer::Absent
                    };
                }
                continue;
            };
            if e.kind == EntryKind::Whiteout {
                return if last {
                    InLayer::Whiteout
                } else {
                    InLayer::Hidden
                };
            }
            if last {
                let Some(shown) = self.shown(&prefix) else {
                    return InLayer::Hidden;
                };
                let stops = opaque_above || !shown.is_dir() || e.kind == EntryKind::OpaqueDir;
                return InLayer::Entry {
                    entry: Box::new(shown),
                    stops,
                };
            }
            if !e.is_dir() {
                return InLayer::Hidden;
            }
            if e.kind == EntryKind::OpaqueDir {
                opaque_above = true;
            }
        }
        InLayer::Absent
    }
}

/// How a path looks in one layer.
enum InLayer {
    /// Not in this layer; lower layers may have it.
    Absent,
    /// Not in this layer, and this layer hides it in lower ones (a whiteout, a non-directory
    /// or an opaque directory on its path).
    Hidden,
    /// Present, with its metadata and whether lower layers are hidden below/at it.
    Present {
        meta: Box<std::fs::Metadata>,
        real: PathBuf,
        /// Lower layers do not contribute (an opaque ancestor, or an opaque dir itself, or a
        /// non-directory).
        stops: bool,
    },
    /// Present in a [`SpecLayer`].
    Entry { entry: Box<Entry>, stops: bool },
    /// A whiteout at exactly this path.
    Whiteout,
}

impl LayeredFs {
    /// `layers` are extracted layer directories, the top (most recent) first.
    pub fn new(layers: Vec<PathBuf>) -> LayeredFs {
        LayeredFs {
            layers: layers.into_iter().map(ViewLayer::Dir).collect(),
        }
    }

    /// Layers given as directories or specs, the top first.
    pub fn with_layers(layers: Vec<ViewLayer>) -> LayeredFs {
        LayeredFs { layers }
    }

    fn probe_layer(layer: &ViewLayer, path: &str) -> io::Result<InLayer> {
        match layer {
            ViewLayer::Dir(d) => Self::probe(d, path),
            ViewLayer::Spec(s) => Ok(s.probe(path)),
        }
    }

    fn probe(layer: &Path, path: &str) -> io::Result<InLayer> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut real = layer.to_path_buf();
        let mut opaque_above = false;
        for (i, comp) in comps.iter().enumerate() {
            real.push(comp);
            let meta = match std::fs::symlink_metadata(&real) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(if opaque_above {
                        InLayer::Hidden
                    } else {
                        InLayer::Absent
                    })
                }
                Err(e) => return Err(e),
            };
            let last = i + 1 == comps.len();
            if is_whiteout(&meta) {
                return Ok(if last {
                    InLayer::Whiteout
                } else {
                    InLayer::Hidden
                });
            }
            if last {
                let stops = opaque_above || !meta.is_dir() || is_opaque(&real);
                return Ok(InLayer::Present {
                    meta: Box::new(meta),
                    real,
                    stops,
                });
            }
            if !meta.is_dir() {
                return Ok(InLayer::Hidden);
            }
            if is_opaque(&real) {
                opaque_above = true;
            }
        }
        // The root of the layer.
        let meta = std::fs::symlink_metadata(layer)?;
        Ok(InLayer::Present {
            meta: Box::new(meta),
            real: layer.to_path_buf(),
            stops: false,
        })
    }
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(real: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| read_xattr(real, name).is_some_and(|v| v == b"y"))
}

fn read_xattr(real: &Path, name: &str) -> Option<Vec<u8>> {
    let len = rustix::fs::lgetxattr_query(real, name).ok()?;
    let mut buf = vec![0u8; len];
    let n = rustix::fs::lgetxattr(real, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Extended attributes that belong to the content (overlay bookkeeping and SELinux labels
/// of the host are left out).
pub fn content_xattrs(real: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(len) = rustix::fs::llistxattr_query(real) else {
        return out;
    };
    if len == 0 {
        return out;
    }
    let mut buf = vec![0u8; len];
    let Ok(n) = rustix::fs::llistxattr(real, &mut buf[..]) else {
        return out;
    };
    for name in buf[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.")
            || name.starts_with("user.overlay.")
            || name == "security.selinux"
        {
            continue;
        }
        if let Some(v) = read_xattr(real, &name) {
            out.insert(name, v);
        }
    }
    out
}

/// The entry for a file on disk (`real`) shown at `path`, from its `symlink_metadata`.
/// Regular files get `content: Some(Content::Path(real))`.
pub fn entry_from_disk(real: &Path, path: &str, meta: &std::fs::Metadata) -> io::Result<Entry> {
    let ft = meta.file_type();
    let rdev = meta.rdev();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        let target = std::fs::read_link(real)?;
        EntryKind::Symlink(target.to_string_lossy().into_owned())
    } else if ft.is_char_device() {
        EntryKind::CharDevice {
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        }
    } else if ft.is_block_device() {
        EntryKind::BlockDevice {
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: unsupported file type (socket?)", real.display()),
        ));
    };
    let is_file = kind == EntryKind::File;
    Ok(Entry {
        path: path.to_string(),
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        size: if is_file { meta.len() } else { 0 },
        content: is_file.then(|| Content::Path(real.to_path_buf())),
        xattrs: content_xattrs(real),
    })
}

impl FsView for LayeredFs {
    fn lookup(&self, path: &str) -> io::Result<Option<Entry>> {
        let path = clean_abs(path);
        for layer in &self.layers {
            match Self::probe_layer(layer, &path)? {
                InLayer::Absent => continue,
                InLayer::Hidden | InLayer::Whiteout => return Ok(None),
                InLayer::Present { meta, real, .. } => {
                    return entry_from_disk(&real, &path, &meta).map(Some)
                }
                InLayer::Entry { entry, .. } => return Ok(Some(*entry)),
            }
        }
        // Layers given only as specs: the root is there all the same.
        if path == "/" && !self.layers.is_empty() {
            return Ok(Some(Entry::dir("/", 0o755, 0, 0)));
        }
        Ok(None)
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let path = clean_abs(path);
        let mut names = BTreeSet::new();
        let mut decided = BTreeSet::new();
        let mut found = false;
        let not_dir = || {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{path} is not a directory"),
            )
        };
        for layer in &self.layers {
            let probed = Self::probe_layer(layer, &path)?;
            let stops = match &probed {
                InLayer::Absent => {
                    // A spec may still list children below a directory it has no entry for.
                    match layer {
                        ViewLayer::Spec(s) if s.children.contains_key(&path) => false,
                        _ => continue,
                    }
                }
                InLayer::Hidden | InLayer::Whiteout => break,
                InLayer::Present { meta, stops, .. } => {
                    if !meta.is_dir() {
                        if !found {
                            return Err(not_dir());
                        }
                        break;
                    }
                    *stops
                }
                InLayer::Entry { entry, stops } => {
                    if !entry.is_dir() {
                        if !found {
                            return Err(not_dir());
                        }
                        break;
                    }
                    *stops
                }
            };
            found = true;
            match layer {
                ViewLayer::Dir(_) => {
                    let InLayer::Present { real, .. } = &probed else {
                        continue;
                    };
                    for item in std::fs::read_dir(real)? {
                        let item = item?;
                        let name = item.file_name().to_string_lossy().into_owned();
                        if !decided.insert(name.clone()) {
                            continue;
                        }
                        let meta = item.path().symlink_metadata()?;
                        if !is_whiteout(&meta) {
                            names.insert(name);
                        }
                    }
                }
                ViewLayer::Spec(s) => {
                    for name in s.children.get(&path).into_iter().flatten() {
                        if !decided.insert(name.clone()) {
                            continue;
                        }
                        let child = crate::engine::fs::join(&path, name);
                        if s.entries.get(&child).map(|e| &e.kind) != Some(&EntryKind::Whiteout) {
                            names.insert(name.clone());
                        }
                    }
                }
            }
            if stops {
                break;
            }
        }
        // The root always exists, empty in a view without layers (`FROM scratch`).
        if !found && path != "/" {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path} does not exist"),
            ));
        }
        Ok(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
    }

    fn write(path: &Path, data: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn overlay_semantics() {
        if !rustix::process::geteuid().is_root() {
            println!("skipped: whiteout devices need root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (lower, mid, top) = (
            tmp.path().join("lower"),
            tmp.path().join("mid"),
            tmp.path().join("top"),
        );
        write(&lower.join("a/file1"), "1");
        write(&lower.join("a/file2"), "2");
        write(&lower.join("b/x"), "x");
        write(&lower.join("c"), "file c");
        write(&lower.join("d/sub/y"), "y");
        std::os::unix::fs::symlink("/a/file2", lower.join("link")).unwrap();

        std::fs::create_dir_all(mid.join("a")).unwrap();
        whiteout(&mid.join("a/file1"));
        write(&mid.join("b/new"), "new");
        rustix::fs::lsetxattr(
            mid.join("b"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::fs::create_dir_all(mid.join("c/inner")).unwrap();

        std::fs::create_dir_all(&top).unwrap();
        whiteout(&top.join("d"));
        write(&top.join("e"), "e");
        std::fs::create_dir_all(top.join("a")).unwrap();
        std::fs::write(top.join("a/file2"), "top 2").unwrap();

        let fs = LayeredFs::new(vec![top.clone(), mid, lower]);
        assert_eq!(fs.lookup("/a/file1").unwrap(), None);
        let f2 = fs.lookup("/a/file2").unwrap().unwrap();
        assert_eq!(f2.content, Some(Content::Path(top.join("a/file2"))));
        assert_eq!(f2.size, 5);
        assert_eq!(fs.read_dir("/a").unwrap(), vec!["file2"]);
        assert_eq!(fs.lookup("/b/x").unwrap(), None);
        assert_eq!(fs.read_dir("/b").unwrap(), vec!["new"]);
        assert_eq!(fs.lookup("/c").unwrap().unwrap().kind, EntryKind::Dir);
        assert_eq!(fs.read_dir("/c").unwrap(), vec!["inner"]);
        assert_eq!(fs.lookup("/d").unwrap(), None);
        assert_eq!(fs.lookup("/d/sub/y").unwrap(), None);
        assert_eq!(
            fs.lookup("/link").unwrap().unwrap().kind,
            EntryKind::Symlink("/a/file2".into())
        );
        assert_eq!(fs.read_dir("/").unwrap(), vec!["a", "b", "c", "e", "link"]);
        assert_eq!(
            fs.read_dir("/d").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.read_dir("/e").unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(fs.lookup("/").unwrap().unwrap().kind, EntryKind::Dir);
        let resolved = crate::engine::fs::resolve_in_root(&fs, "/link", true).unwrap();
        assert_eq!(resolved, "/a/file2");
    }

    fn walk(fs: &LayeredFs, path: &str, out: &mut Vec<String>) {
        let e = fs.lookup(path).unwrap().unwrap();
        let content = match &e.content {
            Some(c) => {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut c.open().unwrap(), &mut buf).unwrap();
                String::from_utf8_lossy(&buf).into_owned()
            }
            None => String::new(),
        };
        if path != "/" {
            out.push(format!(
                "{path} {:?} {:o} {}:{} {} {} {content:?}",
                e.kind, e.mode, e.uid, e.gid, e.mtime, e.size
            ));
        }
        if e.is_dir() {
            for name in fs.read_dir(path).unwrap() {
                walk(fs, &crate::engine::fs::join(path, &name), out);
            }
        }
    }

    #[test]
    fn a_spec_layer_shows_what_extracting_it_shows() {
        if !rustix::process::geteuid().is_root() {
            println!("skipped: whiteout devices need root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        write(&base.join("a/old"), "old");
        write(&base.join("b/x"), "x");
        write(&base.join("b/y"), "y");
        write(&base.join("keep"), "keep");
        let e = |path: &str, kind: EntryKind, content: Option<&str>| Entry {
            path: path.into(),
            kind,
            mode: 0o640,
            uid: 3,
            gid: 4,
            mtime: 1_700_000_000,
            size: content.map_or(0, |c| c.len() as u64),
            content: content.map(|c| Content::Bytes(Arc::new(c.as_bytes().to_vec()))),
            xattrs: BTreeMap::new(),
        };
        let mut spec = LayerSpec {
            entries: vec![
                e("/a", EntryKind::OpaqueDir, None),
                e("/a/new", EntryKind::File, Some("new")),
                e("/b", EntryKind::Dir, None),
                e("/b/x", EntryKind::Whiteout, None),
                e("/c", EntryKind::Dir, None),
                e("/c/f", EntryKind::File, Some("linked")),
                e("/c/h", EntryKind::Hardlink("/c/f".into()), None),
                e("/c/s", EntryKind::Symlink("f".into()), None),
                e("/d", EntryKind::Dir, None),
                e("/d/e", EntryKind::Dir, None),
                e("/d/e/f", EntryKind::File, Some("deep")),
            ],
        };
        spec.sort();
        let top = tmp.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        crate::engine::layer::extract_spec(
            &spec,
            &top,
            Some(1_600_000_000),
            &tmp.path().join("none"),
        )
        .unwrap();
        let on_disk = LayeredFs::new(vec![top, base.clone()]);
        let from_spec = LayeredFs::with_layers(vec![
            ViewLayer::Spec(Arc::new(SpecLayer::new(&spec, Some(1_600_000_000)))),
            ViewLayer::Dir(base),
        ]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        walk(&on_disk, "/", &mut a);
        walk(&from_spec, "/", &mut b);
        assert_eq!(a, b);
        assert!(a.iter().any(|l| l.starts_with("/a/new")));
        assert!(!a
            .iter()
            .any(|l| l.starts_with("/a/old") || l.starts_with("/b/x")));
    }
}
