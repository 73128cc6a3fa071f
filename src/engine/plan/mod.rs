//! Dockerfile + build request -> a per-platform build plan, without running anything.
//!
//! [`plan`] follows BuildKit's Dockerfile frontend (`dockerfile2llb`), the oracle of the
//! conformance corpus:
//!
//! 1. the global ("meta") ARGs are evaluated with the automatic platform args and the
//!    build args; every FROM's image and `--platform` are expanded with them;
//! 2. stages are linked: `FROM <earlier stage>`, `COPY --from=<stage|index|image>`,
//!    `RUN --mount=from=...`; a stage whose name is a named context (`--build-context`)
//!    is replaced by it; cycles are rejected;
//! 3. the stages the target needs are resolved (bases through the caller's
//!    [`BaseResolver`]) and ONBUILD triggers of their bases are put in front of their
//!    instructions (one generation);
//! 4. the needed stages are dispatched in file order: metadata instructions update the
//!    stage's image config; WORKDIR, COPY, ADD and RUN become [`Step`]s with cache keys.
//!
//! The result is a [`Plan`] for one target platform; a multi-platform build calls [`plan`]
//! once per platform ([`plan_each`]).
//!
//! ```
//! use kiln::dockerfile::parse_dockerfile;
//! use kiln::engine::plan::{plan, BaseImage, BaseResolver, BuildRequest, PlanError, StepKind};
//! use kiln::oci::{Image, Platform};
//!
//! struct Local;
//! impl BaseResolver for Local {
//!     fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, PlanError> {
//!         let mut config = Image::default();
//!         config.os = platform.os.clone();
//!         config.architecture = platform.architecture.clone();
//!         Ok(BaseImage {
//!             reference: reference.to_string(),
//!             digest: format!("sha256:{}", "0".repeat(64)),
//!             config,
//!             layers: Vec::new(),
//!         })
//!     }
//! }
//!
//! let df = parse_dockerfile("FROM alpine\nWORKDIR /app\nCOPY . .\nCMD [\"./run\"]\n", "Dockerfile")?;
//! let req = BuildRequest::new(Platform::new("linux", "amd64", ""));
//! let p = plan(&df, &req, &mut Local)?;
//! assert_eq!(p.image.config.working_dir, "/app");
//! assert_eq!(p.image.config.cmd, vec!["./run"]);
//! let steps = &p.stages[0].steps;
//! assert!(matches!(&steps[0].kind, StepKind::Workdir { path, .. } if path == "/app"));
//! assert!(matches!(&steps[1].kind, StepKind::Copy(c) if c.dest == "/app/"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dispatch;
mod error;
mod graph;
mod steps;
mod types;

pub use error::PlanError;
pub use graph::{plan, plan_each};
pub use types::{
    BaseImage, BaseResolver, BuildRequest, CopySource, CopyStep, NamedContext, Plan, RunMount,
    RunStep, StageBase, StagePlan, Step, StepKind,
};

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;
