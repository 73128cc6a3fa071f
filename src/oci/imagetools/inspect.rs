//! `imagetools inspect`: the human output (Go tabwriter layout of buildx), `--raw` and
//! `--format` templates.

use super::model::{
    self, descriptor_value, image_value, index_value, provenance_value, sbom_value,
};
use super::tabwriter::TabWriter;
use super::template::Template;
use super::value::{Field, Value};
use super::{parse_layout_ref, Store};
use crate::oci::image::{ImageIndex, Manifest};
use crate::oci::layout::Layout;
use crate::oci::registry::{Client, FetchedManifest};
use crate::oci::{OciError, Reference};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    pub raw: bool,
    pub format: Option<String>,
}

/// The human listing of a manifest or index.
pub fn human(
    name: &str,
    child_base: &str,
    fetched: &FetchedManifest,
    index: Option<&ImageIndex>,
) -> String {
    let mut w = TabWriter::new();
    w.write(&format!("Name:\t{name}\n"));
    w.write(&format!("MediaType:\t{}\n", fetched.media_type.as_str()));
    w.write(&format!("Digest:\t{}\n", fetched.digest));
    if let Some(idx) = index {
        w.write("\t\n");
        w.write("Manifests:\t\n");
        w.flush();
        for (i, m) in idx.manifests.iter().enumerate() {
            if i > 0 {
                w.write("\t\n");
            }
            w.write(&format!("  Name:\t{child_base}@{}\n", m.digest));
            w.write(&format!("  MediaType:\t{}\n", m.media_type));
            let Some(p) = &m.platform else { continue };
            w.write(&format!("  Platform:\t{p}\n"));
            if !p.os_version.is_empty() {
                w.write(&format!("  OSVersion:\t{}\n", p.os_version));
            }
            if !p.os_features.is_empty() {
                w.write(&format!("  OSFeatures:\t{}\n", p.os_features.join(", ")));
            }
            if !m.urls.is_empty() {
                w.write(&format!("  URLs:\t{}\n", m.urls.join(", ")));
            }
            if !m.annotations.is_empty() {
                w.write("  Annotations:\t\n");
                w.flush();
                for (k, v) in &m.annotations {
                    w.write(&format!("    {k}:\t{v}\n"));
                }
                w.flush();
            }
        }
    }
    w.finish()
}

/// Inspects `input` (a registry reference or `oci-layout://PATH@DIGEST`) and returns the
/// bytes to print.
pub async fn inspect(
    client: &Client,
    input: &str,
    opts: &InspectOptions,
) -> Result<Vec<u8>, OciError> {
    if opts.raw && opts.format.as_deref().is_some_and(|f| !f.is_empty()) {
        return Err(OciError::invalid("format and raw cannot be used together"));
    }
    let (store, fetched, name, child_base) =
        if let Some((path, tag, digest)) = parse_layout_ref(input) {
            let layout = Layout::open(&path)?;
            let digest = match (digest, tag) {
                (Some(d), _) => d,
                (None, Some(t)) => layout.resolve(&t)?.digest,
                (None, None) => layout.resolve("latest")?.digest,
            };
            let fetched = layout.manifest(&digest)?;
            let base = format!("oci-layout://{path}");
            let name = format!("{base}@{digest}");
            (Store::Layout(layout), fetched, name, base)
        } else {
            let r = Reference::parse(input)?.with_default_tag();
            let fetched = client.get_manifest(&r).await?;
            let mut base = r.name();
            if let Some(t) = r.tag() {
                base = format!("{base}:{t}");
            }
            let name = r.to_string();
            let repo = Reference::repo(r.registry(), r.repository());
            (Store::Registry { client, repo }, fetched, name, base)
        };
    if opts.raw {
        return Ok(fetched.bytes);
    }
    let manifest = Manifest::parse(&fetched.bytes, fetched.media_type)?;
    let index = match &manifest {
        Manifest::Index(i) => Some(i.as_ref()),
        Manifest::Image(_) => None,
    };
    let template = match opts.format.as_deref() {
        None | Some("") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let template = match template {
        Some(t) if !t.is_single_field("Manifest") => t,
        _ => return Ok(human(&name, &child_base, &fetched, index).into_bytes()),
    };
    let format = opts.format.as_deref().unwrap_or("");
    let want_prov = format.contains("Provenance");
    let want_sbom = format.contains("SBOM");
    let input_value =
        template_input(&store, input, &fetched, &manifest, want_prov, want_sbom).await?;
    Ok(template.execute(&input_value)?.into_bytes())
}

/// buildx's `tplInput`: Name, Manifest, Image, and Provenance/SBOM when asked for.
async fn template_input(
    store: &Store<'_>,
    input: &str,
    fetched: &FetchedManifest,
    manifest: &Manifest,
    want_prov: bool,
    want_sbom: bool,
) -> Result<Value, OciError> {
    let manifest_v = match manifest {
        Manifest::Index(idx) => index_value(idx, fetched),
        Manifest::Image(_) => descriptor_value(&fetched.descriptor()),
    };
    let images = model::load_images(store, fetched, want_prov, want_sbom).await?;
    // one platform: the values themselves; several: maps keyed by platform
    let (image, prov, sbom) = if images.len() <= 1 {
        match images.first() {
            Some(single) => (
                image_value(&single.image),
                provenance_value(&single.provenance),
                sbom_value(&single.sboms),
            ),
            None => (Value::Ptr(None), provenance_value(&None), sbom_value(&[])),
        }
    } else {
        let mut im = BTreeMap::new();
        let mut pm = BTreeMap::new();
        let mut sm = BTreeMap::new();
        for pi in &images {
            im.insert(pi.key.clone(), image_value(&pi.image));
            if pi.provenance.is_some() {
                pm.insert(pi.key.clone(), provenance_value(&pi.provenance));
            }
            if !pi.sboms.is_empty() {
                sm.insert(pi.key.clone(), sbom_value(&pi.sboms));
            }
        }
        let map = |m: BTreeMap<String, Value>| Value::Map {
            entries: Some(m),
            iface: true,
        };
        (map(im), map(pm), map(sm))
    };
    Ok(Value::Struct {
        type_name: "imagetools.tplInput",
        fields: vec![
            Field::new("Name", "name", Value::str(input)),
            Field::new("Manifest", "manifest", manifest_v),
            Field::omit("Image", "image", image),
            Field::omit(
                "Provenance",
                "provenance",
                if want_prov { prov } else { Value::Nil },
            ),
            Field::omit("SBOM", "sbom", if want_sbom { sbom } else { Value::Nil }),
        ],
    })
}
