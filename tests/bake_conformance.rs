//! The `docker buildx bake --print` compatibility corpus (../shared/conformance/bake):
//! every case's expected output was produced by the real buildx. The suite fails when
//! kiln passes fewer cases than the threshold, which only ever goes up.

use std::path::PathBuf;
use std::process::Command;

/// Cases that must pass (of 539 in the corpus copy this was last raised with).
const MIN_PASSED: usize = 538;

#[test]
fn bake_print_matches_buildx() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/bake");
    let run = corpus.join("run.sh");
    assert!(
        run.exists(),
        "the bake conformance corpus is missing at {}: CI checks out ../shared beside the repository",
        corpus.display()
    );
    let out = Command::new("bash")
        .arg(&run)
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .output()
        .expect("run.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary from run.sh:\n{stdout}"));
    let passed: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {summary:?}"));
    println!("bake conformance: {summary}");
    for line in stdout.lines().filter(|l| l.starts_with("FAIL")) {
        println!("  {line}");
    }
    assert!(
        passed >= MIN_PASSED,
        "bake conformance regressed: {summary} (need at least {MIN_PASSED} passed)\n{stdout}"
    );
}
