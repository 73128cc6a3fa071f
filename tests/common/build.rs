//! Running the kiln binary on a build context: the command, the context and its files, and
//! what the tests check in the results (a registry's manifests, secrets left in files).

use std::path::Path;

use assert_cmd::Command;

/// The kiln binary with `home` as its store (`KILN_HOME`) and no colours (`NO_COLOR=1`).
pub fn kiln(home: &Path) -> Command {
    let mut c = Command::cargo_bin("kiln").expect("kiln binary");
    c.env("KILN_HOME", home).env("NO_COLOR", "1");
    c
}

/// Writes `text` to `dir/name`, creating the directories on the way.
pub fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

/// A temporary build context: `dockerfile` as `Dockerfile`, plus `files` (name, content).
pub fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    dir
}

/// `kiln build --progress=plain --iidfile iid --build-arg BASE=<base> EXTRA… .` in `ctx`
/// with `home` as the store and `SOURCE_DATE_EPOCH=1700000000`; asserts that it succeeds
/// and returns the image id and the log.
pub fn build_iid(home: &Path, ctx: &Path, base: &str, extra: &[&str]) -> (String, String) {
    let out = kiln(home)
        .current_dir(ctx)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "--progress=plain",
            "--iidfile",
            "iid",
            "--build-arg",
        ])
        .arg(format!("BASE={base}"))
        .args(extra)
        .arg(".")
        .output()
        .expect("kiln runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build {extra:?} failed:\n{log}");
    let iid = std::fs::read_to_string(ctx.join("iid")).expect("iidfile");
    (iid, log)
}

/// Whether the RUN sandbox is missing here (then the caller skips; the reason is printed).
pub fn sandbox_missing() -> bool {
    if let Err(e) = kiln::engine::run::check_available() {
        eprintln!("SKIP: the RUN sandbox is not available here: {e}");
        return true;
    }
    false
}

/// The raw manifest (or index) of `reference` in a plain-HTTP registry, read by skopeo.
pub fn skopeo_raw(reference: &str) -> serde_json::Value {
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo cannot read {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("manifest JSON")
}

/// Every regular file under `dir` that contains `needle`, in its bytes or, for a gzip
/// blob, in its decompressed bytes.
pub fn contains_anywhere(dir: &Path, needle: &[u8]) -> Vec<String> {
    use std::io::Read;
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
                continue;
            }
            if !m.is_file() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let mut all = bytes.clone();
            let mut plain = Vec::new();
            if flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .is_ok()
            {
                all.extend_from_slice(&plain);
            }
            if all.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}
