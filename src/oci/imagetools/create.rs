//! `imagetools create`: a new index from existing images and indexes (by reference, digest
//! or descriptor), with `--append`, platform filters and annotations; `--dry-run` prints
//! it, otherwise every referenced manifest is made present in the target repository
//! (cross-repository blob mounts, upload as fallback) before the index is pushed.

use super::model::{load_config, parse_json};
use super::value::marshal_indent as go_json;
use super::Store;
use crate::oci::image::{Descriptor, ImageIndex, Manifest, MediaType};
use crate::oci::registry::{Client, FetchedManifest};
use crate::oci::{transfer, Digest, OciError, Platform, Reference};
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub sources: Vec<String>,
    /// Contents of `-f FILE`s, each a source.
    pub file_sources: Vec<String>,
    pub tags: Vec<String>,
    pub dry_run: bool,
    pub append: bool,
    pub annotations: Vec<String>,
    pub platforms: Vec<String>,
    pub prefer_index: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            sources: Vec::new(),
            file_sources: Vec::new(),
            tags: Vec::new(),
            dry_run: false,
            append: false,
            annotations: Vec::new(),
            platforms: Vec::new(),
            prefer_index: true,
        }
    }
}

/// One source as given: a reference, a digest or a JSON descriptor.
struct Source {
    reference: Option<Reference>,
    /// The descriptor given (digest and JSON sources); filled in when resolved.
    desc: Option<Descriptor>,
}

fn parse_source(s: &str) -> Result<Source, OciError> {
    let fail = |e: String| {
        OciError::invalid(format!(
            "failed to parse source {s:?}, valid sources are digests, references and descriptors: {e}"
        ))
    };
    // used verbatim: a trailing newline after a digest is an error, as in buildx
    match Digest::parse(s) {
        Ok(d) => {
            let desc = Descriptor::new("", d, 0);
            return Ok(Source {
                reference: None,
                desc: Some(desc),
            });
        }
        Err(OciError::InvalidDigest { reason, .. }) if s.starts_with("sha256") => {
            return Err(fail(reason))
        }
        Err(_) => {}
    }
    match Reference::parse(s) {
        Ok(r) => Ok(Source {
            reference: Some(r),
            desc: None,
        }),
        Err(OciError::InvalidReference { reason, .. }) if !s.starts_with('{') => Err(fail(reason)),
        Err(e) if !s.starts_with('{') => Err(e),
        Err(_) => {
            let d: Descriptor = serde_json::from_str(s).map_err(|e| fail(e.to_string()))?;
            Ok(Source {
                reference: None,
                desc: Some(d),
            })
        }
    }
}

/// An `--annotation TYPE[PLATFORM]:KEY=VALUE`.
struct Annotation {
    kind: String,
    platform: Option<Platform>,
    key: String,
    value: String,
}

fn parse_annotation(a: &str) -> Result<Annotation, OciError> {
    let bad = |m: &str| {
        OciError::invalid(format!(
            "failed to parse annotations: invalid annotation {a:?}: {m}"
        ))
    };
    let (left, value) = a.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    let (kind, key) = match left.split_once(':') {
        Some((k, key)) => (k, key),
        None => ("", left),
    };
    let (kind, platform) = match kind.split_once('[') {
        Some((k, rest)) => {
            let p = rest.strip_suffix(']').ok_or_else(|| bad("unclosed ["))?;
            (k, Some(Platform::parse(p)?))
        }
        None => (kind, None),
    };
    if !matches!(
        kind,
        "" | "index" | "index-descriptor" | "manifest" | "manifest-descriptor"
    ) {
        return Err(bad(&format!("unrecognized annotation type {kind:?}")));
    }
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    Ok(Annotation {
        kind: kind.to_string(),
        platform,
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// A resolved source: where it lives, its descriptor and its bytes.
struct Resolved {
    repo: Reference,
    desc: Descriptor,
    fetched: FetchedManifest,
}

/// buildx's `mergeDesc`: what the user gave wins over what the registry says.
fn merge_desc(mut found: Descriptor, given: Option<Descriptor>) -> Result<Descriptor, OciError> {
    let Some(given) = given else { return Ok(found) };
    if given.size != 0 && given.size != found.size {
        return Err(OciError::SizeMismatch {
            digest: found.digest.to_string(),
            given: given.size,
            actual: found.size,
        });
    }
    if !given.media_type.is_empty() {
        found.media_type = given.media_type;
    }
    if !given.annotations.is_empty() {
        found.annotations = given.annotations;
    }
    if given.platform.is_some() {
        found.platform = given.platform;
    }
    Ok(found)
}

/// Fills a manifest source's platform from its config (normalised), as buildx does.
async fn fill_platform(client: &Client, r: &mut Resolved) -> Result<(), OciError> {
    if r.fetched.media_type.is_index() {
        return Ok(());
    }
    let mut p = r.desc.platform.clone().unwrap_or_default();
    if p.os.is_empty() || p.architecture.is_empty() {
        let m: crate::oci::ImageManifest = parse_json(&r.fetched.bytes, "manifest")?;
        let store = Store::Registry {
            client,
            repo: r.repo.clone(),
        };
        let cfg = load_config(&store, &m).await?.platform().normalize();
        if p.architecture.is_empty() {
            p.architecture = cfg.architecture;
            if p.variant.is_empty() {
                p.variant = cfg.variant;
            }
        }
        if p.os.is_empty() {
            p.os = cfg.os;
        }
    }
    r.desc.platform = Some(p);
    Ok(())
}

/// The result of combining: bytes, their media type, and where each manifest comes from.
struct Combined {
    bytes: Vec<u8>,
    media_type: String,
    is_index: bool,
    platform: Option<Platform>,
    sources: Vec<(Digest, Reference)>,
}

fn combine(
    resolved: &[Resolved],
    annotations: &[Annotation],
    prefer_index: bool,
) -> Result<Combined, OciError> {
    if let [only] = resolved {
        if annotations.is_empty() && (only.fetched.media_type.is_index() || !prefer_index) {
            let sources = vec![(only.desc.digest.clone(), only.repo.clone())];
            return Ok(Combined {
                bytes: only.fetched.bytes.clone(),
                media_type: only.desc.media_type.clone(),
                is_index: only.fetched.media_type.is_index(),
                platform: only.desc.platform.clone(),
                sources,
            });
        }
    }
    let mut descs: Vec<Descriptor> = Vec::new();
    let mut sources: Vec<(Digest, Reference)> = Vec::new();
    let mut add = |d: Descriptor, repo: &Reference| {
        match descs.iter_mut().find(|x| x.digest == d.digest) {
            Some(old) => {
                if old.media_type.is_empty() {
                    old.media_type = d.media_type;
                }
                if d.platform.is_some() {
                    old.platform = d.platform;
                }
                old.annotations.extend(d.annotations);
            }
            None => descs.push(d.clone()),
        }
        sources.retain(|(dg, _)| *dg != d.digest);
        sources.push((d.digest, repo.clone()));
    };
    for r in resolved {
        match Manifest::parse(&r.fetched.bytes, r.fetched.media_type)? {
            Manifest::Index(idx) => idx.manifests.into_iter().for_each(|d| add(d, &r.repo)),
            Manifest::Image(_) => add(r.desc.clone(), &r.repo),
        }
    }
    let all_docker = descs
        .iter()
        .all(|d| d.media_type.starts_with("application/vnd.docker."));
    let kind = if all_docker {
        MediaType::DockerList
    } else {
        MediaType::OciIndex
    };
    let mut index = ImageIndex::new(kind);
    if kind == MediaType::OciIndex {
        for a in annotations {
            match a.kind.as_str() {
                "index" => {
                    index.annotations.insert(a.key.clone(), a.value.clone());
                }
                "manifest-descriptor" => {
                    let want = a.platform.as_ref().map(|p| p.normalize().to_string());
                    for d in &mut descs {
                        // the platform is compared as written in the descriptor
                        let applies = match (&want, &d.platform) {
                            (None, _) => true,
                            (Some(w), Some(p)) => *w == p.to_string(),
                            (Some(_), None) => false,
                        };
                        if applies {
                            d.annotations.insert(a.key.clone(), a.value.clone());
                        }
                    }
                }
                "index-descriptor" => {
                    return Err(OciError::invalid(format!(
                        "{:?} annotations are invalid while creating an image",
                        a.kind
                    )))
                }
                other => {
                    return Err(OciError::invalid(format!(
                        "{other:?} annotations are not supported yet"
                    )))
                }
            }
        }
    }
    index.manifests = descs;
    Ok(Combined {
        bytes: go_json(&index)?.into_bytes(),
        media_type: kind.as_str().to_string(),
        is_index: true,
        platform: None,
        sources,
    })
}

/// `-p` filtering of the combined result (attestations follow their subject).
fn filter_platforms(c: Combined, platforms: &[Platform]) -> Result<Combined, OciError> {
    if platforms.is_empty() {
        return Ok(c);
    }
    let matches = |p: &Platform| platforms.iter().any(|f| f.matches(p));
    if !c.is_index {
        let p = c.platform.as_ref().ok_or_else(|| {
            OciError::invalid(
                "cannot filter platforms from a manifest without platform information",
            )
        })?;
        if !matches(p) {
            return Err(OciError::invalid(format!(
                "input platform {p} does not match any of the provided platforms"
            )));
        }
        return Ok(c);
    }
    let mut idx: ImageIndex = parse_json(&c.bytes, "index")?;
    let kept_subject = |digest: &str| {
        idx.manifests
            .iter()
            .find(|m| m.digest.to_string() == digest)
            .is_some_and(|s| s.platform.as_ref().is_none_or(matches))
    };
    let keep: Vec<bool> = idx
        .manifests
        .iter()
        .map(|m| m.attests().is_some_and(kept_subject) || m.platform.as_ref().is_none_or(matches))
        .collect();
    if !keep.contains(&true) {
        return Err(OciError::invalid(
            "none of the manifests match the provided platforms",
        ));
    }
    if keep.iter().all(|k| *k) {
        return Ok(c);
    }
    let mut i = 0;
    idx.manifests.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    Ok(Combined {
        bytes: go_json(&idx)?.into_bytes(),
        ..c
    })
}

/// Runs `imagetools create`. Returns what to print: the new index (dry run) or nothing.
pub async fn create(client: &Client, opts: &CreateOptions) -> Result<Vec<u8>, OciError> {
    if opts.sources.is_empty() && opts.file_sources.is_empty() {
        return Err(OciError::invalid("no sources specified"));
    }
    if !opts.dry_run && opts.tags.is_empty() {
        return Err(OciError::invalid(
            "can't push with no tags specified, please set --tag or --dry-run",
        ));
    }
    let mut args: Vec<String> = opts.file_sources.clone();
    args.extend(opts.sources.iter().cloned());
    let tags = opts
        .tags
        .iter()
        .map(|t| Reference::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if opts.append && !opts.tags.is_empty() {
        args.insert(0, opts.tags[0].clone());
    }
    let platforms = opts
        .platforms
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sources = args
        .iter()
        .map(|s| parse_source(s))
        .collect::<Result<Vec<_>, _>>()?;

    let mut repos = BTreeSet::new();
    repos.extend(tags.iter().map(Reference::name));
    repos.extend(
        sources
            .iter()
            .filter_map(|s| s.reference.as_ref().map(Reference::name)),
    );
    if repos.is_empty() {
        return Err(OciError::invalid(
            "no repositories specified, please set a reference in tag or source",
        ));
    }
    let default_repo = if repos.len() == 1 {
        let t = tags
            .first()
            .or_else(|| sources.iter().find_map(|s| s.reference.as_ref()));
        t.map(|t| Reference::repo(t.registry(), t.repository()))
    } else {
        None
    };

    let mut resolved = Vec::new();
    for (src, text) in sources.into_iter().zip(&args) {
        let target = match (&src.reference, &src.desc) {
            (Some(r), _) => r.clone().with_default_tag(),
            (None, Some(d)) => match &default_repo {
                Some(repo) => repo.at_digest(d.digest.clone()),
                None => {
                    return Err(OciError::invalid(format!(
                        "multiple repositories specified, cannot infer repository for {text:?}"
                    )))
                }
            },
            (None, None) => return Err(OciError::invalid(format!("empty source {text:?}"))),
        };
        let fetched = client.get_manifest(&target).await?;
        let desc = merge_desc(fetched.descriptor(), src.desc)?;
        let repo = Reference::repo(target.registry(), target.repository());
        let mut r = Resolved {
            repo,
            desc,
            fetched,
        };
        fill_platform(client, &mut r).await?;
        resolved.push(r);
    }

    let annotations = opts
        .annotations
        .iter()
        .map(|a| parse_annotation(a))
        .collect::<Result<Vec<_>, _>>()?;
    let combined = filter_platforms(
        combine(&resolved, &annotations, opts.prefer_index)?,
        &platforms,
    )?;
    if opts.dry_run {
        let mut out = combined.bytes;
        out.push(b'\n');
        return Ok(out);
    }
    push(client, &tags, &combined).await?;
    Ok(Vec::new())
}

/// Makes every manifest the result refers to present in each tag's repository, checks
/// that they are, then pushes the result under each tag.
async fn push(client: &Client, tags: &[Reference], c: &Combined) -> Result<(), OciError> {
    let children: Vec<Descriptor> = if c.is_index {
        parse_json::<ImageIndex>(&c.bytes, "index")?.manifests
    } else {
        Vec::new()
    };
    let source_of = |d: &Digest| {
        c.sources
            .iter()
            .find(|(x, _)| x == d)
            .or_else(|| c.sources.first())
            .map(|(_, r)| r.clone())
    };
    for tag in tags {
        let tag = tag.clone().with_default_tag();
        let target = Reference::repo(tag.registry(), tag.repository());
        if c.is_index {
            for d in &children {
                if let Some(from) = source_of(&d.digest) {
                    transfer::copy_manifest(client, &from, &target, &d.digest).await?;
                }
            }
            for d in &children {
                let at = target.at_digest(d.digest.clone());
                if client.head_manifest(&at).await?.is_none() {
                    return Err(OciError::NotFound {
                        reference: at.to_string(),
                    });
                }
            }
        } else if let Some((_, from)) = c.sources.first() {
            transfer::copy_image_blobs(client, from, &target, &c.bytes).await?;
        }
        client.put_manifest(&tag, &c.bytes, &c.media_type).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources_like_buildx() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(parse_source(&d).unwrap().desc.is_some());
        assert!(
            parse_source(&format!("{d}\n")).is_err(),
            "a trailing newline breaks a digest"
        );
        assert!(parse_source("sha256:abc").is_err());
        assert!(parse_source("r.io/a:1").unwrap().reference.is_some());
        let j = format!(
            r#"{{"digest":"{d}","size":3,"platform":{{"os":"linux","architecture":"arm64"}}}}"#
        );
        let s = parse_source(&j).unwrap();
        assert_eq!(s.desc.unwrap().size, 3);
        assert!(parse_source("{not json").is_err());
        assert!(parse_source("Bad//ref").is_err());
    }

    #[test]
    fn parses_annotations() {
        let a = parse_annotation("index:org.opencontainers.image.title=t=x").unwrap();
        assert_eq!(
            (a.kind.as_str(), a.key.as_str(), a.value.as_str()),
            ("index", "org.opencontainers.image.title", "t=x")
        );
        let a = parse_annotation("manifest-descriptor[linux/arm64]:k=v").unwrap();
        assert_eq!(a.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(parse_annotation("k=v").unwrap().kind, "");
        assert!(parse_annotation("nokey").is_err());
        assert!(parse_annotation("bogus:k=v").is_err());
        assert!(parse_annotation("index[linux/arm64:k=v").is_err());
    }

    #[test]
    fn merges_descriptors_given_by_the_user() {
        let d = Digest::sha256(b"m");
        let found = Descriptor::new(MediaType::OciManifest.as_str(), d.clone(), 10);
        let mut given = Descriptor::new("", d, 3);
        assert!(matches!(
            merge_desc(found.clone(), Some(given.clone())),
            Err(OciError::SizeMismatch { .. })
        ));
        given.size = 0;
        given.platform = Some(Platform::new("linux", "arm64", "v8"));
        let m = merge_desc(found, Some(given)).unwrap();
        assert_eq!(m.size, 10);
        assert_eq!(m.platform.unwrap().variant, "v8");
    }
}
