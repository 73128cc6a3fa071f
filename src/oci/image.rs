//! Image formats: descriptors, manifests, indexes (manifest lists) and image configs, for
//! both the OCI and the Docker v2 schema 2 media types. Field order follows the Go structs
//! (image-spec), so that JSON written here reads like what Docker tools write.

use super::{Digest, OciError, Platform};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const IN_TOTO: &str = "application/vnd.in-toto+json";
    /// Every manifest and index type, for the registry `Accept` header.
    pub const ALL_MANIFESTS: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];
}

/// Annotation keys with a meaning for kiln.
pub mod annotation {
    pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
    pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
    pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
    pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

/// What kind of document a manifest media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerList,
}

impl MediaType {
    pub fn parse(s: &str) -> Option<MediaType> {
        // parameters such as "; charset=utf-8" are ignored
        let base = s.split(';').next().unwrap_or("").trim();
        match base {
            media_type::OCI_MANIFEST => Some(MediaType::OciManifest),
            media_type::OCI_INDEX => Some(MediaType::OciIndex),
            media_type::DOCKER_MANIFEST => Some(MediaType::DockerManifest),
            media_type::DOCKER_LIST => Some(MediaType::DockerList),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::OciManifest => media_type::OCI_MANIFEST,
            MediaType::OciIndex => media_type::OCI_INDEX,
            MediaType::DockerManifest => media_type::DOCKER_MANIFEST,
            MediaType::DockerList => media_type::DOCKER_LIST,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerList)
    }

    pub fn is_docker(self) -> bool {
        matches!(self, MediaType::DockerManifest | MediaType::DockerList)
    }
}

/// `null` in JSON reads as the default value (Docker configs write `"Cmd": null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    #[serde(default)]
    pub size: i64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub urls: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: i64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// True for BuildKit attestation manifests (provenance, SBOM) in an index.
    pub fn is_attestation(&self) -> bool {
        self.annotations
            .get(annotation::REFERENCE_TYPE)
            .is_some_and(|v| v == annotation::ATTESTATION_MANIFEST)
    }

    /// The digest of the image an attestation manifest is about.
    pub fn attests(&self) -> Option<&str> {
        if self.is_attestation() {
            self.annotations
                .get(annotation::REFERENCE_DIGEST)
                .map(String::as_str)
        } else {
            None
        }
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "nullable")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// A new manifest of `kind` (OCI by default; Docker media types on request).
    pub fn new(kind: MediaType, config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(kind.as_str().to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The bytes kiln writes for a manifest, index or config: compact JSON in Go field order
/// with sorted maps, so the same value always gives the same digest.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, OciError> {
    serde_json::to_vec(value).map_err(|e| OciError::invalid(format!("encoding JSON: {e}")))
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn new(media_type: MediaType) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media_type.as_str().to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The best manifest for `want` (attestations skipped), exact matches first.
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| !d.is_attestation())
            .filter_map(|d| {
                let p = d.platform.as_ref()?;
                want.match_rank(p).map(|rank| (rank, d))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

/// The image config (`application/vnd.oci.image.config.v1+json` and the Docker one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub author: String,
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub os_version: String,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub os_features: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub variant: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: ImageConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub rootfs: RootFs,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub history: Vec<History>,
}

impl Image {
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// `{}` in JSON (the value type of `ExposedPorts` and `Volumes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub user: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub env: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub entrypoint: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub cmd: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub stop_signal: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "nullable"
    )]
    pub args_escaped: bool,
    /// Docker extensions, kept so that configs written by kiln can carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "OnBuild")]
    pub on_build: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub created_by: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub author: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub comment: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "nullable"
    )]
    pub empty_layer: bool,
}

/// A manifest or index as read, with its kind decided from the media type.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Decides what `bytes` are: the `mediaType` field wins, then the Content-Type the
/// registry sent, then the shape (`manifests` vs `config`).
pub fn detect_media_type(bytes: &[u8], content_type: Option<&str>) -> Result<MediaType, OciError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<serde_json::Value>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| OciError::manifest("manifest", format!("invalid JSON: {e}")))?;
    if let Some(mt) = probe.media_type.as_deref().filter(|m| !m.is_empty()) {
        return MediaType::parse(mt).ok_or_else(|| OciError::UnsupportedMediaType {
            what: "manifest".into(),
            media_type: mt.to_string(),
        });
    }
    if let Some(mt) = content_type.and_then(MediaType::parse) {
        return Ok(mt);
    }
    if probe.schema_version.as_ref().and_then(|v| v.as_u64()) == Some(1) {
        return Err(OciError::UnsupportedMediaType {
            what: "manifest".into(),
            media_type: "application/vnd.docker.distribution.manifest.v1+json".into(),
        });
    }
    match (probe.manifests.is_some(), probe.config.is_some()) {
        (true, false) => Ok(MediaType::OciIndex),
        (false, true) => Ok(MediaType::OciManifest),
        _ => Err(OciError::UnsupportedMediaType {
            what: "manifest".into(),
            media_type: content_type.unwrap_or("").to_string(),
        }),
    }
}

impl Manifest {
    pub fn parse(bytes: &[u8], media_type: MediaType) -> Result<Manifest, OciError> {
        let bad =
            |e: serde_json::Error| OciError::manifest("manifest", format!("invalid JSON: {e}"));
        Ok(if media_type.is_index() {
            Manifest::Index(Box::new(serde_json::from_slice(bytes).map_err(bad)?))
        } else {
            Manifest::Image(Box::new(serde_json::from_slice(bytes).map_err(bad)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_index_and_recognises_attestations() {
        let d = format!("sha256:{}", "a".repeat(64));
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
              {{"mediaType":"{}","digest":"{d}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{}","digest":"{d}","size":1,"annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{d}"}},"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#,
            media_type::OCI_INDEX,
            media_type::OCI_MANIFEST,
            media_type::OCI_MANIFEST
        );
        let mt = detect_media_type(json.as_bytes(), None).unwrap();
        assert_eq!(mt, MediaType::OciIndex);
        let Manifest::Index(idx) = Manifest::parse(json.as_bytes(), mt).unwrap() else {
            panic!("not an index")
        };
        assert!(!idx.manifests[0].is_attestation());
        assert!(idx.manifests[1].is_attestation());
        assert_eq!(idx.manifests[1].attests(), Some(d.as_str()));
        let want = Platform::parse("linux/arm64").unwrap();
        assert_eq!(idx.select(&want).unwrap().size, 1);
        // Go field order on output
        let out = serde_json::to_string(&idx.manifests[1]).unwrap();
        assert!(out.find("annotations").unwrap() < out.find("platform").unwrap());
    }

    #[test]
    fn writes_the_same_bytes_for_the_same_value() {
        let d = Digest::sha256(b"x");
        let mut layer = Descriptor::new(media_type::OCI_LAYER_GZIP, d.clone(), 1);
        layer.annotations.insert("b".into(), "2".into());
        layer.annotations.insert("a".into(), "1".into());
        let m = ImageManifest::new(
            MediaType::OciManifest,
            Descriptor::new(media_type::OCI_CONFIG, d, 1),
            vec![layer],
        );
        let a = to_canonical_json(&m).unwrap();
        assert_eq!(a, to_canonical_json(&m.clone()).unwrap());
        let text = String::from_utf8(a).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"#));
        assert!(text.contains(r#""annotations":{"a":"1","b":"2"}"#));
        let back: ImageManifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn config_with_nulls_and_bad_input() {
        let cfg: Image = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Cmd":null,"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert_eq!(cfg.config.env, vec!["A=1"]);
        assert!(detect_media_type(b"not json", None).is_err());
        assert!(detect_media_type(br#"{"mediaType":"x/y"}"#, None).is_err());
    }
}
