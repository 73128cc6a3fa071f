//! The RUN sandbox end to end: the real `kiln` binary as the helper, the corpus base image
//! (`../shared/conformance/dockerfile/base`) as the lower layer.
//!
//! Needs root, namespaces and overlayfs; each test prints a skip reason and returns when
//! the machine truly does not offer them (CI must have them).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::sandbox::{extract_base_layer, shell_spec, HELPER, PATH};
use kiln::engine::fs::{Entry, EntryKind, LayerSpec};
use kiln::engine::layered_fs::LayeredFs;
use kiln::engine::run::{
    self, diff_upper, run_with_helper, MountSpec, NetworkMode, RunOutcome, RunSpec,
};

/// The base image's layer for `arch`, extracted into a temp dir that lives as long as
/// the returned guard.
struct Base {
    dir: tempfile::TempDir,
}

impl Base {
    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn base_layer(arch: &'static str) -> Base {
    let dir = tempfile::Builder::new()
        .prefix("kiln-run-base-")
        .tempdir()
        .expect("tempdir");
    extract_base_layer(arch, dir.path());
    Base { dir }
}

/// Why the sandbox cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.contains("overlay") {
        return Some("no overlayfs in /proc/filesystems".into());
    }
    None
}

macro_rules! need_sandbox {
    () => {
        if let Some(r) = skip_reason() {
            eprintln!("SKIP: the RUN sandbox is not available: {r}");
            return;
        }
    };
}

fn spec(script: &str) -> RunSpec {
    shell_spec(script, &[PATH, "HOME=/root"])
}

struct Ran {
    outcome: RunOutcome,
    output: String,
    _scratch: tempfile::TempDir,
}

fn run_in(lower: &[PathBuf], spec: &RunSpec) -> Ran {
    let scratch = tempfile::Builder::new()
        .prefix("kiln-run-")
        .tempdir()
        .expect("scratch");
    let mut output = Vec::new();
    let outcome = run_with_helper(Path::new(HELPER), lower, spec, scratch.path(), &mut |b| {
        output.extend_from_slice(b)
    })
    .unwrap_or_else(|e| panic!("run failed: {e}"));
    Ran {
        outcome,
        output: String::from_utf8_lossy(&output).into_owned(),
        _scratch: scratch,
    }
}

fn diff(ran: &Ran, lower: &[PathBuf], spec: &RunSpec) -> LayerSpec {
    let view = LayeredFs::new(lower.to_vec());
    let targets: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|m| m.target().map(str::to_string))
        .collect();
    diff_upper(&ran.outcome.upper, &view, &targets).expect("diff")
}

fn paths(layer: &LayerSpec) -> Vec<String> {
    layer
        .entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::Whiteout => format!("-{}", e.path),
            _ => e.path.clone(),
        })
        .collect()
}

fn entry<'a>(layer: &'a LayerSpec, path: &str) -> &'a Entry {
    layer
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", paths(layer)))
}

#[test]
fn basic_run_output_and_diff() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let s = spec(
        "echo hi > /x; rm /etc/group; mkdir -p /a/b; id; hostname; cat /etc/hosts; \
         ls /dev | grep -v otel | sort | tr '\\n' ' '; echo; umask; echo $HOME; pwd",
    );
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    // /etc/group is gone by the time `id` runs.
    let expected = "uid=0(root) gid=0 groups=0\nbuildkitsandbox\n\
         127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero \n\
         0022\n/root\n/\n";
    assert_eq!(ran.output, expected);
    let layer = diff(&ran, &lower, &s);
    assert_eq!(paths(&layer), ["/a", "/a/b", "/etc", "-/etc/group", "/x"]);
    let x = entry(&layer, "/x");
    assert_eq!(
        (x.kind.clone(), x.mode, x.size),
        (EntryKind::File, 0o644, 3)
    );
    assert_eq!(entry(&layer, "/a/b").mode, 0o755);
}

#[test]
fn stubs_and_mount_points_leave_no_trace() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let s = spec("ls -a /etc | sort | tr '\\n' ' '; test -f /etc/resolv.conf");
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(
        ran.output,
        ". .. group hosts localtime os-release passwd resolv.conf "
    );
    assert!(paths(&diff(&ran, &lower, &s)).is_empty());

    let s = spec("true");
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0);
    assert!(paths(&diff(&ran, &lower, &s)).is_empty());
}

#[test]
fn exit_codes_are_outcomes() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let ran = run_in(&lower, &spec("echo out; echo err >&2; exit 3"));
    assert_eq!(ran.outcome.exit_code, 3);
    assert_eq!(ran.output, "out\nerr\n");
    let ran = run_in(&lower, &spec("nosuchcommand"));
    assert_eq!(ran.outcome.exit_code, 127);
    let mut s = spec("");
    s.args = vec!["/nonexistent".into()];
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 127);
    assert!(ran.output.contains("/nonexistent"), "{}", ran.output);
    let mut s = spec("");
    s.args = vec!["ls".into(), "/home".into()];
    let ran = run_in(&lower, &s);
    assert_eq!((ran.outcome.exit_code, ran.output.as_str()), (0, "app\n"));
}

#[test]
fn user_switch_and_workdir() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let mut s = spec("id; touch /tmp/mine; pwd; echo $HOME");
    s.uid = 1000;
    s.gid = 1000;
    s.additional_gids = vec![100];
    s.cwd = "/work/dir".into();
    s.env = vec![PATH.into(), "HOME=/home/app".into()];
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(
        ran.output,
        "uid=1000(app) gid=1000(app) groups=100(users),1000(app)\n/work/dir\n/home/app\n"
    );
    let layer = diff(&ran, &lower, &s);
    assert_eq!(paths(&layer), ["/tmp", "/tmp/mine", "/work", "/work/dir"]);
    let mine = entry(&layer, "/tmp/mine");
    assert_eq!((mine.uid, mine.gid), (1000, 1000));
    let w = entry(&layer, "/work");
    assert_eq!((w.uid, w.gid, w.mode), (1000, 1000, 0o755));
    // Root cannot be regained.
    let mut s = spec("touch /root/x");
    s.uid = 1000;
    s.gid = 1000;
    assert_ne!(run_in(&lower, &s).outcome.exit_code, 0);
}

#[test]
fn network_none_has_only_loopback() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let mut s = spec("wc -l < /proc/net/dev; ls /sys/class/net; cat /sys/class/net/lo/operstate");
    s.network = NetworkMode::None;
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(ran.output, "3\nlo\nunknown\n");
}

#[test]
fn bind_cache_tmpfs_and_secret_mounts() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let host = tempfile::tempdir().expect("tempdir");
    let src = host.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("f"), "from-host\n").expect("write");
    let cache = host.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    let secret = host.path().join("secret");
    std::fs::write(&secret, "s3cr3t-value").expect("write");
    let mounts = vec![
        MountSpec::Bind {
            source: src.clone(),
            target: "/src".into(),
            readonly: true,
        },
        MountSpec::Cache {
            source: cache.clone(),
            target: "/var/cache/thing".into(),
            readonly: false,
        },
        MountSpec::Tmpfs {
            target: "/scratch".into(),
            size: Some(1 << 20),
        },
        MountSpec::Secret {
            source: secret.clone(),
            target: "/run/secrets/mysecret".into(),
            mode: 0o400,
            uid: 0,
            gid: 0,
        },
        MountSpec::SecretEnv {
            name: "TOKEN".into(),
            value: "env-s3cr3t".into(),
        },
    ];
    let mut s = spec(
        "cat /src/f; touch /src/new 2>/dev/null && echo WROTE; echo one > /var/cache/thing/c; \
         echo t > /scratch/t; cat /scratch/t; stat -c '%a %u' /run/secrets/mysecret; \
         cat /run/secrets/mysecret; echo; echo $TOKEN; echo kept > /kept",
    );
    s.mounts = mounts.clone();
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(
        ran.output,
        "from-host\nt\n400 0\ns3cr3t-value\nenv-s3cr3t\n"
    );
    assert!(!src.join("new").exists());
    let layer = diff(&ran, &lower, &s);
    assert_eq!(paths(&layer), ["/kept"]);
    // Nothing of the secret in the upper dir.
    for e in walk(&ran.outcome.upper) {
        let content = std::fs::read(&e).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&content).contains("s3cr3t"));
    }
    // The cache persists into the next run; the secret is gone without its mount.
    let mut s2 = spec("cat /var/cache/thing/c; test -e /run/secrets/mysecret || echo no-secret");
    s2.mounts = vec![mounts[1].clone()];
    let ran = run_in(&lower, &s2);
    assert_eq!(ran.output, "one\nno-secret\n");
    assert!(paths(&diff(&ran, &lower, &s2)).is_empty());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            out.extend(walk(&p));
        } else if m.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_orphans_survive() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let started = Instant::now();
    let ran = run_in(
        &lower,
        &spec("sleep 100 & sleep 100 > /dev/null & echo started"),
    );
    assert_eq!(
        (ran.outcome.exit_code, ran.output.as_str()),
        (0, "started\n")
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // No `sleep 100` left on the machine from this test's sandbox.
    let left = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c == b"sleep\x00100\x00")
        .count();
    assert_eq!(left, 0, "sleep processes left behind");
}

#[test]
fn whiteouts_opaque_dirs_and_hardlinks() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let s = spec(
        "rm -rf /home/app && mkdir /home/app && echo n > /home/app/new; \
         echo x > /h1 && ln /h1 /h2; ln /bin/busybox /bb; chmod 0600 /etc/os-release; \
         rm -rf /usr/share/zoneinfo",
    );
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    let layer = diff(&ran, &lower, &s);
    assert_eq!(
        paths(&layer),
        [
            "/bb",
            "/etc",
            "/etc/os-release",
            "/h1",
            "/h2",
            "/home",
            "/home/app",
            "-/home/app/.profile",
            "/home/app/new",
            "/usr",
            "/usr/share",
            "-/usr/share/zoneinfo"
        ]
    );
    assert_eq!(entry(&layer, "/bb").kind, EntryKind::File);
    assert_eq!(entry(&layer, "/h2").kind, EntryKind::Hardlink("/h1".into()));
    assert_eq!(entry(&layer, "/etc/os-release").mode, 0o600);
    assert_eq!(entry(&layer, "/home/app").uid, 0);
}

#[test]
fn planted_symlinks_stay_inside() {
    need_sandbox!();
    let outside = tempfile::tempdir().expect("tempdir");
    let evil = tempfile::tempdir().expect("tempdir");
    let target = outside.path().display().to_string();
    // /etc and /mnt point at a host directory (absolute and with ../..).
    std::os::unix::fs::symlink(&target, evil.path().join("etc")).expect("symlink");
    std::os::unix::fs::symlink(
        format!("../../../../../../..{target}"),
        evil.path().join("mnt"),
    )
    .expect("symlink");
    let base = base_layer("amd64");
    let lower = vec![evil.path().to_path_buf(), base.path()];
    let mut s = spec("cat /etc/hosts > /dev/null; echo x > /mnt/sub/file; echo ok");
    s.mounts = vec![MountSpec::Tmpfs {
        target: "/mnt/sub".into(),
        size: None,
    }];
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("read").count(),
        0,
        "something was written outside the sandbox"
    );
    let layer = diff(&ran, &lower, &s);
    for e in &layer.entries {
        assert!(!e.path.contains(&target[1..]) || e.path.starts_with('/'));
    }
}

#[test]
fn arm64_under_qemu() {
    need_sandbox!();
    if run::host_arch() == "arm64" {
        eprintln!("SKIP: the host is arm64");
        return;
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        eprintln!("SKIP: no /proc/sys/fs/binfmt_misc/qemu-aarch64 (run `kiln setup qemu`)");
        return;
    }
    let base = base_layer("arm64");
    let lower = vec![base.path()];
    let mut s = spec("uname -m; id -u");
    s.platform_arch = "arm64".into();
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(ran.output, "aarch64\n0\n");
    assert!(run::qemu::supported_platforms().contains(&"linux/arm64".to_string()));
}

#[test]
fn missing_emulator_fails_before_starting() {
    let mut s = spec("true");
    s.platform_arch = "notanarch".into();
    let scratch = tempfile::tempdir().expect("tempdir");
    let err = run_with_helper(Path::new(HELPER), &[], &s, scratch.path(), &mut |_| {})
        .expect_err("must fail");
    assert!(err.to_string().contains("kiln setup qemu"), "{err}");
}

#[test]
fn heredoc_script_bound_under_dev_pipes() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let host = tempfile::tempdir().expect("tempdir");
    let script = host.path().join("EOF");
    std::fs::write(&script, "#!/bin/sh\necho from-heredoc > /hd\necho \"$0\"\n").expect("write");
    rustix::fs::chmod(&script, rustix::fs::Mode::from_raw_mode(0o755)).expect("chmod");
    let mut s = spec("");
    s.args = vec!["/dev/pipes/EOF".into()];
    s.mounts = vec![MountSpec::Bind {
        source: script,
        target: "/dev/pipes/EOF".into(),
        readonly: true,
    }];
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(ran.output, "/dev/pipes/EOF\n");
    assert_eq!(paths(&diff(&ran, &lower, &s)), ["/hd"]);
}

#[test]
fn scratch_base_without_layers() {
    need_sandbox!();
    // FROM scratch with the binaries from a bind mount: nothing of the mounts or of
    // /dev, /proc, /sys, /etc stays in the layer.
    let base = base_layer("amd64");
    let mut s = spec("echo made > /made");
    s.args = vec![
        "/b/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        "/b/bin/busybox echo made > /made".into(),
    ];
    s.mounts = vec![MountSpec::Bind {
        source: base.path(),
        target: "/b".into(),
        readonly: true,
    }];
    let ran = run_in(&[], &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(paths(&diff(&ran, &[], &s)), ["/made"]);
}

#[test]
fn ssh_socket_with_mode_and_owner() {
    need_sandbox!();
    let base = base_layer("amd64");
    let lower = vec![base.path()];
    let host = tempfile::tempdir().expect("tempdir");
    let agent = host.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&agent).expect("bind");
    let mut s = spec("stat -c '%a %u %g %F' /run/buildkit/ssh_agent.0; echo $SSH_AUTH_SOCK");
    s.uid = 1000;
    s.gid = 1000;
    s.env.push("SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".into());
    s.mounts = vec![MountSpec::Ssh {
        socket: agent.clone(),
        target: "/run/buildkit/ssh_agent.0".into(),
        mode: 0o600,
        uid: 1000,
        gid: 1000,
    }];
    let ran = run_in(&lower, &s);
    assert_eq!(ran.outcome.exit_code, 0, "{}", ran.output);
    assert_eq!(
        ran.output,
        "600 1000 1000 socket\n/run/buildkit/ssh_agent.0\n"
    );
    assert!(paths(&diff(&ran, &lower, &s)).is_empty());
    // The agent's own socket is untouched.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&agent).expect("meta").uid(), 0);
}
