//! The RUN sandbox driven directly through the library: the kiln binary as its helper, the
//! base image of the Dockerfile conformance corpus as the lower layer, RUN specs.

use std::path::{Path, PathBuf};

use kiln::engine::run::{self, NetworkMode, RunSpec};

use super::Layout;

/// The kiln binary, the sandbox's helper.
pub const HELPER: &str = env!("CARGO_BIN_EXE_kiln");
/// BuildKit's default `PATH` for RUN.
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The Dockerfile conformance corpus (`../shared/conformance/dockerfile`).
pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile")
}

/// The corpus's multi-platform base image, an OCI layout.
pub fn corpus_base() -> Layout {
    Layout {
        root: corpus().join("base"),
    }
}

/// Extracts the (single) layer of the corpus base image for `arch` into `dest`.
pub fn extract_base_layer(arch: &str, dest: &Path) {
    let base = corpus_base();
    let inner = base.first_manifest();
    let m = inner["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .expect("platform in the base image");
    let manifest = base.blob_json(m["digest"].as_str().expect("digest"));
    let layer = &manifest["layers"][0];
    kiln::engine::layer::extract_layer(
        &base.blob_path(layer["digest"].as_str().expect("digest")),
        layer["mediaType"].as_str().expect("media type"),
        dest,
    )
    .expect("extract the base layer");
}

/// `sh -c script` as root in `/` with `env`: hostname `buildkitsandbox`, the default
/// network, no mounts, the host's architecture.
pub fn shell_spec(script: &str, env: &[&str]) -> RunSpec {
    RunSpec {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: env.iter().map(|e| e.to_string()).collect(),
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        hostname: "buildkitsandbox".into(),
        network: NetworkMode::Default,
        mounts: vec![],
        platform_arch: run::host_arch().into(),
        extra_hosts: vec![],
        insecure: false,
    }
}
