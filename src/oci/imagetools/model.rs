//! The data behind `--format`: descriptors, indexes, image configs, provenance and SBOM
//! attestations as Go values shaped like buildx's template input.

use super::value::{Field, Value};
use super::Store;
use crate::oci::image::{
    annotation, Descriptor, History, Image, ImageIndex, ImageManifest, Manifest,
};
use crate::oci::registry::FetchedManifest;
use crate::oci::{OciError, Platform};
use std::collections::BTreeMap;

pub fn platform_value(p: &Platform) -> Value {
    Value::Struct {
        type_name: "v1.Platform",
        fields: vec![
            Field::new("Architecture", "architecture", Value::str(&p.architecture)),
            Field::new("OS", "os", Value::str(&p.os)),
            Field::omit("OSVersion", "os.version", Value::str(&p.os_version)),
            Field::omit("OSFeatures", "os.features", Value::strings(&p.os_features)),
            Field::omit("Variant", "variant", Value::str(&p.variant)),
        ],
    }
}

pub fn descriptor_value(d: &Descriptor) -> Value {
    Value::Struct {
        type_name: "v1.Descriptor",
        fields: vec![
            Field::new("MediaType", "mediaType", Value::str(&d.media_type)),
            Field::new("Digest", "digest", Value::str(d.digest.to_string())),
            Field::new("Size", "size", Value::Int(d.size)),
            Field::omit("URLs", "urls", Value::strings(&d.urls)),
            Field::omit(
                "Annotations",
                "annotations",
                Value::string_map(&d.annotations),
            ),
            Field::omit(
                "Data",
                "data",
                d.data.clone().map(Value::Str).unwrap_or(Value::Slice(None)),
            ),
            Field::omit(
                "Platform",
                "platform",
                Value::Ptr(d.platform.as_ref().map(|p| Box::new(platform_value(p)))),
            ),
            Field::omit(
                "ArtifactType",
                "artifactType",
                Value::str(d.artifact_type.clone().unwrap_or_default()),
            ),
        ],
    }
}

/// `.Manifest` of an index: the index with its own digest and size.
pub fn index_value(idx: &ImageIndex, fetched: &FetchedManifest) -> Value {
    Value::Struct {
        type_name: "imagetools.manifestList",
        fields: vec![
            Field::new(
                "SchemaVersion",
                "schemaVersion",
                Value::Int(idx.schema_version as i64),
            ),
            // the index's own mediaType field (omitted when the document has none)
            Field::omit(
                "MediaType",
                "mediaType",
                Value::str(idx.media_type.clone().unwrap_or_default()),
            ),
            Field::new("Digest", "digest", Value::str(fetched.digest.to_string())),
            Field::new("Size", "size", Value::Int(fetched.bytes.len() as i64)),
            Field::new(
                "Manifests",
                "manifests",
                Value::Slice(Some(idx.manifests.iter().map(descriptor_value).collect())),
            ),
            Field::omit(
                "Annotations",
                "annotations",
                Value::string_map(&idx.annotations),
            ),
        ],
    }
}

fn empty_set(m: &BTreeMap<String, crate::oci::image::Empty>) -> Value {
    if m.is_empty() {
        return Value::Map {
            entries: None,
            iface: false,
        };
    }
    Value::Map {
        entries: Some(
            m.keys()
                .map(|k| {
                    (
                        k.clone(),
                        Value::Struct {
                            type_name: "struct {}",
                            fields: vec![],
                        },
                    )
                })
                .collect(),
        ),
        iface: false,
    }
}

fn time_ptr(t: &Option<String>) -> Value {
    Value::Ptr(t.as_ref().map(|t| Box::new(Value::Time(t.clone()))))
}

fn history_value(h: &History) -> Value {
    Value::Struct {
        type_name: "v1.History",
        fields: vec![
            Field::omit("Created", "created", time_ptr(&h.created)),
            Field::omit("CreatedBy", "created_by", Value::str(&h.created_by)),
            Field::omit("Author", "author", Value::str(&h.author)),
            Field::omit("Comment", "comment", Value::str(&h.comment)),
            Field::omit("EmptyLayer", "empty_layer", Value::Bool(h.empty_layer)),
        ],
    }
}

/// The OCI image struct (Docker-only fields such as Healthcheck are not part of it).
pub fn image_value(img: &Image) -> Value {
    let c = &img.config;
    let config = Value::Struct {
        type_name: "v1.ImageConfig",
        fields: vec![
            Field::omit("User", "User", Value::str(&c.user)),
            Field::omit("ExposedPorts", "ExposedPorts", empty_set(&c.exposed_ports)),
            Field::omit("Env", "Env", Value::strings(&c.env)),
            Field::omit("Entrypoint", "Entrypoint", Value::strings(&c.entrypoint)),
            Field::omit("Cmd", "Cmd", Value::strings(&c.cmd)),
            Field::omit("Volumes", "Volumes", empty_set(&c.volumes)),
            Field::omit("WorkingDir", "WorkingDir", Value::str(&c.working_dir)),
            Field::omit("Labels", "Labels", Value::string_map(&c.labels)),
            Field::omit("StopSignal", "StopSignal", Value::str(&c.stop_signal)),
            Field::omit("ArgsEscaped", "ArgsEscaped", Value::Bool(c.args_escaped)),
        ],
    };
    let rootfs = Value::Struct {
        type_name: "v1.RootFS",
        fields: vec![
            Field::new("Type", "type", Value::str(&img.rootfs.kind)),
            Field::new("DiffIDs", "diff_ids", Value::strings(&img.rootfs.diff_ids)),
        ],
    };
    let history = if img.history.is_empty() {
        Value::Slice(None)
    } else {
        Value::Slice(Some(img.history.iter().map(history_value).collect()))
    };
    Value::Ptr(Some(Box::new(Value::Struct {
        type_name: "v1.Image",
        fields: vec![
            Field::omit("Created", "created", time_ptr(&img.created)),
            Field::omit("Author", "author", Value::str(&img.author)),
            Field::inline("Platform", platform_value(&img.platform())),
            Field::omit("Config", "config", config),
            Field::new("RootFS", "rootfs", rootfs),
            Field::omit("History", "history", history),
        ],
    })))
}

/// One platform's image with what is attached to it.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// The normalised platform key (`linux/arm64`).
    pub key: String,
    pub image: Image,
    pub provenance: Option<serde_json::Value>,
    pub sboms: Vec<serde_json::Value>,
}

pub fn provenance_value(p: &Option<serde_json::Value>) -> Value {
    Value::Struct {
        type_name: "imagetools.provenanceStub",
        fields: vec![Field::omit(
            "SLSA",
            "SLSA",
            p.clone().map(Value::Json).unwrap_or(Value::Nil),
        )],
    }
}

pub fn sbom_value(s: &[serde_json::Value]) -> Value {
    let (first, rest) = match s.split_first() {
        Some((f, r)) => (Value::Json(f.clone()), r),
        None => (Value::Nil, &[][..]),
    };
    let additional = if rest.is_empty() {
        Value::Slice(None)
    } else {
        Value::Slice(Some(rest.iter().cloned().map(Value::Json).collect()))
    };
    Value::Struct {
        type_name: "imagetools.sbomStub",
        fields: vec![
            Field::omit("SPDX", "SPDX", first),
            Field::omit("AdditionalSPDXs", "AdditionalSPDXs", additional),
        ],
    }
}

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, OciError> {
    serde_json::from_slice(bytes)
        .map_err(|e| OciError::manifest(what.to_string(), format!("invalid JSON: {e}")))
}

/// The config of an image manifest.
pub async fn load_config(store: &Store<'_>, manifest: &ImageManifest) -> Result<Image, OciError> {
    let bytes = store.blob(&manifest.config.digest).await?;
    parse_json(&bytes, &format!("image config {}", manifest.config.digest))
}

/// Annotations naming the image an attestation manifest is about (new name first).
const REFERENCE_DIGEST_KEYS: [&str; 2] =
    ["com.docker.reference.digest", annotation::REFERENCE_DIGEST];

fn is_in_toto(media_type: &str) -> bool {
    media_type == crate::oci::image::media_type::IN_TOTO || is_dsse(media_type)
}

fn is_dsse(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.in-toto.") && media_type.ends_with("+dsse")
}

/// The predicate of an in-toto statement (unwrapping a DSSE envelope if needed).
fn predicate(bytes: &[u8], media_type: &str, what: &str) -> Result<serde_json::Value, OciError> {
    use base64::Engine as _;
    let statement = if is_dsse(media_type) {
        #[derive(serde::Deserialize)]
        struct Envelope {
            payload: String,
        }
        let env: Envelope = parse_json(bytes, what)?;
        base64::engine::general_purpose::STANDARD
            .decode(env.payload)
            .map_err(|_| OciError::manifest(what.to_string(), "DSSE payload is not base64"))?
    } else {
        bytes.to_vec()
    };
    let v: serde_json::Value = parse_json(&statement, what)?;
    Ok(v.get("predicate")
        .cloned()
        .unwrap_or(serde_json::Value::Null))
}

/// What a walk over an index (or a single manifest) finds.
#[derive(Default)]
struct Walk {
    /// normalised platform -> (image manifest digest, manifest)
    images: BTreeMap<String, (String, ImageManifest)>,
    /// image digest -> its attestation manifests
    refs: BTreeMap<String, Vec<ImageManifest>>,
}

async fn walk(
    store: &Store<'_>,
    desc: &Descriptor,
    fetched: Option<&FetchedManifest>,
    out: &mut Walk,
) -> Result<(), OciError> {
    let Some(kind) = crate::oci::MediaType::parse(&desc.media_type) else {
        return Ok(()); // not a manifest: nothing to inspect
    };
    let owned;
    let fetched = match fetched {
        Some(f) => f,
        None => {
            owned = store.manifest(&desc.digest).await?;
            &owned
        }
    };
    match Manifest::parse(&fetched.bytes, kind)? {
        Manifest::Index(idx) => {
            for child in &idx.manifests {
                Box::pin(walk(store, child, None, out)).await?;
            }
        }
        Manifest::Image(m) => {
            if let Some(subject) = REFERENCE_DIGEST_KEYS
                .iter()
                .find_map(|k| desc.annotations.get(*k))
            {
                out.refs.entry(subject.clone()).or_default().push(*m);
                return Ok(());
            }
            let platform = match &desc.platform {
                Some(p) => p.clone(),
                None => load_config(store, &m).await?.platform(),
            };
            let key = if platform.os.is_empty() {
                "unknown".to_string()
            } else {
                platform.normalize().to_string()
            };
            out.images.insert(key, (desc.digest.to_string(), *m));
        }
    }
    Ok(())
}

/// The provenance and SBOM predicates of an image's attestation manifests.
async fn attestations(
    store: &Store<'_>,
    atts: &[ImageManifest],
    want_provenance: bool,
    want_sbom: bool,
) -> Result<(Option<serde_json::Value>, Vec<serde_json::Value>), OciError> {
    let mut provenance = None;
    let mut sboms = Vec::new();
    for att in atts {
        for layer in att.layers.iter().filter(|l| is_in_toto(&l.media_type)) {
            let pt = layer
                .annotations
                .get(annotation::PREDICATE_TYPE)
                .map(String::as_str)
                .unwrap_or("");
            let prov = want_provenance
                && provenance.is_none()
                && pt.starts_with("https://slsa.dev/provenance/");
            let sbom = want_sbom && pt == "https://spdx.dev/Document";
            if !(prov || sbom) {
                continue;
            }
            let what = format!("attestation {}", layer.digest);
            let pred = predicate(&store.blob(&layer.digest).await?, &layer.media_type, &what)?;
            if prov {
                provenance = Some(pred);
            } else {
                sboms.push(pred);
            }
        }
    }
    Ok((provenance, sboms))
}

/// Every image reachable from `top` (attestation manifests attached to their image, not
/// listed), sorted by normalised platform, with provenance and SBOM when asked for.
pub async fn load_images(
    store: &Store<'_>,
    top: &FetchedManifest,
    want_provenance: bool,
    want_sbom: bool,
) -> Result<Vec<PlatformImage>, OciError> {
    let mut found = Walk::default();
    walk(store, &top.descriptor(), Some(top), &mut found).await?;
    let mut out = Vec::new();
    for (key, (digest, m)) in &found.images {
        let image = load_config(store, m).await?;
        let (provenance, sboms) = match found.refs.get(digest) {
            Some(atts) if want_provenance || want_sbom => {
                attestations(store, atts, want_provenance, want_sbom).await?
            }
            _ => (None, Vec::new()),
        };
        out.push(PlatformImage {
            key: key.clone(),
            image,
            provenance,
            sboms,
        });
    }
    Ok(out)
}
