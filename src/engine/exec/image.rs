//! Assembling the result: the image config (the plan's, with the layers' diff IDs and
//! timestamps), the manifest, and for multi-platform builds the index.

use super::BuildError;
use crate::engine::export::ImageBlobs;
use crate::engine::plan::Plan;
use crate::engine::store::{LayerRef, Store};
use crate::oci::image::{
    to_canonical_json, Descriptor, ImageIndex, ImageManifest, MediaType, RootFs,
};
use crate::oci::{Digest, Platform};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";

/// The image of a plan's target stage built from `layers`.
/// `built` is when the newest step was first built (0 if the stage has no steps). `oci`:
/// OCI media types (the default), else Docker's (`oci-mediatypes=false`).
pub fn assemble(
    store: &Store,
    plan: &Plan,
    layers: &[LayerRef],
    built: i64,
    oci: bool,
) -> Result<ImageBlobs, BuildError> {
    let mut img = plan.image.clone();
    img.rootfs = RootFs {
        kind: "layers".into(),
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
    };
    let created = match plan.epoch {
        Some(e) => crate::engine::config::rfc3339(e),
        None if built > 0 => crate::engine::config::rfc3339(built),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            crate::engine::config::rfc3339(now)
        }
    };
    if img.created.is_none() {
        img.created = Some(created.clone());
    }
    for h in &mut img.history {
        if h.created.is_none() {
            h.created = Some(created.clone());
        }
    }
    // Layers no instruction accounts for (a stage FROM a named context that is a
    // directory): as BuildKit's exporter does, history entries are appended for them so
    // that the non-empty entries match the layers.
    let described = img.history.iter().filter(|h| !h.empty_layer).count();
    for _ in described..layers.len() {
        img.history.push(crate::oci::image::History {
            created: Some(created.clone()),
            created_by: "named context (local directory)".into(),
            comment: "buildkit.exporter.image.v0".into(),
            ..Default::default()
        });
    }
    let config = to_canonical_json(&img)?;
    let config_desc = Descriptor::new(
        if oci {
            CONFIG_MEDIA_TYPE
        } else {
            DOCKER_CONFIG_MEDIA_TYPE
        },
        Digest::sha256(&config),
        config.len() as i64,
    );
    let mut descs = Vec::new();
    let mut files = Vec::new();
    for l in layers {
        let d = Digest::parse(&l.digest)?;
        descs.push(Descriptor::new(
            crate::engine::layer::layer_media_type(&l.media_type, oci),
            d.clone(),
            l.size as i64,
        ));
        files.push((d, store.path(&l.digest)?));
    }
    let kind = if oci {
        MediaType::OciManifest
    } else {
        MediaType::DockerManifest
    };
    let manifest = ImageManifest::new(kind, config_desc, descs);
    let manifest_bytes = to_canonical_json(&manifest)?;
    let p = img.platform();
    Ok(ImageBlobs {
        platform: Platform::new(&p.os, &p.architecture, &p.variant),
        manifest: manifest_bytes,
        manifest_media_type: kind.as_str().to_string(),
        config,
        layers: files,
    })
}

/// The OCI index listing each platform's manifest.
pub fn index(images: &[ImageBlobs], oci: bool) -> Result<Vec<u8>, BuildError> {
    let mut ix = ImageIndex::new(if oci {
        MediaType::OciIndex
    } else {
        MediaType::DockerList
    });
    ix.manifests = images
        .iter()
        .map(ImageBlobs::descriptor)
        .collect::<Vec<Descriptor>>();
    Ok(to_canonical_json(&ix)?)
}
