//! Helpers shared by the integration tests: the test environment that
//! `scripts/test-env.sh up` sets up (local registries, binfmt, a docker engine,
//! busybox base images) and small wrappers around the tools that check it.
//!
//! Every test that needs the environment FAILS when a piece is missing; the
//! message names the piece and the command that provides it.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

pub mod build;
pub mod oci;
pub mod sandbox;

/// How to get the environment; part of every failure message.
pub const SETUP_HINT: &str = "run `scripts/test-env.sh up` (as root) and then \
     `source ${KILN_TESTENV:-/tmp/kiln-testenv}/env.sh` before `cargo test` \
     (see scripts/testenv/README.md)";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The value of an environment variable written to env.sh by `scripts/test-env.sh up`.
/// Panics, naming the variable and the set-up command, when it is unset or empty.
pub fn env_or_fail(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        Ok(_) => {
            panic!("{name} is set but empty: the kiln test environment is not loaded; {SETUP_HINT}")
        }
        Err(_) => {
            panic!("{name} is not set: the kiln test environment is not loaded; {SETUP_HINT}")
        }
    }
}

/// What `scripts/test-env.sh up` set up, read from the environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// State directory of the environment (`KILN_TESTENV`).
    pub state_dir: PathBuf,
    /// Registry without auth, `host:port` (`KILN_TEST_REGISTRY`).
    pub registry: String,
    /// Registry with htpasswd auth, `host:port` (`KILN_TEST_AUTH_REGISTRY`).
    pub auth_registry: String,
    pub user: String,
    pub password: String,
    /// Multi-platform busybox image in `registry` (`KILN_TEST_BASE_IMAGE`).
    pub base_image: String,
    /// The same image in `auth_registry` (`KILN_TEST_PRIVATE_IMAGE`).
    pub private_image: String,
    /// OCI layout of the base image, tag `latest` (`KILN_TEST_BASE_LAYOUT`).
    pub base_layout: PathBuf,
    /// `unix://…` socket of the test docker engine (`KILN_TEST_DOCKER_HOST`).
    pub docker_host: String,
    /// Platforms of the base image (`KILN_TEST_PLATFORMS`).
    pub platforms: Vec<Platform>,
}

impl TestEnv {
    /// Reads every variable; panics on the first missing one.
    pub fn get() -> TestEnv {
        let platforms = env_or_fail("KILN_TEST_PLATFORMS")
            .split(',')
            .map(|p| Platform::parse(p.trim()))
            .collect();
        TestEnv {
            state_dir: PathBuf::from(env_or_fail("KILN_TESTENV")),
            registry: env_or_fail("KILN_TEST_REGISTRY"),
            auth_registry: env_or_fail("KILN_TEST_AUTH_REGISTRY"),
            user: env_or_fail("KILN_TEST_REGISTRY_USER"),
            password: env_or_fail("KILN_TEST_REGISTRY_PASSWORD"),
            base_image: env_or_fail("KILN_TEST_BASE_IMAGE"),
            private_image: env_or_fail("KILN_TEST_PRIVATE_IMAGE"),
            base_layout: PathBuf::from(env_or_fail("KILN_TEST_BASE_LAYOUT")),
            docker_host: env_or_fail("KILN_TEST_DOCKER_HOST"),
            platforms,
        }
    }

    /// `user:password` as the tools take it.
    pub fn creds(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }
}

/// An `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Platform {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            },
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Platform {
                    os: os.to_string(),
                    arch: arch.to_string(),
                    variant: Some(variant.to_string()),
                }
            }
            _ => panic!("bad platform {s:?} (want os/arch[/variant])"),
        }
    }

    /// From the `platform` object of an OCI descriptor.
    pub fn from_json(v: &Value) -> Platform {
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Platform {
            os: field("os").unwrap_or_default(),
            arch: field("architecture").unwrap_or_default(),
            variant: field("variant").filter(|s| !s.is_empty()),
        }
    }

    /// What `uname -m` prints for a process of this platform.
    pub fn uname_machine(&self) -> &'static str {
        match (self.arch.as_str(), self.variant.as_deref()) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("arm", Some("v7") | None) => "armv7l",
            ("arm", Some("v6")) => "armv6l",
            ("ppc64le", _) => "ppc64le",
            ("s390x", _) => "s390x",
            ("riscv64", _) => "riscv64",
            ("386", _) => "i686",
            (arch, variant) => panic!("no uname -m known for {arch}/{variant:?}"),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Captured result of a command.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Output {
    /// Panics with the command, its exit status and output unless it succeeded.
    pub fn ok(self, what: &str) -> Output {
        if !self.success {
            panic!(
                "{what}: `{}` failed (exit {:?})\nstdout:\n{}\nstderr:\n{}\n({SETUP_HINT})",
                self.command, self.code, self.stdout, self.stderr
            );
        }
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}` printed no JSON ({e}):\n{}", self.command, self.stdout)
        })
    }
}

/// Runs a command to completion. Panics when the program cannot be started
/// (not installed), naming it.
pub fn run(cmd: &mut Command) -> Output {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{}` ({e}); scripts/test-env.sh up installs the tools the tests use; {SETUP_HINT}",
            cmd.get_program().to_string_lossy()
        )
    });
    Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command,
    }
}

/// `skopeo ARGS…`, independent of the machine's trust policy. Callers pass
/// `--creds` or `--no-creds` so stored logins of the machine do not count.
pub fn skopeo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new("skopeo");
    cmd.arg("--insecure-policy").args(args);
    run(&mut cmd)
}

/// `docker ARGS…` against the test engine (`DOCKER_HOST` = `KILN_TEST_DOCKER_HOST`).
pub fn docker<I, S>(env: &TestEnv, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", &env.docker_host)
        .env_remove("DOCKER_CONTEXT")
        .args(args);
    run(&mut cmd)
}

/// `sha256:<hex>` of some bytes, with the `sha256sum` tool (no hashing crate needed here).
pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum (coreutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bytes)
        .expect("feed sha256sum");
    let out = child.wait_with_output().expect("sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().unwrap_or_default()
    )
}

/// A minimal HTTP/1.0 GET to a `host:port` on the loopback; returns (status, headers+body).
/// `basic` is (user, password) for a Basic Authorization header.
pub fn http_get(addr: &str, path: &str, basic: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("nothing answers on {addr} ({e}); {SETUP_HINT}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((user, password)) = basic {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(format!("{user}:{password}").as_bytes())
        ));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("send HTTP request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read HTTP response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status from {addr}{path}: {response:?}"));
    (status, response)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Read-only access to an OCI image layout.
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn open(root: &Path) -> Layout {
        for f in ["oci-layout", "index.json"] {
            assert!(
                root.join(f).is_file(),
                "{} is not an OCI layout (no {f}); {SETUP_HINT}",
                root.display()
            );
        }
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest
            .split_once(':')
            .unwrap_or_else(|| panic!("bad digest {digest:?}"));
        self.root.join("blobs").join(alg).join(hex)
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read blob {}: {e}", path.display()))
    }

    pub fn blob_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest))
            .unwrap_or_else(|e| panic!("blob {digest} is not JSON: {e}"))
    }

    /// index.json.
    pub fn index(&self) -> Value {
        serde_json::from_slice(
            &std::fs::read(self.root.join("index.json")).expect("read index.json"),
        )
        .expect("index.json is JSON")
    }

    /// The blob of the first descriptor in index.json (the image of a single-image archive).
    pub fn first_manifest(&self) -> Value {
        self.blob_json(
            self.index()["manifests"][0]["digest"]
                .as_str()
                .expect("digest"),
        )
    }

    /// The descriptor in index.json tagged `tag` (annotation org.opencontainers.image.ref.name).
    pub fn tagged(&self, tag: &str) -> Value {
        self.index()["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("{} has no tag {tag:?}", self.root.display()))
    }

    /// Per-platform manifest descriptors of the image index tagged `tag`.
    pub fn platform_manifests(&self, tag: &str) -> Vec<(Platform, Value)> {
        let top = self.tagged(tag);
        assert_eq!(
            top["mediaType"], OCI_INDEX,
            "{tag} in the layout is not an image index"
        );
        let index = self.blob_json(top["digest"].as_str().expect("digest"));
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|d| (Platform::from_json(&d["platform"]), d.clone()))
            .collect()
    }
}

/// The set of platforms listed by an image index (JSON).
pub fn index_platforms(index: &Value) -> BTreeSet<Platform> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Platform::from_json(&d["platform"]))
        .collect()
}
