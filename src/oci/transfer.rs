//! Moving images: resolve a reference to one platform's image, pull it into an OCI layout
//! (blobs streamed and verified), push an image or index from a layout (blobs checked with
//! HEAD first, mounted from other repositories when possible, uploaded otherwise, a bounded
//! number in parallel; an index is pushed only after every manifest it lists is present).

use super::image::{Descriptor, Image, ImageManifest, Manifest};
use super::layout::Layout;
use super::registry::Client;
use super::{Digest, OciError, Platform, Reference};
use futures_util::StreamExt as _;

/// Blobs transferred at the same time.
pub const PARALLEL_BLOBS: usize = 4;

/// Runs the futures, at most [`PARALLEL_BLOBS`] at a time; the first error wins.
async fn all_ok<F>(futures: impl Iterator<Item = F>) -> Result<(), OciError>
where
    F: std::future::Future<Output = Result<(), OciError>>,
{
    let results: Vec<Result<(), OciError>> = futures_util::stream::iter(futures)
        .buffer_unordered(PARALLEL_BLOBS)
        .collect()
        .await;
    results.into_iter().collect()
}

/// One platform's image as found in a registry.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `registry/repository@digest` of the image manifest.
    pub reference: Reference,
    /// The image manifest's descriptor (platform set).
    pub descriptor: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    pub config_bytes: Vec<u8>,
    pub config: Image,
}

/// Resolves `r` to the image for `platform`: an index is narrowed to its best match
/// (exact first, then compatible variants); a single manifest must match.
pub async fn resolve_image(
    client: &Client,
    r: &Reference,
    platform: &Platform,
) -> Result<ResolvedImage, OciError> {
    let r = r.clone().with_default_tag();
    let top = client.get_manifest(&r).await?;
    let (fetched, reference, mut descriptor) = match Manifest::parse(&top.bytes, top.media_type)? {
        Manifest::Index(idx) => {
            let d = idx.select(platform).ok_or_else(|| {
                let have: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter(|d| !d.is_attestation())
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                OciError::invalid(format!(
                    "{r}: no image for {platform} (the index has: {})",
                    if have.is_empty() {
                        "no platforms".to_string()
                    } else {
                        have.join(", ")
                    }
                ))
            })?;
            let at = r.at_digest(d.digest.clone());
            (client.get_manifest(&at).await?, at, d.clone())
        }
        Manifest::Image(_) => {
            let at = r.at_digest(top.digest.clone());
            let d = top.descriptor();
            (top, at, d)
        }
    };
    let manifest: ImageManifest = match Manifest::parse(&fetched.bytes, fetched.media_type)? {
        Manifest::Image(m) => *m,
        Manifest::Index(_) => {
            return Err(OciError::manifest(
                reference.to_string(),
                "nested index where an image was expected",
            ))
        }
    };
    let repo = Reference::repo(r.registry(), r.repository());
    let config_bytes = client.get_blob(&repo, &manifest.config.digest).await?;
    let config: Image = serde_json::from_slice(&config_bytes).map_err(|e| {
        OciError::manifest(
            format!("image config of {reference}"),
            format!("invalid JSON: {e}"),
        )
    })?;
    let found = config.platform();
    if descriptor.platform.is_none() {
        if !platform.matches(&found) && platform.match_rank(&found).is_none() {
            return Err(OciError::invalid(format!(
                "{r}: the image is for {found}, not {platform}"
            )));
        }
        descriptor.platform = Some(found);
    }
    Ok(ResolvedImage {
        reference,
        descriptor,
        manifest_bytes: fetched.bytes,
        manifest,
        config_bytes,
        config,
    })
}

/// Pulls one platform's image into `layout` (tagged `tag` in its index.json when given)
/// and returns the manifest descriptor. Blobs already in the layout are not fetched again.
pub async fn pull_to_layout(
    client: &Client,
    r: &Reference,
    platform: &Platform,
    layout: &Layout,
    tag: Option<&str>,
) -> Result<ResolvedImage, OciError> {
    let img = resolve_image(client, r, platform).await?;
    let repo = Reference::repo(r.registry(), r.repository());
    let downloads = img.manifest.layers.iter().cloned().map(|layer| {
        let repo = repo.clone();
        async move {
            let path = layout.blob_path(&layer.digest);
            if path.exists() {
                return Ok(());
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
            }
            client
                .blob_to_file(&repo, &layer.digest, &path)
                .await
                .map(|_| ())
        }
    });
    all_ok(downloads).await?;
    layout.write_blob(&img.config_bytes)?;
    layout.write_blob(&img.manifest_bytes)?;
    layout.add_to_index(img.descriptor.clone(), tag)?;
    Ok(img)
}

/// Pushes one blob from the layout: present already, mounted, or uploaded from disk.
async fn push_blob(
    client: &Client,
    layout: &Layout,
    target: &Reference,
    mount_from: &[Reference],
    d: &Descriptor,
) -> Result<(), OciError> {
    if client.blob_exists(target, &d.digest).await?.is_some() {
        return Ok(());
    }
    for from in mount_from {
        if client.mount_blob(target, from, &d.digest).await? {
            return Ok(());
        }
    }
    client
        .push_blob_file(target, &d.digest, &layout.blob_path(&d.digest))
        .await
}

/// Pushes `desc` from `layout` with its children and blobs first; the manifest itself goes
/// in last, under `as_tag` when given (the registry then has it by digest too), else by
/// digest.
async fn push_manifest(
    client: &Client,
    layout: &Layout,
    target: &Reference,
    mount_from: &[Reference],
    desc: &Descriptor,
    as_tag: Option<&str>,
) -> Result<(), OciError> {
    let fetched = layout.manifest(&desc.digest)?;
    match Manifest::parse(&fetched.bytes, fetched.media_type)? {
        Manifest::Index(idx) => {
            for child in &idx.manifests {
                Box::pin(push_manifest(
                    client, layout, target, mount_from, child, None,
                ))
                .await?;
            }
            for child in &idx.manifests {
                let at = target.at_digest(child.digest.clone());
                if client.head_manifest(&at).await?.is_none() {
                    return Err(OciError::NotFound {
                        reference: at.to_string(),
                    });
                }
            }
        }
        Manifest::Image(m) => {
            let mut blobs = vec![m.config.clone()];
            blobs.extend(m.layers.iter().cloned());
            let uploads = blobs
                .into_iter()
                .map(|b| async move { push_blob(client, layout, target, mount_from, &b).await });
            all_ok(uploads).await?;
        }
    }
    let at = match as_tag {
        Some(tag) => target.with_tag(tag),
        None => target.at_digest(desc.digest.clone()),
    };
    client
        .put_manifest(&at, &fetched.bytes, fetched.media_type.as_str())
        .await?;
    Ok(())
}

/// Pushes the image or index `desc` from `layout` to `target` (its tag, else by digest).
/// Blobs are mounted from `mount_from` repositories of the same registry when possible.
/// Children and blobs go first; the tag moves only when all of it is present, so a
/// failed push leaves the old tag where it was. When the tag already names this very
/// manifest nothing is sent (the registry holds a manifest only with everything it
/// references).
pub async fn push_from_layout(
    client: &Client,
    layout: &Layout,
    desc: &Descriptor,
    target: &Reference,
    mount_from: &[Reference],
) -> Result<Digest, OciError> {
    let repo = Reference::repo(target.registry(), target.repository());
    if let Some(tag) = target.tag() {
        // A failed look (say, a registry that answers HEAD oddly) just means: push.
        let current = client
            .head_manifest(&repo.with_tag(tag))
            .await
            .ok()
            .flatten();
        if current.is_some_and(|c| c.digest == desc.digest) {
            return Ok(desc.digest.clone());
        }
    }
    push_manifest(client, layout, &repo, mount_from, desc, target.tag()).await?;
    Ok(desc.digest.clone())
}

/// Copies one blob between repositories: present already, mounted (same registry), or
/// streamed through a temporary file (memory stays flat).
pub async fn copy_blob(
    client: &Client,
    from: &Reference,
    to: &Reference,
    digest: &Digest,
) -> Result<(), OciError> {
    if client.blob_exists(to, digest).await?.is_some()
        || client.mount_blob(to, from, digest).await?
    {
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("kiln-blob-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(digest.encoded());
    let res = match client.blob_to_file(from, digest, &tmp).await {
        Ok(_) => client.push_blob_file(to, digest, &tmp).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&dir); // only when empty: other transfers may use it
    res
}

/// Copies the config and layers of the image manifest `bytes` from `from` to `to`.
pub async fn copy_image_blobs(
    client: &Client,
    from: &Reference,
    to: &Reference,
    bytes: &[u8],
) -> Result<(), OciError> {
    let m: ImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| OciError::manifest("manifest", format!("invalid JSON: {e}")))?;
    let blobs: Vec<Digest> = std::iter::once(&m.config)
        .chain(m.layers.iter())
        .map(|d| d.digest.clone())
        .collect();
    all_ok(
        blobs
            .into_iter()
            .map(|d| async move { copy_blob(client, from, to, &d).await }),
    )
    .await
}

/// Makes the manifest or index `digest` of `from` present in `to`: children and blobs
/// first, the manifest itself (by digest) last.
pub async fn copy_manifest(
    client: &Client,
    from: &Reference,
    to: &Reference,
    digest: &Digest,
) -> Result<(), OciError> {
    if client
        .head_manifest(&to.at_digest(digest.clone()))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let fetched = client.get_manifest(&from.at_digest(digest.clone())).await?;
    match Manifest::parse(&fetched.bytes, fetched.media_type)? {
        Manifest::Index(idx) => {
            for d in &idx.manifests {
                Box::pin(copy_manifest(client, from, to, &d.digest)).await?;
            }
        }
        Manifest::Image(_) => copy_image_blobs(client, from, to, &fetched.bytes).await?,
    }
    client
        .put_manifest(
            &to.at_digest(digest.clone()),
            &fetched.bytes,
            fetched.media_type.as_str(),
        )
        .await?;
    Ok(())
}
