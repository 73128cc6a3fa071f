//! `run::cancel_all` stops a running sandbox (its own test binary: it kills every sandbox
//! of the process).

use std::path::Path;
use std::time::{Duration, Instant};

use kiln::engine::run::{self, run_with_helper, NetworkMode, RunSpec};

#[test]
fn cancel_all_kills_the_sandbox() {
    if run::check_available().is_err() {
        eprintln!("SKIP: the RUN sandbox is not available here");
        return;
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile/base");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("index.json")).expect("index"))
            .expect("json");
    let blob = |d: &str| {
        base.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let inner: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().expect("d"))).expect("r"),
    )
    .expect("json");
    let m = inner["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["platform"]["architecture"] == run::host_arch())
        .expect("platform");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(m["digest"].as_str().expect("d"))).expect("r"))
            .expect("json");
    let layer = tempfile::tempdir().expect("tempdir");
    kiln::engine::layer::extract_layer(
        &blob(manifest["layers"][0]["digest"].as_str().expect("d")),
        manifest["layers"][0]["mediaType"].as_str().expect("mt"),
        layer.path(),
    )
    .expect("extract");
    let spec = RunSpec {
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo started; sleep 60".into(),
        ],
        env: vec!["PATH=/bin:/usr/bin".into()],
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
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let canceller = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(800));
        run::cancel_all();
    });
    let start = Instant::now();
    let mut out = Vec::new();
    let outcome = run_with_helper(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &[layer.path().to_path_buf()],
        &spec,
        scratch.path(),
        &mut |b| out.extend_from_slice(b),
    )
    .expect("run");
    canceller.join().expect("join");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(outcome.exit_code, 137);
    assert_eq!(out, b"started\n");
}
