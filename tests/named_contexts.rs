//! Named contexts (`--build-context name=...`) wherever a Dockerfile may use them, with
//! BuildKit's semantics: `FROM name` on a local directory (the directory as the stage's
//! root filesystem: one layer, owners 0:0, its `.dockerignore` applied),
//! `RUN --mount=type=bind,from=name` for a directory (read-only, or a throw-away copy
//! with `rw`), an image and an OCI layout. Needs the test environment
//! (`source /tmp/kiln-testenv/env.sh`); RUN cases need the sandbox.

mod common;

use assert_cmd::Command;
use common::build::{sandbox_missing, write};
use common::TestEnv;
use std::path::Path;

/// [`common::build::kiln`] with no progress mode from the caller's environment and a
/// time limit.
fn kiln(home: &Path) -> Command {
    let mut c = common::build::kiln(home);
    c.env_remove("BUILDKIT_PROGRESS")
        .timeout(std::time::Duration::from_secs(180));
    c
}

/// Runs kiln in `dir`; returns (success, stderr).
fn build(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = kiln(home)
        .current_dir(dir)
        .arg("build")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn from_a_local_directory_is_one_layer_of_its_files() {
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(dir, "root/etc/motd", "hi\n");
    write(dir, "root/bin/tool", "#!/bin/sh\n");
    write(dir, "root/junk.log", "excluded\n");
    write(dir, "root/.dockerignore", "*.log\n");
    write(dir, "ctx/Dockerfile", "FROM rootfs\nENV A=1\n");
    let (ok, err) = build(
        home.path(),
        dir,
        &[
            "--progress=plain",
            "--build-context",
            "rootfs=./root",
            "-o",
            "type=oci,dest=img.tar",
            "-o",
            "type=tar,dest=fs.tar",
            "ctx",
        ],
    );
    assert!(ok, "{err}");
    let list = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(dir.join("fs.tar"))
        .output()
        .expect("tar");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("etc/motd"), "{list}");
    assert!(list.contains("bin/tool"), "{list}");
    assert!(
        !list.contains("junk.log"),
        ".dockerignore of the context: {list}"
    );
    for l in list.lines() {
        assert!(l.contains(" 0/0 "), "owner is not 0:0: {l}");
    }
    let oci = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(dir.join("img.tar"))
        .arg("-C")
        .arg(oci.path())
        .status()
        .expect("tar");
    assert!(st.success());
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}", oci.path().display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );
    let layered = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(layered, 1, "one history entry per layer: {config}");
    assert!(config["config"]["Env"].to_string().contains("A=1"));

    // Same directory: all cached. A changed file: a new layer.
    let again = [
        "--progress=plain",
        "--build-context",
        "rootfs=./root",
        "ctx",
    ];
    let (ok, err) = build(home.path(), dir, &again);
    assert!(ok, "{err}");
    assert!(err.contains("CACHED"), "{err}");
    write(dir, "root/etc/motd", "changed\n");
    let (ok, err) = build(home.path(), dir, &again);
    assert!(ok, "{err}");
    assert!(!err.contains("CACHED"), "{err}");
}

#[test]
fn run_binds_a_named_directory_read_only_or_as_a_copy() {
    if sandbox_missing() {
        return;
    }
    let env = TestEnv::get();
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(dir, "data/in.txt", "from the named context\n");
    write(
        dir,
        "ctx/Dockerfile",
        &format!(
            "FROM {}\n\
             RUN --mount=type=bind,from=data,target=/d cat /d/in.txt > /ro.txt && \
             if touch /d/x 2>/dev/null; then echo writable; else echo read-only; fi >> /ro.txt\n\
             RUN --mount=type=bind,from=data,target=/d,rw echo new > /d/in.txt && cat /d/in.txt > /rw.txt\n",
            env.base_image
        ),
    );
    let args = [
        "--progress=plain",
        "--build-context",
        "data=./data",
        "-o",
        "type=local,dest=out",
        "ctx",
    ];
    let (ok, err) = build(home.path(), dir, &args);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/ro.txt")).expect("ro"),
        "from the named context\nread-only\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/rw.txt")).expect("rw"),
        "new\n"
    );
    // The rw mount wrote to a copy, never to the directory.
    assert_eq!(
        std::fs::read_to_string(dir.join("data/in.txt")).expect("data"),
        "from the named context\n"
    );
    // What the mount reads is in the RUN's cache key.
    write(dir, "data/in.txt", "second\n");
    let (ok, err) = build(home.path(), dir, &args);
    assert!(ok, "{err}");
    assert!(
        std::fs::read_to_string(dir.join("out/ro.txt"))
            .expect("ro")
            .starts_with("second\n"),
        "{err}"
    );
}

#[test]
fn run_binds_named_images_and_oci_layouts() {
    if sandbox_missing() {
        return;
    }
    let env = TestEnv::get();
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(
        dir,
        "ctx/Dockerfile",
        &format!(
            "FROM {}\n\
             RUN --mount=type=bind,from=img,target=/i --mount=type=bind,from=layout,target=/l \
             test -x /i/bin/busybox && test -x /l/bin/busybox && echo both > /seen\n",
            env.base_image
        ),
    );
    let img = format!("img=docker-image://{}", env.base_image);
    let layout = format!("layout=oci-layout://{}:latest", env.base_layout.display());
    let (ok, err) = build(
        home.path(),
        dir,
        &[
            "--progress=plain",
            "--build-context",
            &img,
            "--build-context",
            &layout,
            "-o",
            "type=local,dest=out",
            "ctx",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/seen")).expect("seen"),
        "both\n"
    );
}

#[test]
fn a_target_context_outside_bake_is_a_clear_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(
        dir,
        "ctx/Dockerfile",
        "FROM scratch\nCOPY --from=dep /x /x\n",
    );
    let (ok, err) = build(
        home.path(),
        dir,
        &[
            "--progress=plain",
            "--build-context",
            "dep=target:dep",
            "ctx",
        ],
    );
    assert!(!ok);
    assert!(err.contains("only kiln bake can build"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
}
