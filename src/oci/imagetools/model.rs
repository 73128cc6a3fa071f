//! The data behind `--format`: descriptors, indexes, image configs, provenance and SBOM
//! attestations as Go values shaped like buildx's template input.

use super::value::{Field, Value};
use super::Store;
use crate::oci::image::{
    annotation, Descriptor, History, Image, ImageIndex, ImageManifest, Manifest,
};
use crate::oci::registry::FetchedManifest;
use crate::oci::{Digest, OciError, Platform};
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
            Field::new(
                "MediaType",
                "mediaType",
                Value::str(fetched.media_type.as_str()),
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

pub async fn load_image_manifest(
    store: &Store<'_>,
    digest: &Digest,
) -> Result<ImageManifest, OciError> {
    let m = store.manifest(digest).await?;
    match Manifest::parse(&m.bytes, m.media_type)? {
        Manifest::Image(im) => Ok(*im),
        Manifest::Index(_) => Err(OciError::manifest(
            format!("manifest {digest}"),
            "expected an image manifest, found an index",
        )),
    }
}

/// Reads the in-toto statements of an attestation manifest: (provenance, SBOMs).
pub async fn load_attestation(
    store: &Store<'_>,
    att: &Descriptor,
    want_provenance: bool,
    want_sbom: bool,
) -> Result<(Option<serde_json::Value>, Vec<serde_json::Value>), OciError> {
    let m = load_image_manifest(store, &att.digest).await?;
    let mut provenance = None;
    let mut sboms = Vec::new();
    for layer in &m.layers {
        let pt = layer
            .annotations
            .get(annotation::PREDICATE_TYPE)
            .map(String::as_str)
            .unwrap_or("");
        let is_prov = pt.starts_with("https://slsa.dev/provenance/");
        let is_sbom = pt == "https://spdx.dev/Document";
        if !((is_prov && want_provenance && provenance.is_none()) || (is_sbom && want_sbom)) {
            continue;
        }
        let bytes = store.blob(&layer.digest).await?;
        let stmt: serde_json::Value = parse_json(&bytes, &format!("attestation {}", layer.digest))?;
        let pred = stmt
            .get("predicate")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if is_prov {
            provenance = Some(pred);
        } else {
            sboms.push(pred);
        }
    }
    Ok((provenance, sboms))
}

/// The images of an index (attestations skipped), with their attestations if asked for.
pub async fn load_index_images(
    store: &Store<'_>,
    idx: &ImageIndex,
    want_provenance: bool,
    want_sbom: bool,
) -> Result<Vec<PlatformImage>, OciError> {
    let mut out = Vec::new();
    for d in idx.manifests.iter().filter(|d| !d.is_attestation()) {
        let m = load_image_manifest(store, &d.digest).await?;
        let image = load_config(store, &m).await?;
        let platform = d.platform.clone().unwrap_or_else(|| image.platform());
        let key = platform.normalize().to_string();
        let mut pi = PlatformImage {
            key,
            image,
            provenance: None,
            sboms: Vec::new(),
        };
        if want_provenance || want_sbom {
            let digest = d.digest.to_string();
            if let Some(att) = idx
                .manifests
                .iter()
                .find(|a| a.attests() == Some(digest.as_str()))
            {
                let (p, s) = load_attestation(store, att, want_provenance, want_sbom).await?;
                pi.provenance = p;
                pi.sboms = s;
            }
        }
        out.push(pi);
    }
    Ok(out)
}
