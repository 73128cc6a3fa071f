//! Exporters that write built images to files: OCI image layouts (a directory, or a tar as
//! `--output type=oci,dest=out.tar` writes) and, later, docker archives. Every file is
//! written under a temporary name and renamed into place only when complete.

use crate::oci::image::{Descriptor, MediaType};
use crate::oci::platform::Platform;
use crate::oci::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One built image: manifest, config and the layer blobs (files on disk).
#[derive(Debug, Clone)]
pub struct ImageBlobs {
    pub platform: Platform,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    pub layers: Vec<(Digest, PathBuf)>,
}

impl ImageBlobs {
    pub fn manifest_digest(&self) -> Digest {
        Digest::sha256(&self.manifest)
    }

    pub fn config_digest(&self) -> Digest {
        Digest::sha256(&self.config)
    }

    /// The descriptor of this image's manifest, with its platform.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(
            &self.manifest_media_type,
            self.manifest_digest(),
            self.manifest.len() as i64,
        );
        d.platform = Some(self.platform.clone());
        d
    }
}

/// What a build produced: one image, or several and the index that lists them.
#[derive(Debug, Clone)]
pub struct Exportable {
    pub images: Vec<ImageBlobs>,
    /// The index (bytes) when the build made a multi-platform image.
    pub index: Option<Vec<u8>>,
}

impl Exportable {
    /// The descriptor of what a reference to this result points at (index or manifest).
    pub fn root_descriptor(&self) -> Option<Descriptor> {
        match &self.index {
            Some(ix) => {
                // The index says which kind it is (OCI, or Docker's manifest list).
                let kind = serde_json::from_slice::<serde_json::Value>(ix)
                    .ok()
                    .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                    .unwrap_or_else(|| MediaType::OciIndex.as_str().to_string());
                Some(Descriptor::new(&kind, Digest::sha256(ix), ix.len() as i64))
            }
            None => self.images.first().map(|i| {
                let mut d = i.descriptor();
                d.platform = None;
                d
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nothing to export: the build produced no image")]
    Empty,
}

fn io(path: &Path, source: std::io::Error) -> ExportError {
    ExportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The files of an OCI layout: (path inside the layout, content source), in a stable order.
enum Payload<'a> {
    Bytes(std::borrow::Cow<'a, [u8]>),
    File(&'a Path),
}

fn layout_files<'a>(
    x: &'a Exportable,
    names: &[String],
) -> Result<Vec<(String, Payload<'a>)>, ExportError> {
    let root = x.root_descriptor().ok_or(ExportError::Empty)?;
    let mut blobs: Vec<(String, Payload<'a>)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut add = |digest: &Digest, p: Payload<'a>| {
        let path = format!("blobs/{}/{}", digest.algorithm(), digest.encoded());
        if seen.insert(path.clone()) {
            blobs.push((path, p));
        }
    };
    for img in &x.images {
        for (d, path) in &img.layers {
            add(d, Payload::File(path));
        }
        add(
            &img.config_digest(),
            Payload::Bytes(img.config.as_slice().into()),
        );
        add(
            &img.manifest_digest(),
            Payload::Bytes(img.manifest.as_slice().into()),
        );
    }
    if let Some(ix) = &x.index {
        add(&Digest::sha256(ix), Payload::Bytes(ix.as_slice().into()));
    }
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut manifests = Vec::new();
    if names.is_empty() {
        manifests.push(serde_json::to_value(&root).unwrap_or_default());
    }
    // One entry, named after the first name (as BuildKit's OCI exporter does): tools
    // expect a single image in an archive.
    for name in names.iter().take(1) {
        let mut d = root.clone();
        d.annotations
            .insert("io.containerd.image.name".into(), name.clone());
        let tag = name.rsplit_once(':').filter(|(_, t)| !t.contains('/'));
        d.annotations.insert(
            "org.opencontainers.image.ref.name".into(),
            tag.map(|(_, t)| t.to_string())
                .unwrap_or_else(|| "latest".into()),
        );
        manifests.push(serde_json::to_value(&d).unwrap_or_default());
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OciIndex.as_str(),
        "manifests": manifests,
    });
    let mut files = vec![(
        "oci-layout".to_string(),
        Payload::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice().into()),
    )];
    files.push((
        "index.json".to_string(),
        Payload::Bytes(serde_json::to_vec(&index).unwrap_or_default().into()),
    ));
    files.extend(blobs);
    Ok(files)
}

/// Writes an OCI layout tar to `dest` (atomically: temp file, then rename).
pub fn write_oci_archive(x: &Exportable, names: &[String], dest: &Path) -> Result<(), ExportError> {
    let files = layout_files(x, names)?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-export-")
        .tempfile_in(dir)
        .map_err(|e| io(dest, e))?;
    write_tar(&files, tmp.as_file_mut()).map_err(|e| io(dest, e))?;
    tmp.as_file().sync_all().map_err(|e| io(dest, e))?;
    set_readable(tmp.path()).map_err(|e| io(dest, e))?;
    tmp.persist(dest).map_err(|e| io(dest, e.error))?;
    Ok(())
}

/// Writes an OCI layout tar to a stream (e.g. stdout for `dest=-`).
pub fn write_oci_archive_to(
    x: &Exportable,
    names: &[String],
    w: &mut dyn Write,
) -> Result<(), ExportError> {
    let files = layout_files(x, names)?;
    write_tar(&files, w).map_err(|e| io(Path::new("-"), e))
}

/// Writes an OCI layout directory (blobs are copied; existing blobs are kept).
pub fn write_oci_dir(x: &Exportable, names: &[String], dir: &Path) -> Result<(), ExportError> {
    write_layout_dir(x, names, dir, false)
}

/// A layout for kiln's own use (pushing, loading, `target:` contexts): layer blobs are
/// symlinks to the store instead of copies, so no layer bytes are copied. The store must
/// outlive the layout.
pub fn write_oci_dir_linked(
    x: &Exportable,
    names: &[String],
    dir: &Path,
) -> Result<(), ExportError> {
    write_layout_dir(x, names, dir, true)
}

fn write_layout_dir(
    x: &Exportable,
    names: &[String],
    dir: &Path,
    link: bool,
) -> Result<(), ExportError> {
    let files = layout_files(x, names)?;
    for (path, payload) in &files {
        let target = dir.join(path);
        if path.starts_with("blobs/") && target.exists() {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if let (true, Payload::File(p)) = (link, payload) {
            let abs = std::fs::canonicalize(p).map_err(|e| io(p, e))?;
            std::os::unix::fs::symlink(&abs, &target).map_err(|e| io(&target, e))?;
            continue;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".kiln-")
            .tempfile_in(target.parent().unwrap_or(dir))
            .map_err(|e| io(&target, e))?;
        match payload {
            Payload::Bytes(b) => tmp.write_all(b).map_err(|e| io(&target, e))?,
            Payload::File(p) => {
                let mut f = std::fs::File::open(p).map_err(|e| io(p, e))?;
                std::io::copy(&mut f, &mut tmp).map_err(|e| io(&target, e))?;
            }
        }
        set_readable(tmp.path()).map_err(|e| io(&target, e))?;
        tmp.persist(&target).map_err(|e| io(&target, e.error))?;
    }
    Ok(())
}

/// Output files get the mode a plain file gets (0644), not a temp file's 0600.
fn set_readable(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))
}

fn write_tar(files: &[(String, Payload<'_>)], w: &mut dyn Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(w);
    let mut dirs = std::collections::BTreeSet::new();
    for (path, payload) in files {
        let mut parent = String::new();
        for comp in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            parent.push_str(comp);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                b.append_data(&mut h, &parent, std::io::empty())?;
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        match payload {
            Payload::Bytes(bytes) => {
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, path, bytes.as_ref())?;
            }
            Payload::File(p) => {
                let f = std::fs::File::open(p)?;
                h.set_size(f.metadata()?.len());
                b.append_data(&mut h, path, f)?;
            }
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Exportable {
        let layer = dir.join("layer");
        std::fs::write(&layer, b"not really a layer").unwrap();
        let ld = Digest::sha256(b"not really a layer");
        Exportable {
            images: vec![ImageBlobs {
                platform: Platform::new("linux", "amd64", ""),
                manifest: br#"{"schemaVersion":2}"#.to_vec(),
                manifest_media_type: MediaType::OciManifest.as_str().into(),
                config: br#"{"architecture":"amd64"}"#.to_vec(),
                layers: vec![(ld, layer)],
            }],
            index: None,
        }
    }

    #[test]
    fn archive_is_a_readable_layout() {
        let dir = tempfile::tempdir().unwrap();
        let x = sample(dir.path());
        let out = dir.path().join("out.tar");
        write_oci_archive(&x, &["example.com/app:1".into()], &out).unwrap();
        let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"index.json".to_string()));
        assert!(names.contains(&"oci-layout".to_string()));
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 20)
                .count(),
            3
        );
        let d = tempfile::tempdir().unwrap();
        write_oci_dir(&x, &[], d.path()).unwrap();
        let layout = crate::oci::layout::Layout::open(d.path()).unwrap();
        let ix = layout.index().unwrap();
        assert_eq!(ix.manifests.len(), 1);
        assert_eq!(ix.manifests[0].digest, x.images[0].manifest_digest());
    }

    #[test]
    fn nothing_written_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        let x = Exportable {
            images: vec![],
            index: None,
        };
        assert!(write_oci_archive(&x, &[], &out).is_err());
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
