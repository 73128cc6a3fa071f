//! `kiln bake` building targets: independent targets run at the same time, a target waits
//! for the targets it uses as `target:` contexts, a failing target fails the bake with its
//! name and nothing exported for it (the others are cancelled), `--metadata-file` has one
//! entry per target, and `contexts = { x = "./dir" }` works for `FROM x`.
//! Needs the test environment (`source /tmp/kiln-testenv/env.sh`) and the RUN sandbox.

mod common;

use assert_cmd::Command;
use common::build::{sandbox_missing, write};
use common::TestEnv;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// [`common::build::kiln`] for bakes: no bake file or progress mode from the caller's
/// environment.
fn kiln(home: &Path) -> Command {
    let mut c = common::build::kiln(home);
    c.env_remove("BUILDX_BAKE_FILE")
        .env_remove("BUILDKIT_PROGRESS")
        // A bake that hangs fails the test instead of hanging it.
        .timeout(Duration::from_secs(180));
    c
}

/// A RUN that leaves its marker in a cache mount both targets share (one store) and waits
/// for the other target's marker: it only finishes when the two RUNs run at the same
/// time. Run one after the other, the first gives up after 20 s with exit code 7.
fn rendezvous(base: &str, me: &str, other: &str) -> String {
    format!(
        "FROM {base}\n\
         RUN --mount=type=cache,id=rendezvous,target=/r touch /r/{me}; i=0; \
         while [ ! -e /r/{other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.1; done; \
         echo {me} > /from-{me}\n"
    )
}

#[test]
fn independent_targets_run_together_and_dependents_wait() {
    if sandbox_missing() {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIP: one CPU: kiln bake builds one target at a time here");
        return;
    }
    let env = TestEnv::get();
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(dir, "Dockerfile.a", &rendezvous(&env.base_image, "a", "b"));
    write(dir, "Dockerfile.b", &rendezvous(&env.base_image, "b", "a"));
    // c starts from a's image: it can only build once a is done.
    write(
        dir,
        "Dockerfile.c",
        "FROM base\nRUN cat /from-a > /c-saw-a\n",
    );
    write(
        dir,
        "docker-bake.hcl",
        r#"
group "default" { targets = ["c", "a", "b"] }
target "a" {
  dockerfile = "Dockerfile.a"
  tags = ["example.com/a:1"]
  output = ["type=local,dest=out/a"]
}
target "b" {
  dockerfile = "Dockerfile.b"
  output = ["type=local,dest=out/b"]
}
target "c" {
  dockerfile = "Dockerfile.c"
  contexts = { base = "target:a" }
  output = ["type=local,dest=out/c"]
}
"#,
    );
    let started = Instant::now();
    let out = kiln(home.path())
        .current_dir(dir)
        .args(["bake", "--progress=plain", "--metadata-file", "meta.json"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the rendezvous took {:?}: {err}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/a/from-a")).expect("a"),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/b/from-b")).expect("b"),
        "b\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/c/c-saw-a")).expect("c"),
        "a\n"
    );

    // Plain progress: every step has its own #id across the targets, and is labelled
    // with its target as buildx does.
    let mut ids = HashSet::new();
    let mut labels = Vec::new();
    for line in err.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((id, text)) = rest.split_once(' ') else {
            continue;
        };
        if text.starts_with('[') {
            assert!(ids.insert(id.to_string()), "#{id} used twice:\n{err}");
            labels.push(text.to_string());
        }
    }
    for t in ["a", "b", "c"] {
        assert!(
            labels
                .iter()
                .any(|l| l.starts_with(&format!("[{t} ")) && l.contains("RUN")),
            "no RUN step labelled [{t} ...]: {labels:?}"
        );
    }
    // c's RUN started after a's finished.
    let pos = |needle: &str| {
        err.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{err}"))
    };
    assert!(pos("a: exported") < pos("building target c"), "{err}");

    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("metadata file"))
            .expect("JSON");
    for t in ["a", "b", "c"] {
        let d = meta[t]["containerimage.digest"]
            .as_str()
            .unwrap_or_default();
        assert!(d.starts_with("sha256:"), "{t}: {meta}");
        assert_eq!(meta[t]["containerimage.descriptor"]["digest"], d, "{meta}");
    }
    assert_eq!(meta["a"]["image.name"], "example.com/a:1");
}

#[test]
fn a_failing_target_fails_the_bake_cancels_the_others_and_exports_nothing() {
    if sandbox_missing() {
        return;
    }
    let env = TestEnv::get();
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let base = &env.base_image;
    write(
        dir,
        "docker-bake.hcl",
        &format!(
            r#"
group "default" {{ targets = ["bad", "slow", "after"] }}
target "bad" {{
  dockerfile-inline = "FROM {base}\nRUN sleep 1; exit 3\n"
  output = ["type=local,dest=out/bad"]
}}
target "slow" {{
  dockerfile-inline = "FROM {base}\nRUN sleep 90\nRUN echo never\n"
  output = ["type=local,dest=out/slow"]
}}
target "after" {{
  dockerfile-inline = "FROM dep\nRUN true\n"
  contexts = {{ dep = "target:bad" }}
  output = ["type=local,dest=out/after"]
}}
"#
        ),
    );
    let started = Instant::now();
    let out = kiln(home.path())
        .current_dir(dir)
        .args(["bake", "--progress=plain", "--metadata-file", "meta.json"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: target bad: ") && err.contains("exit code: 3"),
        "{err}"
    );
    // slow's RUN was killed, not waited for.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}: {err}",
        started.elapsed()
    );
    assert!(err.contains(" CANCELED"), "{err}");
    assert!(!err.contains("building target after"), "{err}");
    for t in ["bad", "slow", "after"] {
        assert!(!dir.join("out").join(t).exists(), "{t} was exported");
    }
    assert!(!dir.join("meta.json").exists());
}

#[test]
fn a_local_named_context_is_a_stage_root_in_bake() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write(dir, "files/etc/app.conf", "port=80\n");
    write(dir, "files/secret.key", "never in the image\n");
    write(dir, "files/.dockerignore", "*.key\n");
    write(
        dir,
        "Dockerfile",
        &format!(
            "FROM src AS conf\n\
             FROM {}\n\
             COPY --from=conf /etc/app.conf /srv/\n\
             COPY --from=src / /all/\n",
            env.base_image
        ),
    );
    write(
        dir,
        "docker-bake.hcl",
        r#"
target "default" {
  contexts = { src = "./files" }
  output = ["type=local,dest=out"]
}
"#,
    );
    let out = kiln(home.path())
        .current_dir(dir)
        .args(["bake", "--progress=plain"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[context src] load"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/srv/app.conf")).expect("conf"),
        "port=80\n"
    );
    assert!(dir.join("out/all/etc/app.conf").is_file());
    assert!(!dir.join("out/all/secret.key").exists(), ".dockerignore");
}
