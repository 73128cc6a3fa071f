//! `kiln imagetools` against a real registry (Debian's `docker-registry`):
//! the buildx conformance corpus (`../shared/conformance/imagetools`), a real push with
//! cross-repository mounts, and the error paths (unknown repository/tag, bad references,
//! wrong password).
//!
//! The registry address comes from `KILN_IMAGETOOLS_REGISTRY` (default `127.0.0.1:5077`).
//! When nothing answers there, the test starts its own registry on a free loopback port
//! and populates it with the corpus images.

mod common;

use common::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_REGISTRY: &str = "127.0.0.1:5077";
/// Share of the corpus cases that must pass.
const MIN_PASS_RATIO: f64 = 0.98;
/// A bcrypt hash of `kiln-test-pass` for the user `kiln` (htpasswd registry).
const HTPASSWD: &str = "kiln:$2b$12$tjfj8FQrq1iX1liIR4vuwucZVBiOJbsDojOsrQuCFunczU50oKp6W\n";

fn kiln() -> &'static str {
    env!("CARGO_BIN_EXE_kiln")
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/imagetools"),
    };
    dir.join("run.sh").exists().then_some(dir)
}

fn registry_binary() -> Option<PathBuf> {
    ["docker-registry", "registry"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// True when `GET http://ADDR/PATH` answers with a status in `ok`.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(["-H", "Accept: application/vnd.oci.image.index.v1+json"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|c| *c != 0)
}

/// A registry this test started; killed (by its own handle) when dropped.
struct Registry {
    addr: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_registry(htpasswd: Option<&str>) -> Result<Registry, String> {
    let bin = registry_binary().ok_or("docker-registry is not installed")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
        dir.path().join("data").display()
    );
    if let Some(h) = htpasswd {
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, h).map_err(|e| e.to_string())?;
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
            path.display()
        ));
    }
    let cfg_path = dir.path().join("config.yml");
    std::fs::write(&cfg_path, config).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .arg("serve")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start docker-registry: {e}"))?;
    let reg = Registry {
        addr: addr.clone(),
        child: Some(child),
        _dir: Some(dir),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http_status(&addr, "/v2/").is_some() {
            return Ok(reg);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("docker-registry did not answer on {addr}"))
}

/// The corpus registry: the configured one if it answers, else one of our own.
fn corpus_registry(corpus: &Path) -> Result<Registry, String> {
    let addr =
        std::env::var("KILN_IMAGETOOLS_REGISTRY").unwrap_or_else(|_| DEFAULT_REGISTRY.into());
    let reg = if http_status(&addr, "/v2/").is_some() {
        Registry {
            addr,
            child: None,
            _dir: None,
        }
    } else {
        start_registry(None)?
    };
    if http_status(&reg.addr, "/v2/itc/oci-index/manifests/latest") != Some(200) {
        let mut cmd = Command::new("bash");
        cmd.arg(corpus.join("populate.sh"))
            .arg(&reg.addr)
            .current_dir(corpus);
        if Command::new("skopeo").arg("--version").output().is_err() {
            cmd.env("POPULATE_TOOL", "curl");
        }
        let out = cmd.output().map_err(|e| format!("populate.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "populate.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(reg)
}

fn run_kiln(args: &[&str], docker_config: &Path) -> Output {
    Command::new(kiln())
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("CI_REGISTRY")
        .stdin(Stdio::null())
        .output()
        .expect("kiln runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn conformance_push_and_lookup_errors() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("SKIP: conformance corpus not found (../shared/conformance/imagetools)");
        return;
    };
    for tool in ["jq", "curl", "bash"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIP: run.sh needs {tool}, which is not installed");
            return;
        }
    }
    let reg = match corpus_registry(&corpus) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP: no registry for the corpus: {why}");
            return;
        }
    };
    let addr = reg.addr.clone();

    // 1. the corpus
    let out = Command::new("bash")
        .arg(corpus.join("run.sh"))
        .arg(kiln())
        .arg(&addr)
        .current_dir(&corpus)
        .output()
        .expect("run.sh runs");
    let stdout = text(&out.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary from run.sh:\n{stdout}\n{}", text(&out.stderr)));
    let nums: Vec<f64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (passed, failed) = (nums[0], nums[1]);
    let ratio = passed / (passed + failed);
    println!("imagetools conformance: {summary}");
    assert!(
        ratio >= MIN_PASS_RATIO,
        "conformance {summary} is below {MIN_PASS_RATIO}:\n{stdout}"
    );

    let cfg = tempfile::tempdir().unwrap();

    // 2. a real push: two single-platform images from other repositories -> one index
    let tag = format!("{addr}/kiln-test/merged:it");
    let srcs = [
        format!("{addr}/itc/oci-single:latest"),
        format!("{addr}/itc/oci-single-arm64:latest"),
    ];
    let dry = run_kiln(
        &[
            "imagetools",
            "create",
            "--dry-run",
            "-t",
            &tag,
            &srcs[0],
            &srcs[1],
        ],
        cfg.path(),
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let push = run_kiln(
        &["imagetools", "create", "-t", &tag, &srcs[0], &srcs[1]],
        cfg.path(),
    );
    assert!(push.status.success(), "push failed: {}", text(&push.stderr));
    let raw = run_kiln(&["imagetools", "inspect", "--raw", &tag], cfg.path());
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    let mut expected = raw.stdout.clone();
    expected.push(b'\n');
    assert_eq!(
        text(&expected),
        text(&dry.stdout),
        "pushed index differs from --dry-run"
    );
    // every platform of the pushed index is readable in the new repository
    let image = run_kiln(
        &[
            "imagetools",
            "inspect",
            &tag,
            "--format",
            "{{range $p, $i := .Image}}{{$p}} {{end}}",
        ],
        cfg.path(),
    );
    assert_eq!(
        text(&image.stdout),
        "linux/amd64 linux/arm64 ",
        "{}",
        text(&image.stderr)
    );
    if Command::new("skopeo").arg("--version").output().is_ok() {
        let sk = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{tag}"))
            .output()
            .unwrap();
        assert!(sk.status.success(), "skopeo: {}", text(&sk.stderr));
        assert_eq!(sk.stdout, raw.stdout, "skopeo sees other bytes");
    }

    // 3. pull one platform into a layout, check its config, push it back from the layout
    let layout_dir = tempfile::tempdir().unwrap();
    let multi3 = format!("{addr}/itc/multi3:latest");
    let out = run_kiln(&["pull", "--platform", "linux/arm", "--output"], cfg.path());
    assert!(!out.status.success(), "pull without a reference must fail");
    let out = Command::new(kiln())
        .args(["pull", "--platform", "linux/arm", "--output"])
        .arg(layout_dir.path())
        .arg(&multi3)
        .env("DOCKER_CONFIG", cfg.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "pull: {}", text(&out.stderr));
    let out = run_kiln(
        &["inspect", "--platform", "linux/arm/v7", &multi3],
        cfg.path(),
    );
    let inspected: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(inspected[0]["Architecture"], "arm");
    assert_eq!(inspected[0]["Variant"], "v7");
    assert_eq!(inspected[0]["Os"], "linux");
    let layout = kiln::oci::layout::Layout::open(layout_dir.path()).unwrap();
    let desc = layout.resolve(&multi3).unwrap();
    let target: kiln::oci::Reference = format!("{addr}/kiln-test/pushed:v7").parse().unwrap();
    let from = kiln::oci::Reference::parse(&format!("{addr}/itc/multi3")).unwrap();
    let client = kiln::oci::Client::new(kiln::oci::ClientConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pushed = rt
        .block_on(kiln::oci::transfer::push_from_layout(
            &client,
            &layout,
            &desc,
            &target,
            &[from],
        ))
        .unwrap();
    assert_eq!(pushed, desc.digest);
    let raw = run_kiln(
        &["imagetools", "inspect", "--raw", &target.to_string()],
        cfg.path(),
    );
    assert_eq!(kiln::oci::Digest::sha256(&raw.stdout), desc.digest);

    // 4. lookups that fail
    for (reference, want) in [
        (format!("{addr}/itc/does-not-exist:latest"), "not found"),
        (format!("{addr}/itc/oci-single:no-such-tag"), "not found"),
    ] {
        let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains(want) && err.contains(&reference), "{err}");
    }
}

#[test]
fn invalid_references_are_refused_without_network() {
    let cfg = tempfile::tempdir().unwrap();
    for bad in [
        "",
        "127.0.0.1:1/a//b",
        "127.0.0.1:1/a:bad tag",
        "127.0.0.1:1/a@sha256:abc",
        "UPPER/Case",
    ] {
        let out = run_kiln(&["imagetools", "inspect", bad], cfg.path());
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = text(&out.stderr);
        assert!(err.contains("invalid reference format"), "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = run_kiln(
        &["imagetools", "inspect", "127.0.0.1:1/itc/x:latest"],
        cfg.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
    let out = run_kiln(
        &[
            "imagetools",
            "create",
            "--dry-run",
            "-t",
            "127.0.0.1:1/a:1",
            "-p",
            "linux/amd64/v2/x",
            "127.0.0.1:1/b",
        ],
        cfg.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid platform"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wrong_password_names_registry_and_credential_source() {
    let reg = match start_registry(Some(HTPASSWD)) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP: cannot start an htpasswd registry: {why}");
            return;
        }
    };
    let addr = reg.addr.clone();
    let cfg = tempfile::tempdir().unwrap();
    let reference = format!("{addr}/kiln/x:latest");

    // anonymous
    let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("401") && err.contains("anonymous"),
        "{err}"
    );

    // wrong password from the config file
    use base64::Engine as _;
    let secret = "not-the-password-9f3a";
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("kiln:{secret}"));
    let config = cfg.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&addr) && err.contains("401"), "{err}");
    assert!(
        err.contains(&config.display().to_string()),
        "does not say where: {err}"
    );
    assert!(
        !err.contains(secret) && !err.contains(&auth),
        "credentials leaked: {err}"
    );

    // the right password gets through to a plain "not found"
    let auth = base64::engine::general_purpose::STANDARD.encode("kiln:kiln-test-pass");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
    let err = text(&out.stderr);
    assert!(err.contains("not found"), "{err}");

    // credentials from a credential helper (credHelpers), wrong then right
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-kilntest");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers":{{"{addr}":"kilntest"}}}}"#),
    )
    .unwrap();
    for (pass, ok) in [(secret, false), ("kiln-test-pass", true)] {
        let script = format!(
            "#!/bin/sh\ncat >/dev/null\necho '{{\"Username\":\"kiln\",\"Secret\":\"{pass}\"}}'\n"
        );
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(kiln())
            .args(["imagetools", "inspect", &reference])
            .env("DOCKER_CONFIG", cfg.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        if ok {
            assert!(err.contains("not found"), "{err}");
        } else {
            assert!(
                err.contains("401") && err.contains("docker-credential-kilntest"),
                "{err}"
            );
            assert!(!err.contains(pass), "{err}");
        }
    }

    // kiln login refuses the wrong password and stores the right one; logout removes it
    std::fs::remove_file(&config).unwrap();
    let login = |password: &str| {
        let mut child = Command::new(kiln())
            .args(["login", "-u", "kiln", "--password-stdin", &addr])
            .env("DOCKER_CONFIG", cfg.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = login(secret);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(secret), "{}", text(&out.stderr));
    assert!(!config.exists(), "a refused login must not be stored");
    let out = login("kiln-test-pass");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(
        stored.contains(&addr) && stored.contains("auths"),
        "{stored}"
    );
    let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    let out = run_kiln(&["logout", &addr], cfg.path());
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {addr}\n")
    );
    let out = run_kiln(&["imagetools", "inspect", &reference], cfg.path());
    assert!(
        text(&out.stderr).contains("anonymous"),
        "{}",
        text(&out.stderr)
    );
}

/// The engine for the docker-load test: `$KILN_TEST_DOCKER_HOST`, else `$DOCKER_HOST`,
/// else the default socket, if it answers.
fn docker_socket() -> Option<PathBuf> {
    let host = std::env::var("KILN_TEST_DOCKER_HOST")
        .or_else(|_| std::env::var("DOCKER_HOST"))
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let path = PathBuf::from(host.strip_prefix("unix://")?);
    std::os::unix::net::UnixStream::connect(&path)
        .ok()
        .map(|_| path)
}

#[test]
fn docker_load_accepts_archives_of_every_platform() {
    let Some(socket) = docker_socket() else {
        eprintln!("SKIP: no Docker engine socket answers (set KILN_TEST_DOCKER_HOST=unix://...)");
        return;
    };
    let Some(corpus) = corpus_dir() else {
        eprintln!("SKIP: conformance corpus not found");
        return;
    };
    // the corpus layout holds multi3 (amd64, arm64, arm/v7): no registry needed
    let layout = kiln::oci::layout::Layout::open(corpus.join("images/oci")).unwrap();
    let desc = layout.resolve("itc/multi3:latest").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("multi3.tar");
    let tag = format!("kiln-it/multi3:{}", std::process::id());
    kiln::oci::archive::write_docker_archive(&layout, &desc, std::slice::from_ref(&tag), &archive)
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let msg = rt
        .block_on(kiln::oci::docker_engine::load_archive(&socket, &archive))
        .unwrap();
    assert!(msg.contains("Loaded image"), "{msg}");
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .output()
    };
    let Ok(out) = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}/{{.Variant}}",
        &format!("{tag}-linux-arm-v7"),
    ]) else {
        eprintln!("SKIP (partly): no docker CLI to check the loaded images");
        return;
    };
    assert_eq!(
        text(&out.stdout).trim(),
        "linux/arm/v7",
        "{}",
        text(&out.stderr)
    );
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("{tag}-linux-amd64"),
        "cat",
        "/etc/itc/hello.txt",
    ])
    .unwrap();
    assert!(run.status.success(), "docker run: {}", text(&run.stderr));
    for suffix in ["linux-amd64", "linux-arm64", "linux-arm-v7"] {
        let _ = docker(&["rmi", &format!("{tag}-{suffix}")]);
    }
}
