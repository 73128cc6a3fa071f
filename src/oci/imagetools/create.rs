//! `imagetools create`: a new index from existing images and indexes (by reference, digest
//! or descriptor), with `--append`, platform filters and annotations; `--dry-run` prints
//! it, otherwise every referenced manifest is made present in the target repository
//! (cross-repository blob mounts, upload as fallback) before the index is pushed.

use super::model::{load_config, parse_json};
use super::value::json_string;
use super::Store;
use crate::oci::image::{Descriptor, ImageIndex, Manifest, MediaType};
use crate::oci::registry::{Client, FetchedManifest};
use crate::oci::{Digest, OciError, Platform, Reference};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
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

/// One source as given.
enum Source {
    Ref(Reference),
    Digest(Digest),
    Desc(Descriptor),
}

fn parse_source(s: &str) -> Result<Source, OciError> {
    let fail = |e: String| {
        OciError::invalid(format!(
            "failed to parse source {s:?}, valid sources are digests, references and descriptors: {e}"
        ))
    };
    // used verbatim: a trailing newline after a digest is an error, as in buildx
    let t = s;
    if t.trim_start().starts_with('{') {
        let d: Descriptor = serde_json::from_str(t).map_err(|e| fail(e.to_string()))?;
        return Ok(Source::Desc(d));
    }
    let looks_like_digest = t.split_once(':').is_some_and(|(alg, _)| {
        !alg.contains('/') && matches!(alg, "sha256" | "sha384" | "sha512")
    });
    if looks_like_digest {
        return Digest::parse(t).map(Source::Digest).map_err(|e| match e {
            OciError::InvalidDigest { reason, .. } => fail(reason),
            other => other,
        });
    }
    Reference::parse(t).map(Source::Ref).map_err(|e| match e {
        OciError::InvalidReference { reason, .. } => fail(reason),
        other => other,
    })
}

/// A typed `--annotation`: where it goes and the key/value.
struct Annotation {
    kind: String,
    platform: Option<Platform>,
    key: String,
    value: String,
}

fn parse_annotation(a: &str) -> Result<Annotation, OciError> {
    let (left, value) = a.split_once('=').ok_or_else(|| {
        OciError::invalid(format!("invalid annotation {a:?}: expected key=value"))
    })?;
    let (kind, key) = match left.split_once(':') {
        Some((k, key)) if !k.contains('.') => (k.to_string(), key.to_string()),
        _ => (String::new(), left.to_string()),
    };
    let (kind, platform) = match kind.split_once('[') {
        Some((k, rest)) => {
            let p = rest.strip_suffix(']').ok_or_else(|| {
                OciError::invalid(format!("invalid annotation {a:?}: unclosed ["))
            })?;
            (k.to_string(), Some(Platform::parse(p)?))
        }
        None => (kind, None),
    };
    if kind != "index" && kind != "manifest-descriptor" {
        return Err(OciError::invalid(format!(
            "{kind:?} annotations are not supported yet"
        )));
    }
    if key.is_empty() {
        return Err(OciError::invalid(format!(
            "invalid annotation {a:?}: empty key"
        )));
    }
    Ok(Annotation {
        kind,
        platform,
        key,
        value: value.to_string(),
    })
}

/// A descriptor for the new index and the repository it comes from.
struct Entry {
    desc: Descriptor,
    from: Reference,
}

struct Resolved {
    entries: Vec<Entry>,
    /// The only source, when it is a single index or manifest (for carbon copies).
    fetched: Vec<FetchedManifest>,
}

async fn describe_manifest(
    client: &Client,
    repo: &Reference,
    fetched: &FetchedManifest,
) -> Result<Vec<Descriptor>, OciError> {
    match Manifest::parse(&fetched.bytes, fetched.media_type)? {
        Manifest::Index(idx) => Ok(idx.manifests),
        Manifest::Image(m) => {
            let store = Store::Registry {
                client,
                repo: repo.clone(),
            };
            let img = load_config(&store, &m).await?;
            let mut d = fetched.descriptor();
            d.platform = Some(img.platform());
            Ok(vec![d])
        }
    }
}

async fn resolve(
    client: &Client,
    sources: Vec<Source>,
    default_repo: Option<&Reference>,
    raw: &[String],
) -> Result<Resolved, OciError> {
    let mut entries = Vec::new();
    let mut fetched_all = Vec::new();
    for (src, text) in sources.into_iter().zip(raw) {
        let need_repo = || {
            default_repo.cloned().ok_or_else(|| {
                OciError::invalid(format!(
                    "multiple repositories specified, cannot infer repository for {text:?}"
                ))
            })
        };
        match src {
            Source::Ref(r) => {
                let r = r.with_default_tag();
                let fetched = client.get_manifest(&r).await?;
                let repo = Reference::repo(r.registry(), r.repository());
                for desc in describe_manifest(client, &repo, &fetched).await? {
                    entries.push(Entry {
                        desc,
                        from: repo.clone(),
                    });
                }
                fetched_all.push(fetched);
            }
            Source::Digest(d) => {
                let repo = need_repo()?;
                let fetched = client.get_manifest(&repo.at_digest(d)).await?;
                for desc in describe_manifest(client, &repo, &fetched).await? {
                    entries.push(Entry {
                        desc,
                        from: repo.clone(),
                    });
                }
                fetched_all.push(fetched);
            }
            Source::Desc(mut d) => {
                let repo = need_repo()?;
                if d.media_type.is_empty() || d.size == 0 || d.platform.is_none() {
                    let fetched = client
                        .get_manifest(&repo.at_digest(d.digest.clone()))
                        .await?;
                    let actual = fetched.bytes.len() as i64;
                    if d.size != 0 && d.size != actual {
                        return Err(OciError::SizeMismatch {
                            digest: d.digest.to_string(),
                            given: d.size,
                            actual,
                        });
                    }
                    d.size = actual;
                    if d.media_type.is_empty() {
                        d.media_type = fetched.media_type.as_str().to_string();
                    }
                    if d.platform.is_none() && !fetched.media_type.is_index() {
                        if let Some(p) = describe_manifest(client, &repo, &fetched)
                            .await?
                            .pop()
                            .and_then(|x| x.platform)
                        {
                            d.platform = Some(p);
                        }
                    }
                    fetched_all.push(fetched);
                }
                entries.push(Entry {
                    desc: d,
                    from: repo,
                });
            }
        }
    }
    Ok(Resolved {
        entries,
        fetched: fetched_all,
    })
}

/// Serialises like Go's `json.MarshalIndent(v, "", "  ")` (HTML-escaped).
fn go_json<T: serde::Serialize>(v: &T) -> Result<String, OciError> {
    let value =
        serde_json::to_value(v).map_err(|e| OciError::invalid(format!("encoding JSON: {e}")))?;
    let mut out = String::new();
    write_go_json(&mut out, &value, 0);
    Ok(out)
}

fn write_go_json(out: &mut String, v: &serde_json::Value, depth: usize) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(d));
    };
    match v {
        serde_json::Value::String(s) => json_string(out, s),
        serde_json::Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_go_json(out, x, depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        serde_json::Value::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                json_string(out, k);
                out.push_str(": ");
                write_go_json(out, x, depth + 1);
            }
            pad(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Runs `imagetools create`. Returns what to print: the index (dry run) or nothing.
pub async fn create(client: &Client, opts: &CreateOptions) -> Result<Vec<u8>, OciError> {
    let mut raw_sources: Vec<String> = opts.sources.clone();
    raw_sources.extend(opts.file_sources.iter().cloned());
    if raw_sources.is_empty() {
        return Err(OciError::invalid("no sources specified"));
    }
    if !opts.dry_run && opts.tags.is_empty() {
        return Err(OciError::invalid(
            "can't push with no tags specified, please set --tag or --dry-run",
        ));
    }
    let tags = opts
        .tags
        .iter()
        .map(|t| Reference::parse(t).map(Reference::with_default_tag))
        .collect::<Result<Vec<_>, _>>()?;
    let platforms = opts
        .platforms
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let annotations = opts
        .annotations
        .iter()
        .map(|a| parse_annotation(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sources = raw_sources
        .iter()
        .map(|s| parse_source(s))
        .collect::<Result<Vec<_>, _>>()?;
    if opts.append {
        if let Some(first) = tags.first() {
            if client.head_manifest(first).await?.is_none() {
                return Err(OciError::NotFound {
                    reference: first.to_string(),
                });
            }
            sources.insert(0, Source::Ref(first.clone()));
            raw_sources.insert(0, first.to_string());
        }
    }
    // the repository for digest and descriptor sources
    let mut repos: Vec<String> = tags.iter().map(|t| t.name()).collect();
    repos.sort();
    repos.dedup();
    let default_repo = match repos.len() {
        0 => sources.iter().find_map(|s| match s {
            Source::Ref(r) => Some(Reference::repo(r.registry(), r.repository())),
            _ => None,
        }),
        1 => tags
            .first()
            .map(|t| Reference::repo(t.registry(), t.repository())),
        _ => None,
    };
    let single_source = sources.len() == 1;
    let resolved = resolve(client, sources, default_repo.as_ref(), &raw_sources).await?;

    // carbon copy: one source, nothing to change
    let untouched = annotations.is_empty() && platforms.is_empty();
    if single_source && untouched && resolved.fetched.len() == 1 {
        let only = &resolved.fetched[0];
        if only.media_type.is_index() || !opts.prefer_index {
            let from = &resolved.entries.first().map(|e| e.from.clone());
            return finish(
                client,
                opts,
                &tags,
                only.bytes.clone(),
                only.media_type.as_str(),
                &resolved.entries,
                from.as_ref(),
            )
            .await;
        }
    }

    // merge, filter, annotate
    let mut entries: Vec<Entry> = Vec::new();
    for e in resolved.entries {
        if let Some(existing) = entries.iter_mut().find(|x| x.desc.digest == e.desc.digest) {
            for (k, v) in e.desc.annotations {
                existing.desc.annotations.entry(k).or_insert(v);
            }
            continue;
        }
        entries.push(e);
    }
    if !platforms.is_empty() {
        let keep = |d: &Descriptor| {
            d.platform
                .as_ref()
                .is_some_and(|p| platforms.iter().any(|f| f.matches(p)))
        };
        let kept: Vec<String> = entries
            .iter()
            .filter(|e| !e.desc.is_attestation() && keep(&e.desc))
            .map(|e| e.desc.digest.to_string())
            .collect();
        entries.retain(|e| match e.desc.attests() {
            Some(subject) => kept.iter().any(|k| k == subject),
            None => kept.contains(&e.desc.digest.to_string()),
        });
    }
    let mut index_annotations = BTreeMap::new();
    for a in &annotations {
        match a.kind.as_str() {
            "index" => {
                index_annotations.insert(a.key.clone(), a.value.clone());
            }
            _ => {
                for e in entries.iter_mut().filter(|e| !e.desc.is_attestation()) {
                    let applies = match (&a.platform, &e.desc.platform) {
                        (None, _) => true,
                        (Some(want), Some(p)) => want.matches(p),
                        (Some(_), None) => false,
                    };
                    if applies {
                        e.desc.annotations.insert(a.key.clone(), a.value.clone());
                    }
                }
            }
        }
    }
    let all_docker = entries
        .iter()
        .all(|e| MediaType::parse(&e.desc.media_type).is_some_and(MediaType::is_docker));
    let mut index = ImageIndex::new(if all_docker && !entries.is_empty() {
        MediaType::DockerList
    } else {
        MediaType::OciIndex
    });
    index.manifests = entries.iter().map(|e| e.desc.clone()).collect();
    if !all_docker {
        index.annotations = index_annotations;
    } else {
        for m in &mut index.manifests {
            m.annotations.clear();
        }
    }
    let text = go_json(&index)?;
    let mt = index.media_type.clone().unwrap_or_default();
    finish(client, opts, &tags, text.into_bytes(), &mt, &entries, None).await
}

async fn finish(
    client: &Client,
    opts: &CreateOptions,
    tags: &[Reference],
    bytes: Vec<u8>,
    media_type: &str,
    entries: &[Entry],
    carbon_from: Option<&Reference>,
) -> Result<Vec<u8>, OciError> {
    if opts.dry_run {
        let mut out = bytes;
        out.push(b'\n');
        return Ok(out);
    }
    let mut pushed_repos: Vec<String> = Vec::new();
    for tag in tags {
        let target = Reference::repo(tag.registry(), tag.repository());
        if !pushed_repos.contains(&target.name()) {
            // a carbon copy of a single manifest is the manifest itself
            if let (Some(from), Some(MediaType::OciManifest | MediaType::DockerManifest)) =
                (carbon_from, MediaType::parse(media_type))
            {
                copy_manifest_blobs(client, from, &target, &bytes).await?;
            }
            for e in entries {
                ensure_manifest(client, &e.from, &target, &e.desc.digest).await?;
            }
            for e in entries {
                if client
                    .head_manifest(&target.at_digest(e.desc.digest.clone()))
                    .await?
                    .is_none()
                {
                    return Err(OciError::NotFound {
                        reference: target.at_digest(e.desc.digest.clone()).to_string(),
                    });
                }
            }
            pushed_repos.push(target.name());
        }
        client.put_manifest(tag, &bytes, media_type).await?;
    }
    Ok(Vec::new())
}

/// Copies the blobs a manifest refers to into `to` (mount first, upload as fallback).
pub async fn copy_manifest_blobs(
    client: &Client,
    from: &Reference,
    to: &Reference,
    bytes: &[u8],
) -> Result<(), OciError> {
    let m: crate::oci::ImageManifest = parse_json(bytes, "manifest")?;
    let mut blobs = vec![m.config.clone()];
    blobs.extend(m.layers.iter().cloned());
    for b in blobs {
        if client.blob_exists(to, &b.digest).await?.is_some() {
            continue;
        }
        if client.mount_blob(to, from, &b.digest).await? {
            continue;
        }
        let tmp = tempfile_path(&b.digest)?;
        client.blob_to_file(from, &b.digest, &tmp).await?;
        let res = client.push_blob_file(to, &b.digest, &tmp).await;
        let _ = std::fs::remove_file(&tmp);
        res?;
    }
    Ok(())
}

fn tempfile_path(d: &Digest) -> Result<std::path::PathBuf, OciError> {
    let dir = std::env::temp_dir().join(format!("kiln-blob-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
    Ok(dir.join(d.encoded()))
}

/// Makes the manifest `digest` (from `from`) present in `to`, children and blobs first.
async fn ensure_manifest(
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
                Box::pin(ensure_manifest(client, from, to, &d.digest)).await?;
            }
        }
        Manifest::Image(_) => copy_manifest_blobs(client, from, to, &fetched.bytes).await?,
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
