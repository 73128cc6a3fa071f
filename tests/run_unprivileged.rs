//! The unprivileged RUN executor end to end, where it is meant to run: `kiln build` inside a
//! container of the test Docker engine, from the busybox base image, with Docker's
//! default seccomp profile and capabilities (no `CAP_SYS_ADMIN`: `unshare` fails there),
//! compared byte for byte with the same build by the namespace sandbox on the host.
//! Also: a failing RUN, `--network=none`, and `auto` refusing to rewrite the root of a
//! machine that is not a container.
//!
//! Needs the test environment (`scripts/test-env.sh up`); a test skips, saying why, only
//! when the Docker engine truly does not answer or the machine lacks what it checks.

mod common;

use common::build::contains_anywhere;
use common::oci::OciArchive;
use common::TestEnv;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");
const SECRET: &str = "s3cr3t-unpriv-5150-e2e";

/// A multi-stage build exercising what RUN can do to a filesystem: create, delete,
/// rename, chmod/chown, a USER RUN, WORKDIR, ENV, a secret, COPY --from, and a second
/// stage that must not see the first stage's files (the root is re-synced).
const DOCKERFILE: &str = r#"ARG BASE
FROM ${BASE} AS build
ENV GREETING=hello
WORKDIR /work
RUN echo "$GREETING from $(pwd)" > greeting.txt && mkdir -p /data/sub && echo one > /data/one && echo two > /data/sub/two && ln /data/one /data/one-link && echo pair > /data/pair-a && ln /data/pair-a /data/pair-b
RUN rm /data/one && mv /data/sub /data/moved && chmod 0700 /data/moved && chown 1000:1000 /data/moved/two && ln -s /data/moved/two /data/link && chmod 4755 /data/one-link && echo more >> /data/pair-a
RUN echo "kb:x:1234:1234::/home/kb:/bin/sh" >> /etc/passwd && echo "kb:x:1234:" >> /etc/group && mkdir -p /home/kb && chown 1234:1234 /home/kb
USER kb
RUN id > /tmp/id.txt && touch /tmp/user-file && echo mine > /home/kb/file
USER root
RUN --mount=type=secret,id=tok,mode=0440,uid=1234 test "$(stat -c %a:%u /run/secrets/tok)" = 440:1234 && wc -c < /run/secrets/tok > /secret-len
RUN --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/var/cache/kiln-test echo temp > /scratch/t && echo cached >> /var/cache/kiln-test/log

FROM ${BASE}
RUN test ! -e /work/greeting.txt && test ! -e /data && test ! -e /secret-len && echo clean > /clean
COPY --from=build /work/greeting.txt /data/ /copied/
RUN --mount=type=bind,source=ctxfile.txt,target=/mnt/ctx.txt cp /mnt/ctx.txt /from-bind && rm -rf /copied/moved/two /bin/sed && echo final > /final
"#;

/// A context with `dockerfile`, a file to bind and the secret.
fn context(dockerfile: &str) -> tempfile::TempDir {
    common::build::context(
        dockerfile,
        &[
            ("ctxfile.txt", "from the context\n"),
            ("secret.txt", SECRET),
        ],
    )
}

fn docker(env: &TestEnv) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", &env.docker_host);
    c
}

/// Why Docker cannot be used, if it cannot (the only reason to skip).
fn docker_unavailable(env: &TestEnv) -> Option<String> {
    match docker(env)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Err(e) => Some(format!("no docker client: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "the Docker engine at {} does not answer: {}",
            env.docker_host,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

macro_rules! need_docker {
    ($env:expr) => {
        if let Some(reason) = docker_unavailable(&$env) {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

/// The shared libraries the kiln binary loads (empty for a static binary), from `ldd`.
fn libraries() -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(KILN).output().expect("ldd runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// `docker run` of the base image with kiln, its libraries (read-only), the context, an
/// output dir and a store mounted, running `script` with `sh -c`.
fn in_container(
    env: &TestEnv,
    ctx: &Path,
    out: &Path,
    home: &Path,
    script: &str,
) -> (bool, String) {
    let pulled = docker(env)
        .args(["pull", "-q", &env.base_image])
        .output()
        .expect("docker pull runs");
    assert!(
        pulled.status.success(),
        "docker pull {}: {}",
        env.base_image,
        String::from_utf8_lossy(&pulled.stderr)
    );
    let mut c = docker(env);
    c.args(["run", "--rm", "--network", "host"]);
    c.arg("-v").arg(format!("{KILN}:/usr/local/bin/kiln:ro"));
    let dirs: BTreeSet<PathBuf> = libraries()
        .iter()
        .filter_map(|l| l.parent().map(Path::to_path_buf))
        .collect();
    for d in dirs {
        c.arg("-v").arg(format!("{0}:{0}:ro", d.display()));
    }
    c.arg("-v").arg(format!("{}:/ctx:ro", ctx.display()));
    c.arg("-v").arg(format!("{}:/out", out.display()));
    c.arg("-v").arg(format!("{}:/kiln-home", home.display()));
    c.args([
        "-e",
        "KILN_HOME=/kiln-home",
        "-e",
        "SOURCE_DATE_EPOCH=0",
        "-e",
        "NO_COLOR=1",
    ]);
    c.args([&env.base_image, "sh", "-c", script]);
    let o = c.output().expect("docker run runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn build_args(
    env: &TestEnv,
    target: Option<&str>,
    dest: &str,
    ctx: &str,
    secret: &str,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "build".into(),
        "--progress=plain".into(),
        "--build-arg".into(),
        format!("BASE={}", env.base_image),
        "--secret".into(),
        format!("id=tok,src={secret}"),
        "-o".into(),
        format!("type=oci,dest={dest}"),
    ];
    if let Some(t) = target {
        a.push("--target".into());
        a.push(t.into());
    }
    a.push(ctx.into());
    a
}

/// The layers of an OCI archive, each as `tar -tv` lines plus content digests, for a
/// readable difference when two archives are not identical.
fn describe(archive: &Path) -> String {
    let oci = OciArchive::unpack(archive);
    let manifest = oci.first_manifest();
    let mut out = format!(
        "config: {}\n",
        String::from_utf8(oci.blob(manifest["config"]["digest"].as_str().expect("config")))
            .expect("config")
    );
    for l in manifest["layers"].as_array().expect("layers") {
        let d = l["digest"].as_str().expect("digest");
        let listing = Command::new("tar")
            .arg("-tvzf")
            .arg(oci.blob_path(d))
            .output()
            .expect("tar runs");
        out.push_str(&format!(
            "layer {d}\n{}",
            String::from_utf8_lossy(&listing.stdout)
        ));
    }
    out
}

/// A file of the image's last layer that has `path`.
fn file_in_image(archive: &Path, path: &str) -> Option<String> {
    let oci = OciArchive::unpack(archive);
    let manifest = oci.first_manifest();
    let mut found = None;
    for l in manifest["layers"].as_array().expect("layers") {
        let o = Command::new("tar")
            .arg("-xzOf")
            .arg(oci.blob_path(l["digest"].as_str().expect("digest")))
            .arg(path.trim_start_matches('/'))
            .output()
            .expect("tar runs");
        if o.status.success() {
            found = Some(String::from_utf8_lossy(&o.stdout).into_owned());
        }
    }
    found
}

#[test]
fn build_in_a_container_without_namespaces_matches_the_sandbox() {
    let env = TestEnv::get();
    need_docker!(env);
    let ctx = context(DOCKERFILE);
    let out = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let q = |a: Vec<String>| a.join(" ");
    let script = format!(
        "set -e; kiln builder inspect | grep Executor; kiln {} ; kiln {}",
        q(build_args(
            &env,
            Some("build"),
            "/out/build.tar",
            "/ctx",
            "/ctx/secret.txt"
        )),
        q(build_args(
            &env,
            None,
            "/out/final.tar",
            "/ctx",
            "/ctx/secret.txt"
        )),
    );
    let (ok, log) = in_container(&env, ctx.path(), out.path(), home.path(), &script);
    assert!(ok, "the build in the container failed:\n{log}");
    assert!(
        log.contains("Executor:      unprivileged (auto:") && log.contains("/.dockerenv exists"),
        "builder inspect in the container:\n{log}"
    );
    assert_eq!(
        log.matches("=> RUN executor: unprivileged").count(),
        2,
        "the choice is said once per build:\n{log}"
    );
    // Fresh store: the 6 RUNs of `build` (one sync: they follow each other), then for the
    // final image its first RUN (a sync back to the base), `build` from the cache, and
    // the last RUN after a COPY (a sync).
    assert_eq!(log.matches("/ synced to the stage").count(), 3, "{log}");
    assert!(!log.contains(SECRET), "the secret is in the log:\n{log}");

    // The same builds on the host, in the namespace sandbox.
    let available = Command::new(KILN)
        .args(["builder", "inspect"])
        .output()
        .expect("kiln runs");
    let inspect = String::from_utf8_lossy(&available.stdout);
    if !inspect.contains("Executor:      sandbox") {
        panic!("the host cannot run the sandbox to compare with (CI must): {inspect}");
    }
    let host_home = tempfile::tempdir().expect("tempdir");
    let host_out = tempfile::tempdir().expect("tempdir");
    for (target, name) in [(Some("build"), "build.tar"), (None, "final.tar")] {
        let dest = host_out.path().join(name);
        let o = Command::new(KILN)
            .env("KILN_HOME", host_home.path())
            .env("SOURCE_DATE_EPOCH", "0")
            .env("NO_COLOR", "1")
            .arg("build")
            .arg("--executor=sandbox")
            .args(
                build_args(
                    &env,
                    target,
                    &dest.display().to_string(),
                    &ctx.path().display().to_string(),
                    &ctx.path().join("secret.txt").display().to_string(),
                )[1..]
                    .iter(),
            )
            .output()
            .expect("kiln runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "host build {name}: {err}");
        assert!(err.contains("RUN executor: sandbox"), "{err}");
        let unpriv = out.path().join(name);
        let a = std::fs::read(&unpriv).expect("the container's archive");
        let b = std::fs::read(&dest).expect("the host's archive");
        if a != b {
            panic!(
                "{name}: the unprivileged build differs from the sandbox build\n--- unprivileged\n{}\n--- sandbox\n{}",
                describe(&unpriv),
                describe(&dest)
            );
        }
    }
    // Identical archives: check what they hold once.
    let build = out.path().join("build.tar");
    assert_eq!(
        file_in_image(&build, "/tmp/id.txt")
            .as_deref()
            .map(str::trim),
        Some("uid=1234(kb) gid=1234(kb) groups=1234(kb)")
    );
    assert_eq!(
        file_in_image(&build, "/secret-len")
            .as_deref()
            .map(str::trim),
        Some("22")
    );
    assert_eq!(
        file_in_image(&build, "/work/greeting.txt").as_deref(),
        Some("hello from /work\n")
    );
    let listing = describe(&build);
    for want in [
        "data/.wh.one",
        "data/.wh.sub",
        "drwx------ 0/0",
        "-rwsr-xr-x 0/0",
        "1000/1000",
        "data/link -> /data/moved/two",
    ] {
        assert!(listing.contains(want), "{want} not in\n{listing}");
    }
    // Mount targets leave nothing behind (the config's history names them, hence the
    // layer lines only).
    for gone in ["run/", "scratch", "var/cache", "mnt/"] {
        assert!(
            !listing
                .lines()
                .filter(|l| !l.starts_with("config:"))
                .any(|l| l.contains(gone)),
            "{gone} in\n{listing}"
        );
    }
    let fin = out.path().join("final.tar");
    assert_eq!(file_in_image(&fin, "/clean").as_deref(), Some("clean\n"));
    assert_eq!(
        file_in_image(&fin, "/from-bind").as_deref(),
        Some("from the context\n")
    );
    assert!(describe(&fin).contains("bin/.wh.sed"));
    for dir in [out.path(), home.path()] {
        let hits = contains_anywhere(dir, SECRET.as_bytes());
        assert!(hits.is_empty(), "the secret is in {hits:?}");
    }
}

#[test]
fn failing_run_reports_its_exit_code_caches_nothing_and_network_none_is_refused() {
    let env = TestEnv::get();
    need_docker!(env);
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nRUN echo marker-before > /m && echo ran-the-step && exit 3\n",
    );
    std::fs::write(
        ctx.path().join("Dockerfile.none"),
        "ARG BASE\nFROM ${BASE}\nRUN --network=none true\n",
    )
    .expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let base = format!("--build-arg BASE={}", env.base_image);
    let script = format!(
        "kiln build --progress=plain {base} /ctx; echo \"rc=$?\"; \
         kiln build --progress=plain {base} /ctx; echo \"rc=$?\"; \
         kiln build --progress=plain {base} -f /ctx/Dockerfile.none /ctx; echo \"rc=$?\""
    );
    let (_, log) = in_container(&env, ctx.path(), out.path(), home.path(), &script);
    assert_eq!(log.matches("rc=1").count(), 3, "{log}");
    let failed = log
        .lines()
        .filter(|l| {
            l.starts_with('#') && l.contains("ERROR: process") && l.contains("exit code: 3")
        })
        .count();
    assert_eq!(failed, 2, "{log}");
    // Both builds ran the step: nothing was cached by the first.
    let live = log
        .lines()
        .filter(|l| l.starts_with('#') && l.ends_with(" ran-the-step"))
        .count();
    assert_eq!(live, 2, "{log}");
    assert!(!log.contains("CACHED"), "{log}");
    let records = std::fs::read_dir(home.path().join("keys"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(records, 0, "a failed RUN left cache records");
    assert!(
        log.contains("RUN --network=none needs a network namespace"),
        "{log}"
    );
    assert!(
        log.contains("--executor=sandbox"),
        "the hint names the way out:\n{log}"
    );
}

/// Runs `kiln ARGS` as root in a chroot holding only kiln, its libraries, `/proc`, an
/// empty store and `ctx`, without `CAP_SYS_ADMIN` (so no namespaces), in a private mount
/// namespace: a machine that is no container, where the sandbox cannot run.
fn in_bare_chroot(root: &Path, args: &str) -> (bool, String) {
    let script = format!(
        "mount -t proc proc {0}/proc && exec setpriv --bounding-set=-sys_admin -- chroot {0} /kiln {args}",
        root.display()
    );
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "sh",
            "-c",
            &script,
        ])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("KILN_HOME", "/home/kiln")
        .env("HOME", "/home")
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn auto_outside_a_container_refuses_and_names_the_opt_in() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: making a chroot without CAP_SYS_ADMIN needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for d in ["proc", "home", "ctx"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(KILN, root.join("kiln")).expect("copy kiln");
    for lib in libraries() {
        let dest = root.join(lib.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&lib, &dest).expect("copy a library");
    }
    std::fs::write(root.join("ctx/Dockerfile"), "FROM scratch\nRUN true\n").expect("write");
    std::fs::write(root.join("canary"), "still here").expect("write");
    let (_, inspect) = in_bare_chroot(root, "builder inspect");
    if !inspect.contains("Executor:") {
        panic!("kiln did not run in the chroot:\n{inspect}");
    }
    if inspect.contains("Executor:      unprivileged") || inspect.contains("Executor:      sandbox")
    {
        eprintln!("SKIP: this machine looks like a container even from a bare chroot: {inspect}");
        return;
    }
    let (ok, log) = in_bare_chroot(root, "build --progress=plain /ctx");
    assert!(!ok, "{log}");
    assert!(
        log.contains("does not seem to run inside a container"),
        "{log}"
    );
    assert!(
        log.contains("--executor=unprivileged"),
        "the hint names the opt-in:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("canary")).expect("the canary"),
        "still here"
    );
    assert!(root.join("kiln").exists() && root.join("ctx/Dockerfile").exists());
}

#[test]
fn bake_in_a_container_keeps_earlier_targets_outputs() {
    let env = TestEnv::get();
    need_docker!(env);
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nARG NAME\nRUN echo \"$NAME\" > /name && rm -rf /results-probe\n",
    );
    std::fs::write(
        ctx.path().join("docker-bake.hcl"),
        format!(
            r#"group "default" {{ targets = ["a", "b"] }}
target "a" {{
  context = "/ctx"
  args = {{ BASE = "{base}", NAME = "a" }}
  output = ["type=oci,dest=/results/a.tar"]
}}
target "b" {{
  context = "/ctx"
  contexts = {{ first = "target:a" }}
  args = {{ BASE = "{base}", NAME = "b" }}
  output = ["type=oci,dest=/results/b.tar"]
}}
"#,
            base = env.base_image
        ),
    )
    .expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    // /results is in the container's own root filesystem, not a mount: target b's RUN
    // re-syncs `/` to its stage, and a.tar must survive that.
    let script = "set -e; mkdir /results; cd /ctx; \
                  kiln bake --progress=plain --executor=unprivileged; \
                  ls /results; cp /results/a.tar /results/b.tar /out/";
    let (ok, log) = in_container(&env, ctx.path(), out.path(), home.path(), script);
    assert!(ok, "{log}");
    assert!(
        log.contains("RUN executor: unprivileged (chosen with --executor or KILN_EXECUTOR)"),
        "{log}"
    );
    assert_eq!(
        file_in_image(&out.path().join("a.tar"), "/name").as_deref(),
        Some("a\n")
    );
    assert_eq!(
        file_in_image(&out.path().join("b.tar"), "/name").as_deref(),
        Some("b\n")
    );
}

#[test]
fn platforms_take_turns_on_the_root_and_foreign_ones_run_through_qemu() {
    let env = TestEnv::get();
    need_docker!(env);
    let ctx = context("ARG BASE\nFROM ${BASE}\nRUN uname -m > /arch\n");
    let out = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "kiln build --progress=plain --build-arg BASE={} --platform linux/arm64,linux/amd64 \
         -o type=oci,dest=/out/img.tar /ctx",
        env.base_image
    );
    let (ok, log) = in_container(&env, ctx.path(), out.path(), home.path(), &script);
    assert!(ok, "{log}");
    let oci = OciArchive::unpack(&out.path().join("img.tar"));
    let inner = oci.first_manifest();
    let mut arches = Vec::new();
    for m in inner["manifests"]
        .as_array()
        .expect("an index of two images")
    {
        let manifest = oci.blob_json(m["digest"].as_str().expect("digest"));
        let layers = manifest["layers"].as_array().expect("layers");
        let last = layers.last().expect("a layer")["digest"]
            .as_str()
            .expect("digest");
        let o = Command::new("tar")
            .arg("-xzOf")
            .arg(oci.blob_path(last))
            .arg("arch")
            .output()
            .expect("tar runs");
        arches.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
    }
    arches.sort();
    assert_eq!(arches, ["aarch64", "x86_64"], "{log}");
}
