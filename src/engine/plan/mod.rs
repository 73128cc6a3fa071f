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
//! once per platform.

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
