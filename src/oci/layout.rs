//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): reading
//! manifests and blobs, and writing blobs and the top-level index.

use super::image::{annotation, detect_media_type, Descriptor, ImageIndex, MediaType};
use super::registry::FetchedManifest;
use super::{Digest, OciError};
use std::path::{Path, PathBuf};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens an existing layout; the directory must exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout, OciError> {
        let root = root.into();
        let shown = root.display().to_string();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(Layout { root }),
            Ok(_) => Err(OciError::Layout {
                path: shown,
                message: "not a directory".into(),
            }),
            Err(e) => Err(OciError::Layout {
                path: shown,
                message: format!("cannot open: {e}"),
            }),
        }
    }

    /// Creates (or reuses) a layout directory with its `oci-layout` file.
    pub fn create(root: impl Into<PathBuf>) -> Result<Layout, OciError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("blobs").join("sha256"))
            .map_err(|e| OciError::io(format!("creating {}", root.display()), e))?;
        let marker = root.join(LAYOUT_FILE);
        if !marker.exists() {
            std::fs::write(&marker, LAYOUT_VERSION)
                .map_err(|e| OciError::io(format!("writing {}", marker.display()), e))?;
        }
        Ok(Layout { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    /// Reads a blob, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OciError::NotFound {
                    reference: format!("{}@{digest}", self.root.display()),
                }
            } else {
                OciError::io(format!("reading {}", path.display()), e)
            }
        })?;
        digest.verify(&format!("blob {digest} in {}", self.root.display()), &bytes)?;
        Ok(bytes)
    }

    /// Writes a blob (atomically, skipped when present) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::sha256(bytes);
        let path = self.blob_path(&digest);
        if path.exists() {
            return Ok(digest);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| OciError::io(format!("writing {}", path.display()), e))?;
        Ok(digest)
    }

    /// The top-level `index.json` (empty when missing).
    pub fn index(&self) -> Result<ImageIndex, OciError> {
        let path = self.root.join("index.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                OciError::manifest(path.display().to_string(), format!("invalid JSON: {e}"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(ImageIndex::new(MediaType::OciIndex))
            }
            Err(e) => Err(OciError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Adds (or replaces, by `ref.name`) a descriptor in `index.json`.
    pub fn add_to_index(
        &self,
        mut desc: Descriptor,
        ref_name: Option<&str>,
    ) -> Result<(), OciError> {
        let mut index = self.index()?;
        if let Some(name) = ref_name {
            desc.annotations
                .insert(annotation::REF_NAME.to_string(), name.to_string());
            index.manifests.retain(|d| {
                d.annotations.get(annotation::REF_NAME).map(String::as_str) != Some(name)
            });
        }
        index.manifests.push(desc);
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| OciError::invalid(format!("encoding index.json: {e}")))?;
        let path = self.root.join("index.json");
        let tmp = self.root.join("index.json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| OciError::io(format!("writing {}", path.display()), e))
    }

    /// Resolves a name (the `org.opencontainers.image.ref.name` annotation, matched
    /// exactly) to a descriptor.
    pub fn resolve(&self, name: &str) -> Result<Descriptor, OciError> {
        let index = self.index()?;
        index
            .manifests
            .iter()
            .find(|d| {
                d.annotations
                    .get(annotation::REF_NAME)
                    .is_some_and(|n| n == name)
            })
            .cloned()
            .ok_or_else(|| OciError::NotFound {
                reference: format!("{}:{name}", self.root.display()),
            })
    }

    /// A manifest or index by digest.
    pub fn manifest(&self, digest: &Digest) -> Result<FetchedManifest, OciError> {
        let bytes = self.read_blob(digest)?;
        let media_type = detect_media_type(&bytes, None)?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest: digest.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::create(dir.path().join("l")).unwrap();
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let d = l.write_blob(m).unwrap();
        let desc = Descriptor::new(MediaType::OciIndex.as_str(), d.clone(), m.len() as i64);
        l.add_to_index(desc, Some("v1")).unwrap();
        assert_eq!(l.resolve("v1").unwrap().digest, d);
        assert_eq!(l.manifest(&d).unwrap().media_type, MediaType::OciIndex);
        assert!(Layout::open(dir.path().join("nope")).is_err());
        std::fs::write(l.blob_path(&d), b"corrupt").unwrap();
        assert!(matches!(
            l.read_blob(&d),
            Err(OciError::DigestMismatch { .. })
        ));
    }
}
