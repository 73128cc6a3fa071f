//! The embedded driver: builds resolved bake targets with kiln's engine, dependencies
//! (`contexts = { x = "target:y" }`) first, and delivers each target's outputs.

use crate::bake::model::Target;
use crate::bake::resolve::Resolved;
use crate::engine::exec::{BuildError, BuildOptions, Engine};
use crate::engine::plan::{BuildRequest, NamedContext};
use crate::engine::{export, output};
use crate::oci::Platform;
use crate::progress::{Event, Sink};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one target produced.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub name: String,
    /// Digest of the image or index.
    pub digest: Option<String>,
    /// One line per delivered output.
    pub outputs: Vec<String>,
}

/// Builds `order` (dependencies before users) from `resolved`.
pub fn build_all(
    engine: &Engine,
    resolved: &Resolved,
    order: &[String],
    sink: &dyn Sink,
) -> Result<Vec<TargetResult>, BuildError> {
    // In the store, which the unprivileged RUN executor leaves alone.
    let scratch = tempfile::tempdir_in(engine.store.tmp_dir())
        .map_err(|e| BuildError::Other(format!("creating a temporary directory: {e}")))?;
    let mut layouts: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut results = Vec::new();
    for name in order {
        let Some(t) = resolved.targets.get(name) else {
            continue;
        };
        sink.event(&Event::Info {
            message: format!("building target {name}"),
        });
        let opts = options_for(t, &layouts, scratch.path())?;
        let x = engine.build(&opts, sink)?;
        // Keep every result as an OCI layout so dependent targets can use it as a context.
        let dir = scratch.path().join(format!("target-{name}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BuildError::Other(format!("{}: {e}", dir.display())))?;
        export::write_oci_dir_linked(&x, &["latest".to_string()], &dir)
            .map_err(|e| BuildError::Other(e.to_string()))?;
        layouts.insert(name.clone(), dir);
        let outputs = t.output.clone().unwrap_or_default();
        let tags = t.tags.clone().unwrap_or_default();
        let docker_host = std::env::var("DOCKER_HOST").ok();
        let lines = output::deliver(&x, &outputs, &tags, docker_host.as_deref())
            .map_err(|e| BuildError::Other(format!("target {name}: {e}")))?;
        for l in &lines {
            sink.event(&Event::Info {
                message: format!("{name}: {l}"),
            });
        }
        results.push(TargetResult {
            name: name.clone(),
            digest: x.root_descriptor().map(|d| d.digest.to_string()),
            outputs: lines,
        });
    }
    Ok(results)
}

/// The engine's options for one target.
fn options_for(
    t: &Target,
    built: &BTreeMap<String, PathBuf>,
    scratch: &Path,
) -> Result<BuildOptions, BuildError> {
    let context = PathBuf::from(t.context.as_deref().unwrap_or("."));
    let dockerfile = match &t.dockerfile_inline {
        Some(text) => {
            let p = scratch.join(format!("Dockerfile.{}", t.name));
            std::fs::write(&p, text)
                .map_err(|e| BuildError::Other(format!("{}: {e}", p.display())))?;
            p
        }
        None => {
            let d = PathBuf::from(t.dockerfile.as_deref().unwrap_or("Dockerfile"));
            if d.is_absolute() {
                d
            } else {
                context.join(d)
            }
        }
    };
    let mut platforms = Vec::new();
    for p in t.platforms.iter().flatten() {
        platforms.push(
            Platform::parse(p)
                .map_err(|e| BuildError::Other(format!("target {}: {e}", t.name)))?
                .normalize(),
        );
    }
    let mut req = BuildRequest::new(Platform::host());
    for (k, v) in t.args.iter().flatten() {
        if let Some(v) = v {
            req.build_args.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in t.labels.iter().flatten() {
        if let Some(v) = v {
            req.labels.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in t.contexts.iter().flatten() {
        let nc = match v.strip_prefix("target:") {
            Some(dep) => {
                let dir = built.get(dep).ok_or_else(|| {
                    BuildError::Other(format!(
                        "target {}: context {k} needs target {dep}, which was not built",
                        t.name
                    ))
                })?;
                NamedContext::OciLayout(format!("oci-layout://{}:latest", dir.display()))
            }
            None => NamedContext::parse(v),
        };
        req.named_contexts.insert(k.clone(), nc);
    }
    req.target = t.target.clone();
    req.no_cache_filter = t.no_cache_filter.clone().unwrap_or_default();
    let epoch = req
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.parse::<i64>().ok());
    let outputs = t.output.clone().unwrap_or_default();
    let (layer, force_compression) = crate::engine::output::layer_options(&outputs, epoch)
        .map_err(|e| BuildError::Other(format!("target {}: {e}", t.name)))?;
    Ok(BuildOptions {
        ssh: t.ssh.clone().unwrap_or_default(),
        secrets: t.secret.clone().unwrap_or_default(),
        allow: t.entitlements.clone().unwrap_or_default(),
        context,
        dockerfile,
        platforms,
        request: req,
        no_cache: t.no_cache.unwrap_or(false),
        layer,
        force_compression,
    })
}
