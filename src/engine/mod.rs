//! The embedded build engine: Dockerfile + target -> image, without a daemon.
//!
//! `fs` is the shared filesystem model; `layer` writes and reads layer tars; `store` is the
//! content-addressed store and cache index in `$KILN_HOME`; `plan` turns a Dockerfile into
//! per-platform steps with cache keys; `copy` computes what COPY/ADD change; `exec` runs the
//! steps; `export` writes images to registries, OCI/docker archives, local dirs and tars.

pub mod config;
pub mod context;
pub mod copy;
pub mod exec;
pub mod export;
pub mod fs;
pub mod key;
pub mod layer;
pub mod layered_fs;
pub mod output;
pub mod plan;
pub mod pull;
pub mod remote_context;
pub mod rootfs;
pub mod run;
pub mod store;
pub mod users;
