//! The plan's data: what the caller asks for and what the executor gets.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::dockerfile::instructions::{Mount, Network, Security};
use crate::oci::image::{Descriptor, Image};
use crate::oci::Platform;

use super::PlanError;
use crate::engine::key;

/// A `--build-context name=...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: an image, resolved through the [`BaseResolver`].
    Image(String),
    /// A local directory.
    Local(PathBuf),
    /// `oci-layout://PATH[:TAG|@DIGEST]`: resolved through the [`BaseResolver`], which
    /// receives the whole `oci-layout://...` text as the reference.
    OciLayout(String),
    /// `target:NAME`: the result of another bake target, provided by the caller.
    Target(String),
}

impl NamedContext {
    /// Parses the value of `--build-context name=VALUE`.
    pub fn parse(value: &str) -> NamedContext {
        if let Some(r) = value.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else if value.starts_with("oci-layout://") {
            NamedContext::OciLayout(value.to_string())
        } else if let Some(t) = value.strip_prefix("target:") {
            NamedContext::Target(t.to_string())
        } else {
            NamedContext::Local(PathBuf::from(value))
        }
    }

    /// A short, stable description (cache keys, messages).
    pub fn describe(&self) -> String {
        match self {
            NamedContext::Image(r) => format!("docker-image://{r}"),
            NamedContext::Local(p) => format!("local:{}", p.display()),
            NamedContext::OciLayout(r) => r.clone(),
            NamedContext::Target(t) => format!("target:{t}"),
        }
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub build_args: BTreeMap<String, String>,
    /// `--target` (default: the last stage).
    pub target: Option<String>,
    /// The target platform of this plan.
    pub platform: Platform,
    /// True when the user asked for the platform (`--platform`): BuildKit then stamps
    /// it on the final image; otherwise the image keeps its base's platform and
    /// `platform` should be the build platform.
    pub explicit_platform: bool,
    /// The platform kiln runs on (`BUILDPLATFORM`).
    pub build_platform: Platform,
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `--label`, applied to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache-filter`: stage names whose steps must not come from the cache.
    pub no_cache_filter: Vec<String>,
}

impl BuildRequest {
    /// A request for the host platform with nothing else set.
    pub fn new(build_platform: Platform) -> BuildRequest {
        BuildRequest {
            build_args: BTreeMap::new(),
            target: None,
            platform: build_platform.clone(),
            explicit_platform: false,
            build_platform,
            named_contexts: BTreeMap::new(),
            labels: BTreeMap::new(),
            no_cache_filter: Vec::new(),
        }
    }

    /// The same request for the explicitly requested `platform`.
    pub fn for_platform(mut self, platform: Platform) -> BuildRequest {
        self.platform = platform;
        self.explicit_platform = true;
        self
    }
}

/// A base image as the resolver found it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The normalised reference (`registry/repo:tag`).
    pub reference: String,
    /// The digest of the platform's image manifest.
    pub digest: String,
    pub config: Image,
    pub layers: Vec<Descriptor>,
}

/// Where base images come from (a registry, an OCI layout...): implemented by the caller.
pub trait BaseResolver {
    /// The image `reference` for `platform`. A platform missing from an index is an
    /// error ([`PlanError::PlatformMissing`]).
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, PlanError>;
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum StageBase {
    Image(Box<BaseImage>),
    /// Another stage (its index in the Dockerfile).
    Stage(usize),
    Scratch,
    /// A named context that is not an image (a local directory, a bake target).
    Context(String),
}

/// Where COPY/ADD (or a RUN mount) reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum CopySource {
    /// The build context.
    Context,
    /// A stage's result (its index in the Dockerfile).
    Stage(usize),
    Image(Box<BaseImage>),
    /// A named context that is not an image.
    NamedContext(String),
}

/// COPY or ADD, arguments expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStep {
    pub sources: Vec<String>,
    /// Absolute, relative to WORKDIR resolved; a trailing slash is kept.
    pub dest: String,
    pub from: CopySource,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--unpack` (None: ADD unpacks local archives, COPY never does).
    pub unpack: Option<bool>,
    /// Inline sources: (file name, content, content was expanded).
    pub heredocs: Vec<(String, String, bool)>,
}

/// One `RUN --mount`, expanded, with its source when it has `from=`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMount {
    pub mount: Mount,
    /// For bind and cache mounts: where `source=` is read from (the build context when
    /// there is no `from=`).
    pub from: CopySource,
}

/// RUN, ready for the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    /// The argv to execute (the shell already in front for the shell form).
    pub args: Vec<String>,
    /// The shell in effect (SHELL or `/bin/sh -c`).
    pub shell: Vec<String>,
    /// A lone `#!` heredoc: (name, script) to provide as `/dev/pipes/<name>`, mode 0755.
    pub script_file: Option<(String, String)>,
    /// The environment: ENV and the ARGs in scope, `K=V`.
    pub env: Vec<String>,
    /// USER, unresolved (`name`, `uid`, `name:group`...); empty means root.
    pub user: String,
    pub workdir: String,
    pub mounts: Vec<RunMount>,
    pub network: Network,
    pub security: Security,
    pub devices: Vec<String>,
    /// Proxy settings from the build args (`HTTP_PROXY`, `https_proxy`, `NO_PROXY`...):
    /// in RUN's environment without being declared, and never in the history.
    pub proxy_env: Vec<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Create `path` (and its parents, 0755), owned by `user` (resolved by the executor
    /// through the stage's /etc/passwd; None: root).
    Workdir {
        path: String,
        user: Option<String>,
    },
    Copy(CopyStep),
    Add(CopyStep),
    Run(RunStep),
}

/// One layer-producing step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// The Dockerfile line (for errors while executing).
    pub line: usize,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// The cache key from the planned parent key, the platform and the expanded
    /// arguments ([`key::step_key`]). Steps that read inputs (COPY/ADD, RUN bind mounts)
    /// get their final key from [`key::with_inputs`].
    pub cache_key_base: String,
    /// The arguments in the key, in order (to recompute it with another parent key).
    pub key_fields: Vec<(String, String)>,
    /// An ONBUILD trigger of the base.
    pub on_build: bool,
}

impl Step {
    /// The step kind's name in keys and messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            StepKind::Workdir { .. } => "workdir",
            StepKind::Copy(_) => "copy",
            StepKind::Add(_) => "add",
            StepKind::Run(_) => "run",
        }
    }

    /// The key of this step on top of `parent` (the executor uses it when a parent's key
    /// changed once its inputs were hashed).
    pub fn key_with_parent(&self, parent: &str, platform: &Platform) -> String {
        key::step_key(
            self.kind_name(),
            parent,
            &platform.to_string(),
            &self.key_fields,
        )
    }
}

/// One stage the target needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// The stage's index in the Dockerfile.
    pub index: usize,
    /// `AS name` (lower case).
    pub name: Option<String>,
    pub base: StageBase,
    /// The platform the stage runs for (`FROM --platform` or the target platform).
    pub platform: Platform,
    pub steps: Vec<Step>,
    /// The stage's image config at its end.
    pub image: Image,
    /// Number of layers the stage starts with (the base image's, or the parent stage's).
    pub base_layers: usize,
    /// The key of the stage's starting point.
    pub base_key: String,
    /// The key of the last step (or `base_key`).
    pub key: String,
    /// `--no-cache-filter` named this stage.
    pub no_cache: bool,
    /// The Dockerfile line of the FROM.
    pub line: usize,
}

/// The plan for one target platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub platform: Platform,
    /// The needed stages, in dependency (= file) order.
    pub stages: Vec<StagePlan>,
    /// Position of the target stage in `stages`.
    pub target: usize,
    /// The final image config (rootfs diff_ids are filled by the executor).
    pub image: Image,
    /// `SOURCE_DATE_EPOCH` (a build arg or global ARG) in seconds: history entries of
    /// this build carry it as `created`; the executor clamps file times to it.
    pub epoch: Option<i64>,
}

impl Plan {
    pub fn target_stage(&self) -> Option<&StagePlan> {
        self.stages.get(self.target)
    }

    /// The planned stage with Dockerfile index `index`.
    pub fn stage(&self, index: usize) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.index == index)
    }

    /// Number of layers of the final image: the base's plus one per step along the
    /// chain of stages the target is built on.
    pub fn layer_count(&self) -> usize {
        self.target_stage()
            .map_or(0, |s| s.base_layers + s.steps.len())
    }
}
