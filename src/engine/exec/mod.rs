//! The executor: runs a plan's steps, filling or hitting the build cache, and assembles the
//! images (config, manifest, index) ready for an exporter.
//!
//! Each stage's filesystem is the chain of its layers, extracted once into the store and
//! viewed through [`LayeredFs`]; COPY/ADD/WORKDIR compute a [`LayerSpec`] from those views
//! and the build context, which becomes a layer blob. A step's cache key is the planner's
//! key chained to its parent, plus the digest of what it reads (context files, a stage's
//! result, an image).

mod error;
mod image;
mod protect;
mod resolver;
mod run_step;

use run_step::RunLayer;

pub use error::BuildError;
pub use resolver::PullResolver;

use crate::dockerfile::ignore::Matcher;
use crate::engine::context::{digest_sources, ContextFs, StatCache};
use crate::engine::copy::{self, CopyRequest, InlineSource};
use crate::engine::export::Exportable;
use crate::engine::export::ImageBlobs;
use crate::engine::fs::{FsView, LayerSpec};
use crate::engine::key;
use crate::engine::layer::LayerOptions;
use crate::engine::layered_fs::LayeredFs;
use crate::engine::plan::{
    self, BaseImage, BuildRequest, CopySource, CopyStep, NamedContext, Plan, StageBase, Step,
    StepKind,
};
use crate::engine::pull::Puller;
use crate::engine::store::{CacheRecord, LayerRef, Store};
use crate::engine::users;
use crate::oci::Platform;
use crate::progress::{Event, Sink};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// Target platforms; empty builds for this machine's platform.
    pub platforms: Vec<Platform>,
    /// Build args, target, named contexts, labels (platform fields are set per platform).
    pub request: BuildRequest,
    pub no_cache: bool,
    /// How the exported image's layers are compressed. Layers of stages that are not
    /// exported are stored uncompressed (they are only unpacked, never sent anywhere) and
    /// compressed when an export needs them.
    pub layer: LayerOptions,
    /// `force-compression=true`: recompress cached layers that have another compression.
    pub force_compression: bool,
    /// OCI media types for manifests, configs and layers (`oci-mediatypes=true`, the
    /// default); Docker's with `oci-mediatypes=false`.
    pub oci_mediatypes: bool,
    /// `--add-host` / bake's `extra-hosts`: (host, ip) lines added to RUN's `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// Secrets for `RUN --mount=type=secret` (`--secret id=...,src=...|env=...`).
    pub secrets: Vec<crate::bake::entries::Secret>,
    /// Entitlements granted with `--allow` (e.g. `security.insecure`).
    pub allow: Vec<String>,
    /// SSH agent sockets for `RUN --mount=type=ssh` (`--ssh default|id=socket`).
    pub ssh: Vec<crate::bake::entries::Ssh>,
}

/// A stage's result so far: its layers (bottom first) and the cache key of its last step.
#[derive(Debug, Clone, Default)]
struct StageState {
    layers: Vec<LayerRef>,
    /// Extracted directories of `layers`, filled on demand.
    dirs: Vec<PathBuf>,
    key: String,
    /// When the newest of its steps was first built (from the cache records), so that a
    /// fully cached rebuild gives the same image config and digest.
    created: i64,
}

/// The embedded engine: a store, a way to fetch base images, and the RUN executor.
pub struct Engine {
    pub store: Store,
    pub puller: Puller,
    stat_cache: StatCache,
    executor: crate::engine::run::Selected,
    /// Set by [`Engine::cancel`]: the builds running on this engine stop at their next
    /// step (and their running RUN steps are killed).
    cancelled: std::sync::atomic::AtomicBool,
}

impl Engine {
    pub fn new(store: Store, mut puller: Puller) -> Engine {
        puller.cache_metadata_in(store.clone());
        let stat_cache =
            StatCache::load(store.root().join(crate::engine::context::STAT_CACHE_FILE));
        Engine {
            store,
            puller,
            stat_cache,
            executor: crate::engine::run::Selected::default(),
            cancelled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Stops every build running on this engine: RUN steps running now are killed, the
    /// others fail with [`BuildError::Cancelled`] before their next step. Used by
    /// `kiln bake` when one target fails (buildx's fail-fast). Calling it again kills RUN
    /// steps that started in the meantime.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        crate::engine::run::cancel_all();
    }

    /// Whether [`Engine::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// The RUN executor to use (the sandbox unless chosen otherwise).
    pub fn with_executor(mut self, executor: crate::engine::run::Selected) -> Engine {
        self.executor = executor;
        self
    }

    pub fn executor(&self) -> &crate::engine::run::Selected {
        &self.executor
    }

    /// Builds the Dockerfile for every requested platform.
    pub fn build(&self, opts: &BuildOptions, sink: &dyn Sink) -> Result<Exportable, BuildError> {
        let text = std::fs::read_to_string(&opts.dockerfile).map_err(|e| {
            BuildError::Other(format!(
                "failed to read dockerfile {}: {e}",
                opts.dockerfile.display()
            ))
        })?;
        let df = crate::dockerfile::parse_dockerfile(&text, &opts.dockerfile)
            .map_err(|e| BuildError::Plan(plan::PlanError::Dockerfile(e)))?;
        let host = Platform::host();
        let explicit = !opts.platforms.is_empty();
        let platforms = if explicit {
            opts.platforms.clone()
        } else {
            vec![host.clone()]
        };
        let ctx = ContextFs::for_build(&opts.context, &opts.dockerfile)?;
        self.executor
            .protect(protect::build_paths(opts, self.store.root()));
        let _lock = self.store.lock_shared()?;
        // Plan every platform first (base images are resolved once), then run the
        // platforms' steps in parallel.
        let mut resolver = PullResolver::new(&self.puller);
        let mut plans = Vec::new();
        for p in &platforms {
            let mut req = opts.request.clone();
            req.build_platform = host.clone();
            req.platform = p.clone();
            req.explicit_platform = explicit;
            plans.push(plan::plan(&df, &req, &mut resolver)?);
        }
        if let Some(line) = first_run_line(&plans) {
            // The unprivileged executor says what it is at the first RUN itself.
            if matches!(
                self.executor.executor(),
                crate::engine::run::Executor::Sandbox
            ) {
                run_preflight(&df, line, sink, &self.executor)?;
            }
        }
        let ids = AtomicU64::new(0);
        let steps = &SharedSteps::default();
        let resolver = &resolver;
        let (df, ctx, ids) = (&df, &ctx, &ids);
        let results: Vec<Result<ImageBlobs, BuildError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = plans
                .iter()
                .map(|plan| {
                    scope.spawn(move || {
                        let mut run = Run {
                            engine: self,
                            df,
                            plan,
                            opts,
                            ctx,
                            resolver,
                            sink,
                            states: HashMap::new(),
                            next_id: ids,
                            steps,
                            downloads: HashMap::new(),
                            gits: HashMap::new(),
                            checkouts: Vec::new(),
                            fresh: HashMap::new(),
                        };
                        let target = plan.target_stage().map(|s| s.index).ok_or_else(|| {
                            BuildError::Other("internal: the plan has no target stage".into())
                        })?;
                        let state = run.stage(target)?;
                        let layers =
                            self.export_layers(&state.layers, base_image_layers(plan), opts)?;
                        image::assemble(
                            &self.store,
                            plan,
                            &layers,
                            state.created,
                            opts.oci_mediatypes,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BuildError::Other(
                            "internal: a platform build panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let images = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        let _ = self.stat_cache.save();
        let index = if images.len() > 1 {
            Some(image::index(&images, opts.oci_mediatypes)?)
        } else {
            None
        };
        Ok(Exportable { images, index })
    }
}

impl Engine {
    /// The image's layers as the export wants them: layers stored uncompressed (those of
    /// stages that were not exported when they were built) get the export's compression,
    /// and with `force-compression` every layer does.
    /// The first `base` layers come from the base image and keep their compression
    /// unless forced.
    fn export_layers(
        &self,
        layers: &[LayerRef],
        base: usize,
        opts: &BuildOptions,
    ) -> Result<Vec<LayerRef>, BuildError> {
        use crate::engine::layer::Compression;
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let have = Compression::from_media_type(&l.media_type);
                let convert = opts.force_compression
                    || (i >= base
                        && have == Some(Compression::Uncompressed)
                        && opts.layer.compression != Compression::Uncompressed);
                if convert {
                    Ok(self.store.converted(l, &opts.layer)?)
                } else {
                    Ok(l.clone())
                }
            })
            .collect()
    }
}

/// How many layers the target's image takes from a base image (FROM an image at the root
/// of its chain of stages).
fn base_image_layers(plan: &Plan) -> usize {
    let mut stage = plan.target_stage();
    while let Some(st) = stage {
        match &st.base {
            StageBase::Stage(j) => stage = plan.stage(*j),
            StageBase::Image(b) => return b.layers.len(),
            _ => return 0,
        }
    }
    0
}

/// The Dockerfile line of the first RUN step of the plans, if any.
fn first_run_line(plans: &[Plan]) -> Option<usize> {
    plans
        .iter()
        .flat_map(|p| &p.stages)
        .flat_map(|s| &s.steps)
        .find(|s| matches!(s.kind, StepKind::Run(_)))
        .map(|s| s.line)
}

/// A build with RUN steps: says which sandbox runs them (root or rootless), or fails
/// before anything starts when there is none.
fn run_preflight(
    df: &crate::dockerfile::Dockerfile,
    line: usize,
    sink: &dyn Sink,
    selected: &crate::engine::run::Selected,
) -> Result<(), BuildError> {
    match crate::engine::run::preflight() {
        Ok((note, warning)) => {
            // One line says both which executor and which sandbox.
            let message = match selected.take_note() {
                Some(_) => format!("{note} ({})", selected.reason()),
                None => note,
            };
            sink.event(&Event::Info { message });
            if let Some(message) = warning {
                sink.event(&Event::Warning { message });
            }
            Ok(())
        }
        Err(e) => {
            let err = BuildError::step(df, line, e.to_string());
            Err(match e.hint() {
                Some(h) => err.with_hint(h),
                None => err,
            })
        }
    }
}

/// Steps shared by the platforms of one build: who builds a step key, and which keys
/// this build has built (usable even with `--no-cache`).
#[derive(Default)]
struct SharedSteps {
    turns: std::sync::Mutex<HashMap<String, std::sync::Arc<std::sync::Mutex<()>>>>,
    built: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl SharedSteps {
    fn turn(&self, key: &str) -> std::sync::Arc<std::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.entry(key.to_string()).or_default().clone()
    }

    fn built(&self, key: &str) -> bool {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn mark_built(&self, key: &str) {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
    }
}

/// One platform's execution of a plan.
struct Run<'a> {
    engine: &'a Engine,
    df: &'a crate::dockerfile::Dockerfile,
    plan: &'a Plan,
    opts: &'a BuildOptions,
    ctx: &'a ContextFs,
    resolver: &'a PullResolver<'a>,
    sink: &'a dyn Sink,
    states: HashMap<usize, StageState>,
    next_id: &'a AtomicU64,
    steps: &'a SharedSteps,
    /// ADD <url> downloads, by URL (fetched once per build).
    downloads: HashMap<String, InlineSource>,
    /// ADD <git ref> sources resolved to commits, by source (resolved once per build, so
    /// the cache key and the checkout agree).
    gits: HashMap<String, (copy::git::GitSource, copy::git::Resolved)>,
    /// Checkouts of git sources: their files are read when the layer is written, after
    /// the copy step computed it; removed when the run ends.
    checkouts: Vec<copy::git::Checkout>,
    /// Layers this build wrote (COPY, ADD, WORKDIR), by diff_id: later steps look at them
    /// through their spec instead of unpacking them, and a RUN that needs them unpacked
    /// gets them written from the spec (hard-linking what it can) when all their files come
    /// from extracted layers or memory.
    fresh: HashMap<String, Fresh>,
}

/// A layer this build wrote, see [`Run::fresh`].
struct Fresh {
    spec: LayerSpec,
    view: std::sync::Arc<crate::engine::layered_fs::SpecLayer>,
    /// Every file comes from an extracted layer or memory (not the build context, which
    /// may change after the blob was written).
    linkable: bool,
}

impl Run<'_> {
    fn stage(&mut self, idx: usize) -> Result<StageState, BuildError> {
        if let Some(s) = self.states.get(&idx) {
            return Ok(s.clone());
        }
        let st = self
            .plan
            .stage(idx)
            .ok_or_else(|| BuildError::Other(format!("internal: stage {idx} was not planned")))?;
        let mut state = match &st.base {
            StageBase::Image(b) => self.image_state(b, &st.base_key)?,
            StageBase::Stage(j) => self.stage(*j)?,
            StageBase::Scratch => StageState {
                key: st.base_key.clone(),
                ..StageState::default()
            },
            StageBase::Context(name) => self.context_state(idx, name, &st.base_key, st.line)?,
        };
        let name = st
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", st.index));
        let n = st.steps.len();
        for (i, step) in st.steps.iter().enumerate() {
            if self.engine.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let label = copy::git::redact_text(&format!(
                "[{name} {}/{n}] {}",
                i + 1,
                step.created_by.trim_end_matches(" # buildkit")
            ));
            self.sink.event(&Event::Started { id, name: label });
            let started = Instant::now();
            let no_cache = self.opts.no_cache || st.no_cache;
            let layer_opts = self.layer_options(idx);
            match self.step(&mut state, step, &st.platform, no_cache, id, &layer_opts) {
                Ok(cached) => {
                    if cached {
                        self.sink.event(&Event::Cached { id });
                    } else {
                        self.sink.event(&Event::Done {
                            id,
                            seconds: started.elapsed().as_secs_f64(),
                        });
                    }
                }
                Err(e) => {
                    // A RUN killed by a cancellation is not this build's own failure.
                    if self.engine.is_cancelled() {
                        self.sink.event(&Event::Canceled { id });
                        return Err(BuildError::Cancelled);
                    }
                    self.sink.event(&Event::Failed {
                        id,
                        message: e.to_string(),
                    });
                    return Err(e);
                }
            }
        }
        self.states.insert(idx, state.clone());
        Ok(state)
    }

    /// How the layers of stage `idx` are written: as the export asks for the stages the
    /// target is built on, uncompressed for the others (only ever unpacked or read; an
    /// export that needs one compresses it then, see [`Store::converted`]).
    fn layer_options(&self, idx: usize) -> LayerOptions {
        let mut exported = self.plan.target_stage().map(|s| s.index);
        while let Some(i) = exported {
            if i == idx {
                return self.opts.layer.clone();
            }
            exported = match self.plan.stage(i).map(|s| &s.base) {
                Some(StageBase::Stage(j)) => Some(*j),
                _ => None,
            };
        }
        LayerOptions {
            compression: crate::engine::layer::Compression::Uncompressed,
            level: None,
            source_date_epoch: self.opts.layer.source_date_epoch,
        }
    }

    /// The layers of a base image, fetched into the store (not extracted yet).
    fn image_state(&self, b: &BaseImage, key: &str) -> Result<StageState, BuildError> {
        let store = &self.engine.store;
        let diff_ids = &b.config.rootfs.diff_ids;
        if diff_ids.len() != b.layers.len() {
            return Err(BuildError::Other(format!(
                "{}: the config lists {} layers, the manifest {}",
                b.reference,
                diff_ids.len(),
                b.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for (d, diff_id) in b.layers.iter().zip(diff_ids) {
            let digest = d.digest.to_string();
            // Platforms of one build that need the same blob take turns fetching it.
            let turn = self.steps.turn(&format!("blob {digest}"));
            let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
            if !store.has(&digest) {
                let pulled = self.resolver.pulled.get(&b.digest).ok_or_else(|| {
                    BuildError::Other(format!("internal: {} was not resolved", b.reference))
                })?;
                // A name of its own: other builds (bake targets, other kiln processes)
                // may be fetching the same blob right now.
                let tmp = store
                    .tmp_dir()
                    .join(crate::engine::store::temp_name(&format!(
                        "pull-{}",
                        d.digest.encoded()
                    )));
                let fetched = self
                    .engine
                    .puller
                    .fetch_blob(pulled, &d.digest, &tmp)
                    .map_err(BuildError::from)
                    .and_then(|()| Ok(store.put_file(&tmp, Some(&digest))?));
                if fetched.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                fetched?;
            }
            layers.push(LayerRef {
                digest,
                diff_id: diff_id.clone(),
                size: d.size.max(0) as u64,
                media_type: d.media_type.clone(),
            });
        }
        Ok(StageState {
            layers,
            dirs: Vec::new(),
            key: key::with_inputs(key, &b.digest),
            created: 0,
        })
    }

    /// A named context that is a local directory (`--build-context name=DIR`, bake's
    /// `contexts = { name = "DIR" }`), with the `.dockerignore` at its root applied as
    /// BuildKit does.
    pub(super) fn named_local(&self, name: &str, line: usize) -> Result<ContextFs, BuildError> {
        match self.opts.request.named_contexts.get(name) {
            Some(NamedContext::Local(dir)) => {
                let matcher = Matcher::from_file(&dir.join(".dockerignore")).map_err(|e| {
                    BuildError::step(self.df, line, format!("named context {name}: {e}"))
                })?;
                ContextFs::new(dir, matcher).map_err(|e| {
                    BuildError::step(self.df, line, format!("named context {name}: {e}"))
                })
            }
            Some(NamedContext::Target(t)) => Err(BuildError::step(
                self.df,
                line,
                format!("named context {name} is the bake target {t:?}, which only kiln bake can build"),
            )
            .with_hint(format!(
                "build it with kiln bake, or pass the image: --build-context {name}=docker-image://REF or oci-layout://DIR"
            ))),
            // Images and OCI layouts are resolved by the planner and never get here.
            other => Err(BuildError::Other(format!(
                "internal: named context {name} ({other:?}) reached the executor as a directory"
            ))),
        }
    }

    /// A stage `FROM` a named context that is a directory: BuildKit's local source as the
    /// root filesystem, i.e. one layer holding the directory (owners 0:0, `.dockerignore`
    /// applied) on scratch. Its key is the base key and the directory's content digest.
    fn context_state(
        &mut self,
        idx: usize,
        name: &str,
        base_key: &str,
        line: usize,
    ) -> Result<StageState, BuildError> {
        let fs = self.named_local(name, line)?;
        let all = [".".to_string()];
        let k = key::with_inputs(
            base_key,
            &format!(
                "{:x}",
                sha256(digest_sources(&fs, &all, &self.engine.stat_cache)?.as_bytes())
            ),
        );
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.sink.event(&Event::Started {
            id,
            name: format!("[context {name}] load from {}", fs.root().display()),
        });
        let started = Instant::now();
        let store = &self.engine.store;
        if !self.opts.no_cache {
            // A record is only found while all its layer blobs are in the store.
            if let Some(rec) = store.get_record(&k) {
                let _ = store.touch(&k, &rec);
                self.sink.event(&Event::Cached { id });
                return Ok(StageState {
                    created: rec.created,
                    layers: rec.layers,
                    dirs: Vec::new(),
                    key: k,
                });
            }
        }
        let req = CopyRequest {
            sources: all.to_vec(),
            inline: Vec::new(),
            dest: "/".into(),
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            exclude: Vec::new(),
            from_context: true,
            is_add: false,
            mtime_override: None,
        };
        let made = copy::copy_layer(&req, &fs, &LayeredFs::new(Vec::new()))
            .map_err(|e| BuildError::from_copy(self.df, line, e))
            .and_then(|spec| Ok(store.write_layer(&spec, &self.layer_options(idx))?));
        let blob = match made {
            Ok(b) => b,
            Err(e) => {
                self.sink.event(&Event::Failed {
                    id,
                    message: e.to_string(),
                });
                return Err(e);
            }
        };
        let layer = LayerRef {
            digest: blob.digest,
            diff_id: blob.diff_id,
            size: blob.size,
            media_type: blob.media_type,
        };
        let record = CacheRecord::new(
            vec![layer.clone()],
            serde_json::json!({ "created_by": format!("context {name}") }),
        );
        store.put_record(&k, &record)?;
        self.sink.event(&Event::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(StageState {
            created: record.created,
            layers: vec![layer],
            dirs: Vec::new(),
            key: k,
        })
    }

    /// A read view of a stage state's filesystem (extracting layers on first use).
    fn view(&self, state: &mut StageState) -> Result<LayeredFs, BuildError> {
        while state.dirs.len() < state.layers.len() {
            let l = &state.layers[state.dirs.len()];
            let store = &self.engine.store;
            let dir = match self.fresh.get(&l.diff_id) {
                Some(f) if f.linkable && !store.is_extracted(&l.diff_id) => store
                    .extracted_from_spec(&l.diff_id, &f.spec, self.opts.layer.source_date_epoch)?,
                _ => store.extracted(&l.digest, &l.diff_id, &l.media_type)?,
            };
            state.dirs.push(dir);
        }
        Ok(LayeredFs::new(state.dirs.iter().rev().cloned().collect()))
    }

    /// A read view of a stage state's filesystem that unpacks nothing this build wrote:
    /// such layers are seen through their specs (for COPY destinations, `COPY --from`
    /// sources, user lookups). RUN needs [`Run::view`].
    fn view_lazy(&self, state: &StageState) -> Result<LayeredFs, BuildError> {
        use crate::engine::layered_fs::ViewLayer;
        let store = &self.engine.store;
        let mut layers = Vec::with_capacity(state.layers.len());
        for (i, l) in state.layers.iter().enumerate() {
            let layer = match (state.dirs.get(i), self.fresh.get(&l.diff_id)) {
                (Some(d), _) => ViewLayer::Dir(d.clone()),
                (None, Some(f)) if !store.is_extracted(&l.diff_id) => {
                    ViewLayer::Spec(f.view.clone())
                }
                (None, _) => {
                    ViewLayer::Dir(store.extracted(&l.digest, &l.diff_id, &l.media_type)?)
                }
            };
            layers.push(layer);
        }
        layers.reverse();
        Ok(LayeredFs::with_layers(layers))
    }

    /// Takes the step `k` from the cache when its record and blobs are there.
    fn take_cached(&self, state: &mut StageState, k: &str) -> bool {
        let store = &self.engine.store;
        // A record is only found while all its layer blobs are in the store.
        let Some(rec) = store.get_record(k) else {
            return false;
        };
        let _ = store.touch(k, &rec);
        state.created = state.created.max(rec.created);
        state.layers.extend(rec.layers);
        state.key = k.to_string();
        true
    }

    /// Runs one step; true when it came from the cache.
    fn step(
        &mut self,
        state: &mut StageState,
        step: &Step,
        platform: &Platform,
        no_cache: bool,
        id: u64,
        layer_opts: &LayerOptions,
    ) -> Result<bool, BuildError> {
        let mut k = step.key_with_parent(&state.key, platform);
        if let StepKind::Copy(c) | StepKind::Add(c) = &step.kind {
            let inputs = self.copy_inputs(c, step.line)?;
            k = key::with_inputs(&k, &inputs);
        }
        if let StepKind::Run(r) = &step.kind {
            let inputs = self.run_inputs(r, step.line)?;
            if !inputs.is_empty() {
                k = key::with_inputs(&k, &format!("{:x}", sha256(inputs.as_bytes())));
            }
        }
        let store = &self.engine.store;
        if (!no_cache || self.steps.built(&k)) && self.take_cached(state, &k) {
            return Ok(true);
        }
        // Platforms building the same step (a `--platform=$BUILDPLATFORM` stage) take
        // turns: the first builds it, the others find it in the cache.
        let turn = self.steps.turn(&k);
        let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
        if (!no_cache || self.steps.built(&k)) && self.take_cached(state, &k) {
            return Ok(true);
        }
        let view = self.view_lazy(state)?;
        // A RUN's layer files live in its scratch dir (or, with the unprivileged executor,
        // in `/` under its lease) until the layer is written.
        let mut run_layer: Option<run_step::RunLayer> = None;
        let spec = match &step.kind {
            StepKind::Workdir { path, user } => {
                // BuildKit makes the directory with `llb.WithUser(USER)`: `--chown`
                // semantics (a bare uid is also the gid), not RUN's.
                let owner = users::resolve_chown(&view, user.as_deref().unwrap_or("0"))
                    .map_err(|e| BuildError::from_user(self.df, step.line, e))?;
                copy::mkdir_layer(&view, path, owner)
                    .map_err(|e| BuildError::from_copy(self.df, step.line, e))?
            }
            StepKind::Copy(c) => self.copy(c, &view, false, step.line)?,
            StepKind::Add(c) => self.copy(c, &view, true, step.line)?,
            StepKind::Run(r) => {
                let mut made = self.run_step(state, r, platform, step.line, id, &k)?;
                let spec = std::mem::take(&mut made.spec);
                run_layer = Some(made);
                spec
            }
        };
        let blob = store.write_layer(&spec, layer_opts)?;
        if let Some(RunLayer {
            upper: Some(upper), ..
        }) = &run_layer
        {
            // The upper dir already is the layer in overlay form (unless the tar clamps
            // timestamps, which the directory does not): keep it instead of unpacking the
            // blob again for the next step.
            if self.opts.layer.source_date_epoch.is_none() {
                store.adopt_extracted(&blob.diff_id, upper)?;
            }
        }
        if run_layer.is_none() {
            let linkable = self.fresh_candidate(&spec);
            let view = std::sync::Arc::new(crate::engine::layered_fs::SpecLayer::new(
                &spec,
                layer_opts.source_date_epoch,
            ));
            self.fresh.insert(
                blob.diff_id.clone(),
                Fresh {
                    spec,
                    view,
                    linkable,
                },
            );
        }
        drop(run_layer);
        let layer = LayerRef {
            digest: blob.digest,
            diff_id: blob.diff_id,
            size: blob.size,
            media_type: blob.media_type,
        };
        let record = CacheRecord::new(
            vec![layer.clone()],
            serde_json::json!({ "created_by": step.created_by }),
        );
        state.created = state.created.max(record.created);
        store.put_record(&k, &record)?;
        self.steps.mark_built(&k);
        state.layers.push(layer);
        state.key = k;
        Ok(false)
    }

    /// Whether every file of `spec` comes from an extracted layer or from memory (never
    /// from the build context, which may change after the blob was written).
    fn fresh_candidate(&self, spec: &LayerSpec) -> bool {
        let layers = self.engine.store.layers_root();
        spec.entries.iter().all(|e| match &e.content {
            None | Some(crate::engine::fs::Content::Bytes(_)) => true,
            Some(crate::engine::fs::Content::Path(p)) => p.starts_with(&layers),
        })
    }

    /// What a COPY/ADD reads, as a digest for its cache key.
    /// Downloads (once) the URL sources of an ADD.
    fn download(
        &mut self,
        url: &str,
        checksum: Option<&str>,
        line: usize,
    ) -> Result<InlineSource, BuildError> {
        if let Some(d) = self.downloads.get(url) {
            if let Some(c) = checksum {
                copy::url::verify_checksum(url, &d.content, c)
                    .map_err(|e| BuildError::step(self.df, line, e.to_string()))?;
            }
            return Ok(d.clone());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BuildError::Other(format!("starting the async runtime: {e}")))?;
        let d = rt
            .block_on(copy::url::download(url, checksum))
            .map_err(|e| BuildError::step(self.df, line, e.to_string()))?;
        self.downloads.insert(url.to_string(), d.clone());
        Ok(d)
    }

    /// Resolves a git source's ref to a commit (once per build) and checks `--checksum`.
    fn git_resolve(
        &mut self,
        source: &str,
        checksum: Option<&str>,
        line: usize,
    ) -> Result<(copy::git::GitSource, copy::git::Resolved), BuildError> {
        let err = |df, e: copy::git::GitError| BuildError::step(df, line, e.to_string());
        if let Some(r) = self.gits.get(source) {
            return Ok(r.clone());
        }
        let src = copy::git::parse(source)
            .map_err(|e| err(self.df, e))?
            .ok_or_else(|| BuildError::Other(format!("internal: {source} is not a git source")))?;
        let resolved = copy::git::resolve(&src).map_err(|e| err(self.df, e))?;
        if let Some(sum) = checksum {
            copy::git::verify_checksum(&src, &resolved.commit, sum).map_err(|e| err(self.df, e))?;
        }
        self.gits
            .insert(source.to_string(), (src.clone(), resolved.clone()));
        Ok((src, resolved))
    }

    fn copy_inputs(&mut self, c: &CopyStep, line: usize) -> Result<String, BuildError> {
        let mut material = String::new();
        let mut local: Vec<String> = Vec::new();
        for s in &c.sources {
            if !copy::git::is_git(s) {
                local.push(s.clone());
                continue;
            }
            let (src, resolved) = self.git_resolve(s, c.checksum.as_deref(), line)?;
            // The commit, not the ref: a moved branch rebuilds, an unchanged one hits.
            material.push_str(&format!(
                "git\0{}\0{}\0{}\0{}\n",
                copy::git::redact(&src.remote),
                resolved.commit,
                src.subdir.as_deref().unwrap_or(""),
                c.keep_git_dir
            ));
        }
        for s in c.sources.iter().filter(|s| copy::url::is_url(s)) {
            let d = self.download(s, c.checksum.as_deref(), line)?;
            material.push_str(&format!(
                "url\0{s}\0{}\0{}\0{:x}\n",
                d.name,
                d.mtime,
                sha256(&d.content)
            ));
        }
        for (name, content, expand) in &c.heredocs {
            material.push_str(&format!("heredoc\0{name}\0{expand}\0{content}\n"));
        }
        match &c.from {
            CopySource::Context => {
                material.push_str(&digest_sources(self.ctx, &local, &self.engine.stat_cache)?);
            }
            CopySource::Stage(j) => {
                let s = self.stage(*j)?;
                material.push_str(&s.key);
            }
            CopySource::Image(b) => material.push_str(&b.digest),
            CopySource::NamedContext(name) => {
                let fs = self.named_local(name, line)?;
                material.push_str(&digest_sources(&fs, &c.sources, &self.engine.stat_cache)?);
            }
        }
        Ok(format!("{:x}", sha256(material.as_bytes())))
    }

    /// A COPY/ADD's owner (`--chown` resolved in the destination stage) and absolute
    /// destination path.
    fn copy_target(
        &self,
        c: &CopyStep,
        dest: &LayeredFs,
        line: usize,
    ) -> Result<(Option<(u32, u32)>, String), BuildError> {
        let chown = match &c.chown {
            Some(spec) => Some(
                users::resolve_chown(dest, spec)
                    .map_err(|e| BuildError::from_user(self.df, line, e))?,
            ),
            None => None,
        };
        let dest_path = if c.dest.starts_with('/') {
            c.dest.clone()
        } else {
            copy::dest_path("/", &c.dest)
        };
        Ok((chown, dest_path))
    }

    fn copy(
        &mut self,
        c: &CopyStep,
        dest: &LayeredFs,
        is_add: bool,
        line: usize,
    ) -> Result<LayerSpec, BuildError> {
        if let Some(s) = c.sources.iter().find(|s| copy::git::is_git(s)) {
            return self.copy_git(s, c, dest, line);
        }
        let mut downloaded = Vec::new();
        for s in c.sources.iter().filter(|s| copy::url::is_url(s)) {
            downloaded.push(self.download(s, c.checksum.as_deref(), line)?);
        }
        let (chown, dest_path) = self.copy_target(c, dest, line)?;
        let from_context = matches!(c.from, CopySource::Context | CopySource::NamedContext(_));
        let mut inline: Vec<InlineSource> = c
            .heredocs
            .iter()
            .map(|(name, content, _)| InlineSource::heredoc(name.clone(), content.clone()))
            .collect();
        inline.extend(downloaded);
        let req = CopyRequest {
            sources: c
                .sources
                .iter()
                .filter(|s| !copy::url::is_url(s))
                .cloned()
                .collect(),
            inline,
            dest: dest_path,
            chown,
            chmod: c.chmod.clone(),
            link: c.link,
            parents: c.parents,
            exclude: c.exclude.clone(),
            from_context,
            is_add,
            mtime_override: None,
        };
        let named;
        let stage_view;
        let src: &dyn FsView = match &c.from {
            CopySource::Context => self.ctx,
            CopySource::Stage(j) => {
                let s = self.stage(*j)?;
                stage_view = self.view_lazy(&s)?;
                &stage_view
            }
            CopySource::Image(b) => {
                let s = self.image_state(b, "")?;
                stage_view = self.view_lazy(&s)?;
                &stage_view
            }
            CopySource::NamedContext(name) => {
                named = self.named_local(name, line)?;
                &named
            }
        };
        copy::copy_layer(&req, src, dest).map_err(|e| BuildError::from_copy(self.df, line, e))
    }

    /// `ADD <git ref> <dest>` (the planner makes it the only source): the commit's tree
    /// (or subdir) copied into `dest` as a directory, owners 0:0 unless `--chown`, every
    /// mtime the commit time.
    fn copy_git(
        &mut self,
        source: &str,
        c: &CopyStep,
        dest: &LayeredFs,
        line: usize,
    ) -> Result<LayerSpec, BuildError> {
        let (src, resolved) = self.git_resolve(source, c.checksum.as_deref(), line)?;
        let tmp = self.engine.store.tmp_dir();
        let checkout = copy::git::checkout(&src, &resolved, c.keep_git_dir, &tmp)
            .map_err(|e| BuildError::step(self.df, line, e.to_string()))?;
        let (chown, dest_path) = self.copy_target(c, dest, line)?;
        let req = CopyRequest {
            sources: vec![".".to_string()],
            inline: Vec::new(),
            dest: dest_path,
            chown,
            chmod: c.chmod.clone(),
            link: c.link,
            parents: false,
            exclude: c.exclude.clone(),
            from_context: true,
            is_add: false,
            mtime_override: Some(checkout.mtime),
        };
        let fs = ContextFs::new(&checkout.root, Matcher::default())?;
        let spec = copy::copy_layer(&req, &fs, dest)
            .map_err(|e| BuildError::from_copy(self.df, line, e))?;
        self.checkouts.push(checkout);
        Ok(spec)
    }
}

fn sha256(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest as _;
    Hex(sha2::Sha256::digest(bytes).to_vec())
}

struct Hex(Vec<u8>);

impl std::fmt::LowerHex for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The context directory's Dockerfile default (`CONTEXT/Dockerfile`).
pub fn default_dockerfile(context: &Path) -> PathBuf {
    context.join("Dockerfile")
}
