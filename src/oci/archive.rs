//! Archives: an OCI layout as one tar file (and back), and `docker load` archives
//! (docker-archive) made from images in a layout.
//!
//! Tars are deterministic: entries sorted, owner 0:0, mode 0644/0755, mtime 0.
//! Naming rule for docker archives of several platforms: each platform's image gets the
//! given tags with `-OS-ARCH[-VARIANT]` appended (`app:1` -> `app:1-linux-arm64`), so that
//! loading them into one engine does not make one platform replace another.

use super::image::{Descriptor, ImageIndex, ImageManifest, Manifest};
use super::layout::Layout;
use super::{OciError, Platform};
use std::fs::File;
use std::io::Write as _;
use std::path::{Component, Path};

fn header(path: &str, size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

struct TarOut {
    builder: tar::Builder<File>,
    path: String,
}

impl TarOut {
    fn create(path: &Path) -> Result<TarOut, OciError> {
        let f = File::create(path)
            .map_err(|e| OciError::io(format!("creating {}", path.display()), e))?;
        Ok(TarOut {
            builder: tar::Builder::new(f),
            path: path.display().to_string(),
        })
    }

    fn err(&self, e: std::io::Error) -> OciError {
        OciError::io(format!("writing {}", self.path), e)
    }

    fn dir(&mut self, name: &str) -> Result<(), OciError> {
        let h = header(name, 0, true);
        self.builder
            .append(&h, std::io::empty())
            .map_err(|e| self.err(e))
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), OciError> {
        let h = header(name, data.len() as u64, false);
        self.builder.append(&h, data).map_err(|e| self.err(e))
    }

    fn file(&mut self, name: &str, src: &Path) -> Result<(), OciError> {
        let f =
            File::open(src).map_err(|e| OciError::io(format!("reading {}", src.display()), e))?;
        let len = f
            .metadata()
            .map_err(|e| OciError::io(format!("reading {}", src.display()), e))?
            .len();
        let h = header(name, len, false);
        self.builder.append(&h, f).map_err(|e| self.err(e))
    }

    fn finish(self) -> Result<(), OciError> {
        let path = self.path.clone();
        let mut f = self
            .builder
            .into_inner()
            .map_err(|e| OciError::io(format!("writing {path}"), e))?;
        f.flush()
            .map_err(|e| OciError::io(format!("writing {path}"), e))
    }
}

/// Every blob `desc` reaches (manifests, configs, layers), children first, no repeats.
fn reachable(
    layout: &Layout,
    desc: &Descriptor,
    out: &mut Vec<Descriptor>,
) -> Result<(), OciError> {
    if out.iter().any(|d| d.digest == desc.digest) {
        return Ok(());
    }
    if super::MediaType::parse(&desc.media_type).is_some() {
        let m = layout.manifest(&desc.digest)?;
        match Manifest::parse(&m.bytes, m.media_type)? {
            Manifest::Index(idx) => {
                for c in &idx.manifests {
                    reachable(layout, c, out)?;
                }
            }
            Manifest::Image(im) => {
                for b in std::iter::once(&im.config).chain(im.layers.iter()) {
                    if !out.iter().any(|d| d.digest == b.digest) {
                        out.push(b.clone());
                    }
                }
            }
        }
    }
    out.push(desc.clone());
    Ok(())
}

/// Writes the whole layout (`oci-layout`, `index.json`, every blob its index reaches) as
/// one tar file, the form `docker buildx build --output type=oci` produces.
pub fn write_oci_tar(layout: &Layout, out: &Path) -> Result<(), OciError> {
    let index = layout.index()?;
    let mut blobs = Vec::new();
    for d in &index.manifests {
        reachable(layout, d, &mut blobs)?;
    }
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut tar = TarOut::create(out)?;
    tar.dir("blobs/")?;
    let algs: std::collections::BTreeSet<&str> =
        blobs.iter().map(|b| b.digest.algorithm()).collect();
    for alg in algs {
        tar.dir(&format!("blobs/{alg}/"))?;
    }
    for b in &blobs {
        let name = format!("blobs/{}/{}", b.digest.algorithm(), b.digest.encoded());
        tar.file(&name, &layout.blob_path(&b.digest))?;
    }
    let index_bytes = serde_json::to_vec(&index)
        .map_err(|e| OciError::invalid(format!("encoding index.json: {e}")))?;
    tar.bytes("index.json", &index_bytes)?;
    tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar.finish()
}

/// Unpacks an OCI layout tar into `dest` (refusing absolute paths and `..`) and opens it.
pub fn read_oci_tar(tar_path: &Path, dest: &Path) -> Result<Layout, OciError> {
    let f = File::open(tar_path)
        .map_err(|e| OciError::io(format!("reading {}", tar_path.display()), e))?;
    let shown = tar_path.display().to_string();
    let bad = |m: String| OciError::Layout {
        path: shown.clone(),
        message: m,
    };
    let mut archive = tar::Archive::new(f);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar file: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("broken tar entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad path: {e}")))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad(format!("unsafe path {}", path.display())));
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(dest.join(&path))
                    .map_err(|e| OciError::io(format!("creating {}", path.display()), e))?;
            }
            tar::EntryType::Regular => {
                let target = dest.join(&path);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
                }
                let mut out = File::create(&target)
                    .map_err(|e| OciError::io(format!("writing {}", target.display()), e))?;
                std::io::copy(&mut entry, &mut out)
                    .map_err(|e| OciError::io(format!("writing {}", target.display()), e))?;
            }
            _ => return Err(bad(format!("unexpected entry type for {}", path.display()))),
        }
    }
    if !dest.join("oci-layout").is_file() {
        return Err(bad("no oci-layout file: not an OCI layout".into()));
    }
    Layout::open(dest)
}

/// The tags for one platform's image of a docker archive (see the module docs).
pub fn docker_tags(tags: &[String], platform: &Platform, multi: bool) -> Vec<String> {
    // `docker load` wants `name:tag` (as buildx writes them: familiar, `:latest` added).
    let tags: Vec<String> = tags
        .iter()
        .map(|t| match super::reference::Reference::parse(t) {
            Ok(r) if r.digest().is_none() => r.with_default_tag().familiar(),
            _ => t.clone(),
        })
        .collect();
    if !multi {
        return tags;
    }
    let mut suffix = format!("-{}-{}", platform.os, platform.architecture);
    if !platform.variant.is_empty() {
        suffix.push('-');
        suffix.push_str(&platform.variant);
    }
    tags.iter().map(|t| format!("{t}{suffix}")).collect()
}

/// Writes a `docker load` archive of the image (or every platform of the index, skipping
/// attestations) `desc` from `layout`, tagged `tags` (`name:tag`, see the naming rule).
pub fn write_docker_archive(
    layout: &Layout,
    desc: &Descriptor,
    tags: &[String],
    out: &Path,
) -> Result<(), OciError> {
    let top = layout.manifest(&desc.digest)?;
    let images: Vec<(ImageManifest, Platform)> = match Manifest::parse(&top.bytes, top.media_type)?
    {
        Manifest::Image(m) => {
            let cfg: super::Image = serde_json::from_slice(&layout.read_blob(&m.config.digest)?)
                .map_err(|e| OciError::manifest("image config", format!("invalid JSON: {e}")))?;
            vec![(*m, cfg.platform())]
        }
        Manifest::Index(idx) => images_of(layout, &idx)?,
    };
    if images.is_empty() {
        return Err(OciError::invalid("the index has no images to export"));
    }
    let multi = images.len() > 1;
    let mut entries = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    for (m, p) in &images {
        let path =
            |d: &Descriptor| format!("blobs/{}/{}", d.digest.algorithm(), d.digest.encoded());
        entries.push(serde_json::json!({
            "Config": path(&m.config),
            "RepoTags": docker_tags(tags, p, multi),
            "Layers": m.layers.iter().map(path).collect::<Vec<_>>(),
        }));
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b.clone());
            }
        }
    }
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut tar = TarOut::create(out)?;
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    for b in &blobs {
        tar.file(
            &format!("blobs/{}/{}", b.digest.algorithm(), b.digest.encoded()),
            &layout.blob_path(&b.digest),
        )?;
    }
    let manifest = serde_json::to_vec(&entries)
        .map_err(|e| OciError::invalid(format!("encoding manifest.json: {e}")))?;
    tar.bytes("manifest.json", &manifest)?;
    tar.finish()
}

fn images_of(
    layout: &Layout,
    idx: &ImageIndex,
) -> Result<Vec<(ImageManifest, Platform)>, OciError> {
    let mut out = Vec::new();
    for d in idx.manifests.iter().filter(|d| !d.is_attestation()) {
        let m = layout.manifest(&d.digest)?;
        match Manifest::parse(&m.bytes, m.media_type)? {
            Manifest::Image(im) => {
                let p = match &d.platform {
                    Some(p) => p.clone(),
                    None => serde_json::from_slice::<super::Image>(
                        &layout.read_blob(&im.config.digest)?,
                    )
                    .map_err(|e| OciError::manifest("image config", format!("invalid JSON: {e}")))?
                    .platform(),
                };
                out.push((*im, p));
            }
            Manifest::Index(inner) => out.extend(images_of(layout, &inner)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::image::media_type;
    use crate::oci::MediaType;

    /// A layout with a 2-platform index of tiny images.
    fn sample(dir: &Path) -> (Layout, Descriptor) {
        let l = Layout::create(dir).unwrap();
        let mut idx = ImageIndex::new(MediaType::OciIndex);
        for (arch, variant) in [("amd64", ""), ("arm64", "v8")] {
            let layer = l.write_blob(format!("layer-{arch}").as_bytes()).unwrap();
            let cfg = format!(
                r#"{{"architecture":"{arch}","os":"linux","variant":"{variant}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
            );
            let cfg_d = l.write_blob(cfg.as_bytes()).unwrap();
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cfg_d}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{layer}","size":11}}]}}"#,
                media_type::OCI_MANIFEST,
                media_type::OCI_CONFIG,
                cfg.len(),
                media_type::OCI_LAYER_GZIP
            );
            let md = l.write_blob(m.as_bytes()).unwrap();
            let mut d = Descriptor::new(media_type::OCI_MANIFEST, md, m.len() as i64);
            d.platform = Some(Platform::new("linux", arch, variant));
            idx.manifests.push(d);
        }
        let bytes = serde_json::to_vec(&idx).unwrap();
        let d = Descriptor::new(
            media_type::OCI_INDEX,
            l.write_blob(&bytes).unwrap(),
            bytes.len() as i64,
        );
        l.add_to_index(d.clone(), Some("v1")).unwrap();
        (l, d)
    }

    #[test]
    fn oci_tar_round_trip_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let (l, d) = sample(&tmp.path().join("src"));
        let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
        write_oci_tar(&l, &a).unwrap();
        write_oci_tar(&l, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let back = read_oci_tar(&a, &tmp.path().join("out")).unwrap();
        assert_eq!(back.resolve("v1").unwrap().digest, d.digest);
        assert_eq!(
            back.manifest(&d.digest).unwrap().media_type,
            MediaType::OciIndex
        );
    }

    #[test]
    fn docker_archive_has_one_image_per_platform() {
        let tmp = tempfile::tempdir().unwrap();
        let (l, d) = sample(&tmp.path().join("src"));
        let out = tmp.path().join("d.tar");
        write_docker_archive(&l, &d, &["app:1".to_string()], &out).unwrap();
        let mut ar = tar::Archive::new(File::open(&out).unwrap());
        let mut manifest = None;
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            if name == "manifest.json" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                manifest = Some(s);
            }
            names.push(name);
        }
        let m: serde_json::Value = serde_json::from_str(&manifest.unwrap()).unwrap();
        assert_eq!(m[0]["RepoTags"][0], "app:1-linux-amd64");
        assert_eq!(m[1]["RepoTags"][0], "app:1-linux-arm64-v8");
        for entry in m.as_array().unwrap() {
            assert!(names.contains(&entry["Config"].as_str().unwrap().to_string()));
        }
    }

    #[test]
    fn refuses_unsafe_tars() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("evil.tar");
        let mut b = tar::Builder::new(File::create(&p).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../escape";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap();
        assert!(read_oci_tar(&p, &tmp.path().join("out")).is_err());
        assert!(!tmp.path().join("escape").exists());
    }
}
