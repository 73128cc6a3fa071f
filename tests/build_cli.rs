//! `kiln build` and `kiln bake` end to end on the real test environment: base images from
//! the local registry, pushes read back by skopeo, `--load` into the test Docker engine
//! and `docker run` (arm64 through QEMU), the build cache, determinism and bad input.

mod common;

use assert_cmd::Command;
use common::build::{build_iid, contains_anywhere, context, kiln, skopeo_raw};
use common::TestEnv;
use std::path::Path;

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const APP: &str = "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\nWORKDIR /srv\nCMD [\"cat\", \"/hello.txt\"]\n";

#[test]
fn push_is_readable_by_skopeo() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "hello from kiln\n")]);
    let tag = format!("{}/kiln-test/push:1", env.registry);
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args(["build", "--progress=plain", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-t", &tag, "--push", "."]));
    assert!(ok, "{err}");
    let m = skopeo_raw(&tag);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["layers"].as_array().map(Vec::len),
        Some(3),
        "base + COPY + WORKDIR: {m}"
    );
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            "--tls-verify=false",
            &format!("docker://{tag}"),
        ])
        .output()
        .expect("skopeo");
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config");
    assert_eq!(cfg["config"]["WorkingDir"], "/srv");
    assert_eq!(
        cfg["config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
}

#[test]
fn multi_platform_push_is_one_index() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "hi\n")]);
    let tag = format!("{}/kiln-test/multi:1", env.registry);
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--build-arg",
        ])
        .arg(format!("BASE={}", env.base_image))
        .args(["-t", &tag, "--push", "."]));
    assert!(ok, "{err}");
    let ix = skopeo_raw(&tag);
    let archs: Vec<String> = ix["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|d| {
            d["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(archs, vec!["amd64", "arm64"]);
}

#[test]
fn load_and_run_in_docker_amd64_and_arm64() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "loaded by kiln\n")]);
    for (platform, name) in [
        ("linux/amd64", "kiln-test-load:amd64"),
        ("linux/arm64", "kiln-test-load:arm64"),
    ] {
        let (ok, _, err) = run(kiln(home.path())
            .current_dir(ctx.path())
            .env("DOCKER_HOST", &env.docker_host)
            .args(["build", "--platform", platform, "--build-arg"])
            .arg(format!("BASE={}", env.base_image))
            .args(["-t", name, "--load", "."]));
        assert!(ok, "{platform}: {err}");
        let out = std::process::Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", &env.docker_host)
            .args([
                "run",
                "--rm",
                "--platform",
                platform,
                name,
                "sh",
                "-c",
                "cat /hello.txt; uname -m",
            ])
            .output()
            .expect("docker runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("loaded by kiln"), "{stdout}");
        let arch = if platform.ends_with("arm64") {
            "aarch64"
        } else {
            "x86_64"
        };
        assert!(stdout.contains(arch), "{platform}: {stdout}");
    }
}

#[test]
fn second_build_is_all_cached_and_digests_are_reproducible() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "same\n")]);
    let build = |extra: &[&str]| {
        let args = [extra, &["-o", "type=oci,dest=out.tar"]].concat();
        build_iid(home.path(), ctx.path(), &env.base_image, &args)
    };
    let (first, _) = build(&[]);
    let (second, log) = build(&[]);
    assert_eq!(first, second);
    assert_eq!(
        log.matches(" CACHED").count(),
        2,
        "both steps cached:\n{log}"
    );
    let (third, log) = build(&["--no-cache"]);
    assert!(!log.contains(" CACHED"), "{log}");
    assert_eq!(
        first, third,
        "same inputs, same digest even without the cache"
    );
}

#[test]
fn missing_copy_source_fails_cleanly() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context("ARG BASE\nFROM ${BASE}\nCOPY nope.txt /\n", &[]);
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=oci,dest=out.tar", "."]));
    assert!(!ok);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("nope.txt"), "{err}");
    assert!(!ctx.path().join("out.tar").exists(), "nothing exported");
    let leftovers: Vec<_> = std::fs::read_dir(ctx.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kiln"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bake_builds_the_quickstart_and_skopeo_reads_it() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for f in ["docker-bake.hcl", "Dockerfile", "VERSION", "hello.sh"] {
        std::fs::copy(src.join(f), work.path().join(f)).expect("copy example");
    }
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(work.path())
        .args(["bake", "--progress=plain"]));
    assert!(ok, "{err}");
    for t in ["app", "tools-lint", "tools-test"] {
        let archive = work.path().join(format!("build/{t}.tar"));
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}", archive.display()))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn local_and_tar_outputs_hold_the_root_filesystem() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "in the tree\n")]);
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args([
            "-o",
            "type=local,dest=rootfs",
            "-o",
            "type=tar,dest=rootfs.tar",
            ".",
        ]));
    assert!(ok, "{err}");
    let root = ctx.path().join("rootfs");
    assert_eq!(
        std::fs::read_to_string(root.join("hello.txt")).unwrap(),
        "in the tree\n"
    );
    assert!(root.join("srv").is_dir());
    assert!(std::fs::symlink_metadata(root.join("bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());
    let list = std::process::Command::new("tar")
        .args(["-tf"])
        .arg(ctx.path().join("rootfs.tar"))
        .output()
        .expect("tar");
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.lines().any(|l| l == "hello.txt"), "{names}");
    assert!(names.lines().any(|l| l == "bin/busybox"), "{names}");
}

/// A tiny HTTP server on loopback answering every request with `body`.
fn serve(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8).flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 21 Nov 2023 10:00:00 GMT\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_url_downloads_and_checks_checksums() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let url = serve("downloaded\n");
    let ctx = context(
        &format!("ARG BASE\nFROM ${{BASE}}\nADD {url}/file.txt /opt/\n"),
        &[],
    );
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=local,dest=out", "."]));
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("out/opt/file.txt")).unwrap(),
        "downloaded\n"
    );
    let bad = context(
        &format!(
            "ARG BASE\nFROM ${{BASE}}\nADD --checksum=sha256:{} {url}/file.txt /opt/\n",
            "0".repeat(64)
        ),
        &[],
    );
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(bad.path())
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=local,dest=out", "."]));
    assert!(!ok);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!bad.path().join("out").exists());
}

#[test]
fn secrets_never_reach_layers_config_cache_or_logs() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-value-9d1f7a";
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len\nRUN --mount=type=secret,id=tok,env=TOK test \"$(printf %s \"$TOK\" | wc -c)\" = 19 && echo ok > /envok\n",
        &[("tok.txt", secret)],
    );
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .args([
            "build",
            "--progress=plain",
            "--secret",
            "id=tok,src=tok.txt",
            "--build-arg",
        ])
        .arg(format!("BASE={}", env.base_image))
        .args([
            "-o",
            "type=oci,dest=out.tar",
            "-o",
            "type=local,dest=rootfs",
            ".",
        ]));
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("rootfs/len"))
            .unwrap()
            .trim(),
        secret.len().to_string()
    );
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("rootfs/envok"))
            .unwrap()
            .trim(),
        "ok"
    );
    assert!(!err.contains(secret), "secret in the logs");
    assert!(
        contains_anywhere(home.path(), secret.as_bytes()).is_empty(),
        "secret in the store"
    );
    let out = ctx.path().join("out.tar");
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    let unpacked = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        contains_anywhere(unpacked.path(), secret.as_bytes()).is_empty(),
        "secret in the image"
    );
    assert!(!ctx.path().join("rootfs/run/secrets/tok").exists());
}

#[test]
fn ssh_mount_exposes_the_agent_socket() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let sockdir = tempfile::tempdir().unwrap();
    let sock = sockdir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("socket");
    let ctx = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh test -S /run/buildkit/ssh_agent.0 && echo $SSH_AUTH_SOCK > /sock\n",
        &[],
    );
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(ctx.path())
        .env("SSH_AUTH_SOCK", &sock)
        .args(["build", "--ssh", "default", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=local,dest=out", "."]));
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("out/sock"))
            .unwrap()
            .trim(),
        "/run/buildkit/ssh_agent.0"
    );
    let required = context(
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,required=true true\n",
        &[],
    );
    let (ok, _, err) = run(kiln(home.path())
        .current_dir(required.path())
        .env_remove("SSH_AUTH_SOCK")
        .args(["build", "--build-arg"])
        .arg(format!("BASE={}", env.base_image))
        .args(["-o", "type=local,dest=out2", "."]));
    assert!(!ok, "a required ssh mount without an agent fails");
    assert!(err.contains("SSH agent"), "{err}");
}

#[test]
fn cached_rebuild_gives_the_same_digest_without_source_date_epoch() {
    let env = TestEnv::get();
    let home = tempfile::tempdir().unwrap();
    let ctx = context(APP, &[("hello.txt", "stable\n")]);
    let build = || {
        let (ok, _, err) = run(kiln(home.path())
            .current_dir(ctx.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["build", "--iidfile", "iid", "--build-arg"])
            .arg(format!("BASE={}", env.base_image))
            .args(["-o", "type=oci,dest=out.tar", "."]));
        assert!(ok, "{err}");
        std::fs::read_to_string(ctx.path().join("iid")).expect("iidfile")
    };
    let first = build();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(first, build(), "a fully cached rebuild is the same image");
}

#[test]
fn external_cache_flags_say_they_are_not_available_yet() {
    let home = tempfile::tempdir().unwrap();
    let ctx = context("FROM scratch\nCOPY hello.txt /\n", &[("hello.txt", "hi\n")]);
    let (ok, _, err) = run(kiln(home.path()).current_dir(ctx.path()).args([
        "build",
        "--progress=plain",
        "--cache-from",
        "type=registry,ref=example.com/app:cache",
        "--cache-to",
        "type=local,dest=cache-dir",
        "-o",
        "type=cacheonly",
        ".",
    ]));
    assert!(ok, "the build itself runs: {err}");
    assert!(
        err.contains("--cache-to type=local,dest=cache-dir")
            && err.contains("--cache-from type=registry,ref=example.com/app:cache")
            && err.contains("not available yet"),
        "{err}"
    );
    assert!(!ctx.path().join("cache-dir").exists(), "no half-made cache");
}
