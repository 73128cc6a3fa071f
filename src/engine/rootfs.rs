//! The root filesystem of a built image, for `--output type=local` (a directory) and
//! `type=tar` (one tar of the whole tree). The layers are extracted into a scratch area and
//! merged through [`LayeredFs`]; the result is written under a temporary name first.

use crate::engine::export::ImageBlobs;
use crate::engine::fs::{join, Entry, EntryKind, FsView, LayerSpec};
use crate::engine::layer::{self, Compression, LayerOptions};
use crate::engine::layered_fs::LayeredFs;
use crate::oci::image::{ImageManifest, Manifest, MediaType};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Extracts an image's layers under `scratch` and returns a merged view of them.
pub fn view(img: &ImageBlobs, scratch: &Path) -> Result<LayeredFs, RootfsError> {
    let manifest: ImageManifest = match Manifest::parse(&img.manifest, MediaType::OciManifest)? {
        Manifest::Image(m) => unbox(m),
        Manifest::Index(_) => return Ok(LayeredFs::new(Vec::new())),
    };
    let mut dirs = Vec::new();
    for (i, ((_, blob), desc)) in img.layers.iter().zip(&manifest.layers).enumerate() {
        let dir = scratch.join(format!("layer-{i}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        layer::extract_layer(blob, &desc.media_type, &dir)?;
        dirs.push(dir);
    }
    dirs.reverse();
    Ok(LayeredFs::new(dirs))
}

fn unbox<T>(b: impl Into<Box<T>>) -> T {
    *b.into()
}

/// Every entry of a view, parents before children (the root excluded).
pub fn walk(fs: &dyn FsView) -> Result<Vec<Entry>, RootfsError> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(dir) = stack.pop() {
        // An image without layers (FROM scratch and metadata only) has an empty root.
        if dir == "/" && fs.lookup("/").map_err(io(Path::new("/")))?.is_none() {
            break;
        }
        let mut names = fs.read_dir(&dir).map_err(io(Path::new(&dir)))?;
        names.sort();
        let mut subdirs = Vec::new();
        for n in names {
            let p = join(&dir, &n);
            if let Some(e) = fs.lookup(&p).map_err(io(Path::new(&p)))? {
                if matches!(e.kind, EntryKind::Whiteout) {
                    continue;
                }
                if e.is_dir() {
                    subdirs.push(p.clone());
                }
                out.push(e);
            }
        }
        for d in subdirs.into_iter().rev() {
            stack.push(d);
        }
    }
    out.sort_by(|a, b| crate::engine::fs::path_order(&a.path, &b.path));
    Ok(out)
}

/// Writes the tree as one uncompressed tar at `dest` (atomically).
pub fn write_tar(fs: &dyn FsView, dest: &Path) -> Result<(), RootfsError> {
    let mut spec = LayerSpec {
        entries: walk(fs)?
            .into_iter()
            .map(|mut e| {
                if e.kind == EntryKind::OpaqueDir {
                    e.kind = EntryKind::Dir;
                }
                e
            })
            .collect(),
    };
    spec.sort();
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let blob = layer::write_layer(
        &spec,
        &LayerOptions {
            compression: Compression::Uncompressed,
            level: None,
            source_date_epoch: None,
        },
        dir,
    )?;
    std::fs::rename(&blob.path, dest).map_err(io(dest))?;
    Ok(())
}

/// Materialises the tree into the directory `dest` (created if missing; existing files
/// are replaced). Ownership is kept when running as root.
pub fn write_dir(fs: &dyn FsView, dest: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let entries = walk(fs)?;
    for e in &entries {
        let target = dest.join(e.path.trim_start_matches('/'));
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if !(m.is_dir() && e.is_dir()) {
                if m.is_dir() {
                    std::fs::remove_dir_all(&target).map_err(io(&target))?;
                } else {
                    std::fs::remove_file(&target).map_err(io(&target))?;
                }
            }
        }
        match &e.kind {
            EntryKind::Dir | EntryKind::OpaqueDir => {
                std::fs::create_dir_all(&target).map_err(io(&target))?;
            }
            EntryKind::File => {
                let mut out = std::fs::File::create(&target).map_err(io(&target))?;
                if let Some(c) = &e.content {
                    let mut r = c.open().map_err(io(&target))?;
                    std::io::copy(&mut r, &mut out).map_err(io(&target))?;
                }
            }
            EntryKind::Symlink(t) => symlink(t, &target).map_err(io(&target))?,
            EntryKind::Hardlink(t) => {
                let src = dest.join(t.trim_start_matches('/'));
                std::fs::hard_link(&src, &target).map_err(io(&target))?;
            }
            // Devices and fifos need privileges a local export should not ask for.
            EntryKind::CharDevice { .. }
            | EntryKind::BlockDevice { .. }
            | EntryKind::Fifo
            | EntryKind::Whiteout => continue,
        }
        if !matches!(e.kind, EntryKind::Symlink(_)) {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(e.mode & 0o7777))
                .map_err(io(&target))?;
        }
        let _ = rustix::fs::chownat(
            rustix::fs::CWD,
            &target,
            Some(rustix::process::Uid::from_raw(e.uid)),
            Some(rustix::process::Gid::from_raw(e.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}
