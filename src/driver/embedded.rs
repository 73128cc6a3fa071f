//! The embedded driver: builds resolved bake targets with kiln's engine, in parallel where
//! the graph allows. A target starts as soon as every target it uses as a context
//! (`contexts = { x = "target:y" }`) is done, at most [`default_parallelism`] at a time;
//! each finished target is kept as an OCI layout for its users and its outputs are
//! delivered. When a target fails, the others are cancelled (buildx's default,
//! fail-fast): nothing more starts, running RUN steps are killed, and the error names the
//! target.

use crate::bake::model::Target;
use crate::bake::resolve::Resolved;
use crate::engine::exec::{BuildError, BuildOptions, Engine};
use crate::engine::plan::{BuildRequest, NamedContext};
use crate::engine::remote_context::{self, RemoteContexts};
use crate::engine::{export, output};
use crate::oci::image::Descriptor;
use crate::oci::Platform;
use crate::progress::{Event, Sink};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What one target produced.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub name: String,
    /// Digest of the image or index.
    pub digest: Option<String>,
    /// The image's or index's descriptor (for `--metadata-file`).
    pub descriptor: Option<Descriptor>,
    /// One line per delivered output.
    pub outputs: Vec<String>,
}

/// How many targets build at the same time by default: the number of CPUs (buildx has
/// no client-side limit; BuildKit schedules everything it is sent).
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Where the scheduler is.
#[derive(Default)]
struct Sched {
    /// OCI layouts of the targets built so far.
    layouts: BTreeMap<String, PathBuf>,
    started: BTreeSet<String>,
    running: usize,
    results: Vec<TargetResult>,
    /// The first target that failed and its error.
    failed: Option<(String, BuildError)>,
}

/// Builds `order` (dependencies before users) from `resolved`, with the default
/// parallelism.
pub fn build_all(
    engine: &Engine,
    resolved: &Resolved,
    order: &[String],
    sink: &dyn Sink,
) -> Result<Vec<TargetResult>, BuildError> {
    build_all_with(engine, resolved, order, sink, default_parallelism())
}

/// Builds `order` with at most `parallelism` targets at a time; results come in `order`.
pub fn build_all_with(
    engine: &Engine,
    resolved: &Resolved,
    order: &[String],
    sink: &dyn Sink,
    parallelism: usize,
) -> Result<Vec<TargetResult>, BuildError> {
    // In the store, which the unprivileged RUN executor leaves alone.
    let scratch = tempfile::tempdir_in(engine.store.tmp_dir())
        .map_err(|e| BuildError::Other(format!("creating a temporary directory: {e}")))?;
    let names: Vec<&String> = order
        .iter()
        .filter(|n| resolved.targets.contains_key(*n))
        .collect();
    let deps: HashMap<&str, Vec<&str>> = names
        .iter()
        .map(|n| {
            let t = &resolved.targets[*n];
            let d = crate::bake::graph::deps(t)
                .into_iter()
                .filter(|d| resolved.targets.contains_key(*d) && *d != n.as_str())
                .collect();
            (n.as_str(), d)
        })
        .collect();
    // buildx labels steps with the target only when there is more than one.
    let label = names.len() > 1;
    let ids = AtomicU64::new(0);
    let state = Mutex::new(Sched::default());
    let changed = Condvar::new();
    let parallelism = parallelism.max(1);
    let scratch_dir = scratch.path();
    std::thread::scope(|scope| {
        let mut guard = lock(&state);
        loop {
            if guard.failed.is_none() {
                for name in &names {
                    if guard.running >= parallelism {
                        break;
                    }
                    let ready = !guard.started.contains(*name)
                        && deps[name.as_str()]
                            .iter()
                            .all(|d| guard.layouts.contains_key(*d));
                    if !ready {
                        continue;
                    }
                    guard.started.insert((*name).clone());
                    guard.running += 1;
                    let built = guard.layouts.clone();
                    let (state, changed, ids) = (&state, &changed, &ids);
                    let t = &resolved.targets[*name];
                    scope.spawn(move || {
                        let target_sink = TargetSink::new(sink, ids, label.then_some(&t.name));
                        let outcome = build_one(engine, t, &built, scratch_dir, &target_sink, sink);
                        let mut g = lock(state);
                        g.running -= 1;
                        match outcome {
                            // A target that finished after another failed is cancelled:
                            // its outputs were not delivered (see `build_one`).
                            Ok(_) | Err(BuildError::Cancelled) if g.failed.is_some() => {}
                            Ok((result, layout)) => {
                                g.layouts.insert(t.name.clone(), layout);
                                g.results.push(result);
                            }
                            Err(e) => {
                                if g.failed.is_none() {
                                    g.failed = Some((
                                        t.name.clone(),
                                        match e {
                                            BuildError::Cancelled => {
                                                BuildError::Other("cancelled".into())
                                            }
                                            e => e,
                                        },
                                    ));
                                    engine.cancel();
                                }
                            }
                        }
                        changed.notify_all();
                    });
                }
            }
            let all_started = names.iter().all(|n| guard.started.contains(*n));
            if guard.running == 0 && (all_started || guard.failed.is_some()) {
                break;
            }
            if guard.running == 0 {
                // Nothing runs and nothing can start: a dependency that cannot be met.
                let waiting: Vec<&str> = names
                    .iter()
                    .filter(|n| !guard.started.contains(**n))
                    .map(|n| n.as_str())
                    .collect();
                guard.failed = Some((
                    waiting.join(", "),
                    BuildError::Other(
                        "internal: these targets wait for targets that are never built".into(),
                    ),
                ));
                break;
            }
            if guard.failed.is_some() {
                // Keep killing RUN steps that started just before the cancellation.
                engine.cancel();
                guard = changed
                    .wait_timeout(guard, Duration::from_millis(200))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            } else {
                guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        }
    });
    let sched = state.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some((target, e)) = sched.failed {
        return Err(BuildError::Target {
            target,
            source: Box::new(e),
        });
    }
    let mut results = sched.results;
    results.sort_by_key(|r| order.iter().position(|n| *n == r.name));
    Ok(results)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds one target, keeps it as an OCI layout (for targets that use it as a context)
/// and delivers its outputs, unless the engine was cancelled meanwhile.
fn build_one(
    engine: &Engine,
    t: &Target,
    built: &BTreeMap<String, PathBuf>,
    scratch: &Path,
    sink: &dyn Sink,
    notices: &dyn Sink,
) -> Result<(TargetResult, PathBuf), BuildError> {
    let name = &t.name;
    notices.event(&Event::Info {
        message: format!("building target {name}"),
    });
    let entries = |c: &Option<Vec<crate::bake::entries::CacheEntry>>| -> Vec<String> {
        c.iter()
            .flatten()
            .map(|e| {
                std::iter::once(format!("type={}", e.typ))
                    .chain(e.attrs.iter().map(|(k, v)| format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    if let Some(message) =
        output::external_cache_notice(&entries(&t.cache_from), &entries(&t.cache_to))
    {
        notices.event(&Event::Warning {
            message: format!("{name}: {message}"),
        });
    }
    // `_remotes` keeps git checkouts of the target's contexts until the build is done.
    let (opts, _remotes) = options_for(t, built, scratch, &engine.store.tmp_dir())?;
    let x = engine.build(&opts, sink)?;
    if engine.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let dir = scratch.join(format!("target-{name}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Other(format!("{}: {e}", dir.display())))?;
    export::write_oci_dir_linked(&x, &["latest".to_string()], &dir)
        .map_err(|e| BuildError::Other(e.to_string()))?;
    let outputs = t.output.clone().unwrap_or_default();
    let tags = t.tags.clone().unwrap_or_default();
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let lines = output::deliver(&x, &outputs, &tags, docker_host.as_deref())
        .map_err(|e| BuildError::Other(e.to_string()))?;
    for l in &lines {
        notices.event(&Event::Info {
            message: format!("{name}: {l}"),
        });
    }
    let descriptor = x.root_descriptor();
    Ok((
        TargetResult {
            name: name.clone(),
            digest: descriptor.as_ref().map(|d| d.digest.to_string()),
            descriptor,
            outputs: lines,
        },
        dir,
    ))
}

/// One target's view of the progress sink: step ids are made unique across the targets
/// that run at the same time, and with several targets step names are labelled with the
/// target as buildx does (`[app stage 1/3] ...`, `[app] ...`).
struct TargetSink<'a> {
    inner: &'a dyn Sink,
    next: &'a AtomicU64,
    label: Option<&'a str>,
    ids: Mutex<HashMap<u64, u64>>,
}

impl<'a> TargetSink<'a> {
    fn new(inner: &'a dyn Sink, next: &'a AtomicU64, label: Option<&'a String>) -> Self {
        TargetSink {
            inner,
            next,
            label: label.map(String::as_str),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, local: u64) -> u64 {
        *lock(&self.ids)
            .entry(local)
            .or_insert_with(|| self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// `name` labelled with `target` the way buildx prefixes vertex names.
pub fn label_step(target: &str, name: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{target} {rest}"),
        None => format!("[{target}] {name}"),
    }
}

impl Sink for TargetSink<'_> {
    fn event(&self, event: &Event) {
        let mapped = match event {
            Event::Started { id, name } => Event::Started {
                id: self.id(*id),
                name: match self.label {
                    Some(t) => label_step(t, name),
                    None => name.clone(),
                },
            },
            Event::Log { id, line } => Event::Log {
                id: self.id(*id),
                line: line.clone(),
            },
            Event::Cached { id } => Event::Cached { id: self.id(*id) },
            Event::Canceled { id } => Event::Canceled { id: self.id(*id) },
            Event::Done { id, seconds } => Event::Done {
                id: self.id(*id),
                seconds: *seconds,
            },
            Event::Failed { id, message } => Event::Failed {
                id: self.id(*id),
                message: message.clone(),
            },
            other => other.clone(),
        };
        self.inner.event(&mapped);
    }
}

/// The engine's options for one target, and the checkouts of its git contexts (which
/// must outlive the build).
fn options_for(
    t: &Target,
    built: &BTreeMap<String, PathBuf>,
    scratch: &Path,
    tmp: &Path,
) -> Result<(BuildOptions, RemoteContexts), BuildError> {
    let keep_git_dir = remote_context::keep_git_dir(
        t.args
            .iter()
            .flatten()
            .find(|(k, _)| k.as_str() == "BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .and_then(|(_, v)| v.as_deref()),
    );
    let mut remotes = RemoteContexts::new(tmp, keep_git_dir);
    let remote_err = |e: remote_context::RemoteContextError| {
        BuildError::Other(format!("target {}: unable to prepare context: {e}", t.name))
    };
    let context = remotes
        .local(t.context.as_deref().unwrap_or("."))
        .map_err(remote_err)?;
    let dockerfile = match &t.dockerfile_inline {
        Some(text) => {
            let p = scratch.join(format!("Dockerfile.{}", t.name));
            std::fs::write(&p, text)
                .map_err(|e| BuildError::Other(format!("{}: {e}", p.display())))?;
            p
        }
        None => remote_context::dockerfile_path(
            &context,
            true,
            Some(t.dockerfile.as_deref().unwrap_or("Dockerfile")),
        ),
    };
    let mut platforms = Vec::new();
    for p in t.platforms.iter().flatten() {
        platforms.push(
            Platform::parse(p)
                .map_err(|e| BuildError::Other(e.to_string()))?
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
                        "context {k} needs target {dep}, which was not built"
                    ))
                })?;
                NamedContext::OciLayout(format!("oci-layout://{}:latest", dir.display()))
            }
            None if remote_context::is_remote(v) => {
                NamedContext::Local(remotes.local(v).map_err(remote_err)?)
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
        .map_err(|e| BuildError::Other(e.to_string()))?;
    let oci_mediatypes = crate::engine::output::oci_mediatypes(&outputs)
        .map_err(|e| BuildError::Other(format!("target {}: {e}", t.name)))?;
    let opts = BuildOptions {
        oci_mediatypes,
        extra_hosts: t
            .extra_hosts
            .iter()
            .flatten()
            .filter_map(|(h, ip)| ip.as_ref().map(|ip| (h.clone(), ip.clone())))
            .collect(),
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
    };
    Ok((opts, remotes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::RecordingSink;

    #[test]
    fn steps_are_labelled_like_buildx() {
        assert_eq!(
            label_step("app", "[build 1/3] RUN make"),
            "[app build 1/3] RUN make"
        );
        assert_eq!(
            label_step("app", "[context src] load"),
            "[app context src] load"
        );
        assert_eq!(label_step("app", "exporting"), "[app] exporting");
    }

    #[test]
    fn step_ids_of_two_targets_never_collide() {
        let rec = RecordingSink::default();
        let next = AtomicU64::new(0);
        let (a, b) = ("a".to_string(), "b".to_string());
        let sa = TargetSink::new(&rec, &next, Some(&a));
        let sb = TargetSink::new(&rec, &next, Some(&b));
        for s in [&sa, &sb] {
            s.event(&Event::Started {
                id: 1,
                name: "[s 1/1] RUN x".into(),
            });
        }
        sb.event(&Event::Done {
            id: 1,
            seconds: 0.0,
        });
        sa.event(&Event::Canceled { id: 1 });
        let ev = rec.events();
        assert_eq!(
            ev,
            vec![
                Event::Started {
                    id: 1,
                    name: "[a s 1/1] RUN x".into()
                },
                Event::Started {
                    id: 2,
                    name: "[b s 1/1] RUN x".into()
                },
                Event::Done {
                    id: 2,
                    seconds: 0.0
                },
                Event::Canceled { id: 1 },
            ]
        );
    }
}
