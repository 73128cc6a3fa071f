//! Base images: resolve a reference for a platform (manifest, config, layer descriptors) from
//! a registry or an OCI layout, and fetch layer blobs when a step or an export needs them.
//! Manifests and configs are small and read eagerly; layers are fetched lazily.

use crate::engine::store::Store;
use crate::oci::image::{
    detect_media_type, Descriptor, Image, ImageIndex, ImageManifest, Manifest, MediaType,
};
use crate::oci::layout::Layout;
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::oci::registry::{Client, FetchedManifest};
use crate::oci::{Digest, OciError};
use std::path::{Path, PathBuf};

/// Where a base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Registry(Reference),
    /// An OCI layout directory and the tag (or digest) inside it.
    Layout(PathBuf, String),
}

/// A base image resolved for one platform.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub source: Source,
    /// The normalised reference as users wrote it (for history and provenance).
    pub reference: String,
    /// Digest of the platform manifest.
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: Image,
    pub config_bytes: Vec<u8>,
}

impl PulledImage {
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.layers
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("{reference}: no image for platform {platform} (the index has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("{0}")]
    Runtime(String),
}

/// Resolves and fetches base images. Holds a small async runtime for the registry client.
pub struct Puller {
    client: Client,
    rt: tokio::runtime::Runtime,
    /// Where platform manifests and configs fetched by digest are kept, so resolving an
    /// unchanged base costs one request (the tag) instead of three.
    metadata: Option<Store>,
}

impl Puller {
    pub fn new(client: Client) -> Result<Puller, PullError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PullError::Runtime(format!("starting the async runtime: {e}")))?;
        Ok(Puller {
            client,
            rt,
            metadata: None,
        })
    }

    /// Keeps manifests and configs fetched by digest in `store` (content-addressed, each
    /// checked against its digest when read back).
    pub fn cache_metadata_in(&mut self, store: Store) {
        self.metadata = Some(store);
    }

    /// The blob `digest` of `r`: from the metadata cache when it holds it, else from the
    /// registry (and then remembered).
    fn small_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        manifest: bool,
    ) -> Result<Vec<u8>, PullError> {
        if let Some(bytes) = self.cached(digest) {
            return Ok(bytes);
        }
        let bytes = if manifest {
            self.rt
                .block_on(self.client.get_manifest(&r.at_digest(digest.clone())))?
                .bytes
        } else {
            self.rt.block_on(self.client.get_blob(r, digest))?
        };
        if let Some(store) = &self.metadata {
            // Best effort: a full disk or a read-only store only costs the next request.
            let _ = store.put_bytes(&bytes, Some(&digest.to_string()));
        }
        Ok(bytes)
    }

    fn cached(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.metadata.as_ref()?.path(&digest.to_string()).ok()?;
        let bytes = std::fs::read(path).ok()?;
        (digest.of_same_kind(&bytes) == *digest).then_some(bytes)
    }

    /// Resolves `reference` (`docker-image` style, or `oci-layout://DIR[:tag|@digest]`) for a
    /// platform.
    pub fn resolve(&self, reference: &str, platform: &Platform) -> Result<PulledImage, PullError> {
        if let Some(rest) = reference.strip_prefix("oci-layout://") {
            let (dir, tag) = split_layout_ref(rest);
            return self.resolve_layout(Path::new(&dir), &tag, platform, reference);
        }
        let r = Reference::parse(reference)?.with_default_tag();
        let top = self.rt.block_on(self.client.get_manifest(&r))?;
        let (manifest_fm, manifest) = match Manifest::parse(&top.bytes, top.media_type)? {
            Manifest::Index(ix) => {
                let d = select(&ix, platform, &r.to_string())?;
                let bytes = self.small_blob(&r, &d.digest, true)?;
                let media_type = MediaType::parse(&d.media_type)
                    .map_or_else(|| detect_media_type(&bytes, None), Ok)?;
                let fm = FetchedManifest {
                    bytes,
                    media_type,
                    digest: d.digest.clone(),
                };
                let m = image_manifest(&fm, &r.to_string())?;
                (fm, m)
            }
            Manifest::Image(m) => (top, unbox(m)),
        };
        let config_bytes = self.small_blob(&r, &manifest.config.digest, false)?;
        let config: Image =
            serde_json::from_slice(&config_bytes).map_err(|e| PullError::Invalid {
                reference: r.to_string(),
                message: format!("invalid image config: {e}"),
            })?;
        Ok(PulledImage {
            source: Source::Registry(r.clone()),
            reference: r.to_string(),
            manifest_digest: manifest_fm.digest,
            manifest,
            config,
            config_bytes,
        })
    }

    fn resolve_layout(
        &self,
        dir: &Path,
        tag: &str,
        platform: &Platform,
        shown: &str,
    ) -> Result<PulledImage, PullError> {
        let layout = Layout::open(dir)?;
        let top_desc = match Digest::parse(tag) {
            Ok(d) => layout.manifest(&d)?.descriptor(),
            Err(_) => layout.resolve(tag)?,
        };
        let top = layout.manifest(&top_desc.digest)?;
        let (fm, manifest) = match Manifest::parse(&top.bytes, top.media_type)? {
            Manifest::Index(ix) => {
                let d = select(&ix, platform, shown)?;
                let fm = layout.manifest(&d.digest)?;
                let m = image_manifest(&fm, shown)?;
                (fm, m)
            }
            Manifest::Image(m) => (top, unbox(m)),
        };
        let config_bytes = layout.read_blob(&manifest.config.digest)?;
        let config: Image =
            serde_json::from_slice(&config_bytes).map_err(|e| PullError::Invalid {
                reference: shown.to_string(),
                message: format!("invalid image config: {e}"),
            })?;
        Ok(PulledImage {
            source: Source::Layout(dir.to_path_buf(), tag.to_string()),
            reference: shown.to_string(),
            manifest_digest: fm.digest,
            manifest,
            config,
            config_bytes,
        })
    }

    /// Writes a layer (or any blob) of `image` to `dest` (atomically, digest verified).
    pub fn fetch_blob(
        &self,
        image: &PulledImage,
        digest: &Digest,
        dest: &Path,
    ) -> Result<(), PullError> {
        match &image.source {
            Source::Registry(r) => {
                self.rt
                    .block_on(self.client.blob_to_file(r, digest, dest))?;
                Ok(())
            }
            Source::Layout(dir, _) => {
                let layout = Layout::open(dir)?;
                let src = layout.blob_path(digest);
                let parent = dest.parent().unwrap_or(Path::new("."));
                let mut tmp = tempfile::Builder::new()
                    .prefix(".kiln-blob-")
                    .tempfile_in(parent)
                    .map_err(|e| OciError::io(format!("writing {}", dest.display()), e))?;
                let mut f = std::fs::File::open(&src)
                    .map_err(|e| OciError::io(format!("reading {}", src.display()), e))?;
                let mut hasher = DigestWriter::new(tmp.as_file_mut());
                std::io::copy(&mut f, &mut hasher)
                    .map_err(|e| OciError::io(format!("copying {}", src.display()), e))?;
                let got = hasher.finish();
                if got != *digest {
                    return Err(OciError::DigestMismatch {
                        what: src.display().to_string(),
                        expected: digest.to_string(),
                        actual: got.to_string(),
                    }
                    .into());
                }
                tmp.persist(dest)
                    .map_err(|e| OciError::io(format!("writing {}", dest.display()), e.error))?;
                Ok(())
            }
        }
    }
}

fn split_layout_ref(rest: &str) -> (String, String) {
    if let Some((dir, d)) = rest.rsplit_once('@') {
        return (dir.to_string(), d.to_string());
    }
    match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (dir.to_string(), tag.to_string()),
        _ => (rest.to_string(), "latest".to_string()),
    }
}

fn select(ix: &ImageIndex, platform: &Platform, shown: &str) -> Result<Descriptor, PullError> {
    ix.select(platform)
        .cloned()
        .ok_or_else(|| PullError::NoPlatform {
            reference: shown.to_string(),
            platform: platform.to_string(),
            available: ix
                .manifests
                .iter()
                .filter(|d| !d.is_attestation())
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn image_manifest(fm: &FetchedManifest, shown: &str) -> Result<ImageManifest, PullError> {
    match Manifest::parse(&fm.bytes, fm.media_type)? {
        Manifest::Image(m) => Ok(unbox(m)),
        Manifest::Index(_) => Err(PullError::Invalid {
            reference: shown.to_string(),
            message: "an index lists another index for the platform".into(),
        }),
    }
}

/// Hashes what passes through it.
struct DigestWriter<'a> {
    inner: &'a mut std::fs::File,
    hasher: sha2::Sha256,
}

impl<'a> DigestWriter<'a> {
    fn new(inner: &'a mut std::fs::File) -> Self {
        use sha2::Digest as _;
        DigestWriter {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    fn finish(self) -> Digest {
        use sha2::Digest as _;
        let hex: String = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Digest::parse(&format!("sha256:{hex}")).unwrap_or_else(|_| Digest::sha256(b""))
    }
}

impl std::io::Write for DigestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Takes a manifest out of the parsed enum whether or not it is boxed there.
fn unbox<T>(b: impl Into<Box<T>>) -> T {
    *b.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_base() -> Option<PathBuf> {
        let p =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile/base");
        p.exists().then_some(p)
    }

    #[test]
    fn layout_refs_split() {
        assert_eq!(split_layout_ref("/x/y:v1"), ("/x/y".into(), "v1".into()));
        assert_eq!(split_layout_ref("/x/y"), ("/x/y".into(), "latest".into()));
        assert_eq!(
            split_layout_ref("/x@sha256:ab"),
            ("/x".into(), "sha256:ab".into())
        );
    }

    #[test]
    fn resolves_each_platform_from_a_layout_and_fetches_blobs() {
        let Some(base) = corpus_base() else {
            eprintln!("note: ../shared is not beside the repository; layout test not run");
            return;
        };
        let client = Client::new(Default::default()).expect("client");
        let p = Puller::new(client).expect("puller");
        let r = format!("oci-layout://{}:latest", base.display());
        let amd = p
            .resolve(&r, &Platform::parse("linux/amd64").unwrap())
            .expect("amd64");
        let arm = p
            .resolve(&r, &Platform::parse("linux/arm64").unwrap())
            .expect("arm64");
        assert_eq!(amd.config.architecture, "amd64");
        assert_eq!(arm.config.architecture, "arm64");
        assert_ne!(amd.manifest_digest, arm.manifest_digest);
        let err = p
            .resolve(&r, &Platform::parse("linux/s390x").unwrap())
            .expect_err("no s390x");
        assert!(err.to_string().contains("linux/amd64"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let d = amd.layers()[0].digest.clone();
        let dest = dir.path().join("layer");
        p.fetch_blob(&amd, &d, &dest).expect("blob");
        assert!(dest.metadata().unwrap().len() > 1000);
    }
}
