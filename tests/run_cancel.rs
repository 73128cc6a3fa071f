//! `run::cancel_all` stops a running sandbox (its own test binary: it kills every sandbox
//! of the process).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sandbox::{extract_base_layer, shell_spec, HELPER};
use kiln::engine::run::{self, run_with_helper};

#[test]
fn cancel_all_kills_the_sandbox() {
    if run::check_available().is_err() {
        eprintln!("SKIP: the RUN sandbox is not available here");
        return;
    }
    let layer = tempfile::tempdir().expect("tempdir");
    extract_base_layer(run::host_arch(), layer.path());
    let spec = shell_spec("echo started; sleep 60", &["PATH=/bin:/usr/bin"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let canceller = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(800));
        run::cancel_all();
    });
    let start = Instant::now();
    let mut out = Vec::new();
    let outcome = run_with_helper(
        Path::new(HELPER),
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
