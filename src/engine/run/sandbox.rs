//! The caller's side of a RUN: prepares the scratch dir, starts the helper process with
//! the request as JSON on its stdin, forwards the command's output and reads the result.
//!
//! Protocol: the helper's stdout carries the command's stdout and stderr (one pipe, so
//! they stay interleaved as written); its stderr is reserved for set-up failures, one
//! line `ERROR<TAB>step<TAB>message`; its exit status is the command's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{qemu, MountSpec, NetworkMode, RunError, RunOutcome, RunSpec, HELPER_SUBCOMMAND};

/// What the helper receives on stdin.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    pub spec: RunSpec,
    /// Extracted layer dirs, top first.
    pub lower: Vec<PathBuf>,
    pub scratch: PathBuf,
    /// The caller's pid: the helper exits if its parent is already gone.
    pub parent_pid: i32,
}

/// The prefix of a set-up failure line on the helper's stderr.
pub(crate) const ERROR_PREFIX: &str = "ERROR\t";

/// Paths inside the scratch dir.
pub(crate) struct ScratchLayout {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// An empty dir: the lowerdir when there are no layers.
    pub empty: PathBuf,
    /// Short symlinks to the layer dirs (keeps the overlay options under a page).
    pub links: PathBuf,
    pub hosts: PathBuf,
    pub resolv: PathBuf,
    /// Where secrets are copied (a private tmpfs is mounted there first).
    pub secrets: PathBuf,
}

impl ScratchLayout {
    pub fn new(scratch: &Path) -> ScratchLayout {
        ScratchLayout {
            upper: scratch.join("upper"),
            work: scratch.join("work"),
            merged: scratch.join("merged"),
            empty: scratch.join("empty"),
            links: scratch.join("l"),
            hosts: scratch.join("hosts"),
            resolv: scratch.join("resolv.conf"),
            secrets: scratch.join("secrets"),
        }
    }
}

/// `/etc/hosts` as BuildKit writes it.
pub(crate) fn hosts_file(hostname: &str, extra: &[(String, String)]) -> String {
    let name = if hostname.is_empty() {
        "buildkitsandbox"
    } else {
        hostname
    };
    let mut s = format!("127.0.0.1\tlocalhost {name}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (host, ip) in extra {
        s.push_str(&format!("{ip}\t{host}\n"));
    }
    s
}

/// `/etc/resolv.conf` from the host's: without loopback name servers (they do not answer
/// inside another network namespace) unless the RUN uses the host network; Google's public
/// servers when none is left, like BuildKit.
pub(crate) fn resolv_conf(host: &str, network: NetworkMode) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("nameserver") {
            let addr = addr.trim();
            let loopback = addr.starts_with("127.") || addr == "::1";
            if loopback && network != NetworkMode::Host {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        if network != NetworkMode::None {
            out.push_str("nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n");
        }
    }
    out
}

fn validate(spec: &RunSpec) -> Result<(), RunError> {
    if spec.args.is_empty() {
        return Err(RunError::Invalid("no command".into()));
    }
    if !spec.cwd.starts_with('/') {
        return Err(RunError::Invalid(format!(
            "the working directory {:?} is not absolute",
            spec.cwd
        )));
    }
    for m in &spec.mounts {
        if let Some(t) = m.target() {
            if !t.starts_with('/') {
                return Err(RunError::Invalid(format!(
                    "the mount target {t:?} is not absolute"
                )));
            }
        }
        if let MountSpec::SecretEnv { name, .. } = m {
            if name.is_empty() || name.contains('=') {
                return Err(RunError::Invalid(format!(
                    "invalid secret variable name {name:?}"
                )));
            }
        }
    }
    for a in spec.args.iter().chain(&spec.env) {
        if a.contains('\0') {
            return Err(RunError::Invalid("an argument contains a NUL byte".into()));
        }
    }
    Ok(())
}

/// `OVERLAYFS_SUPER_MAGIC`: an overlay upper dir cannot live on overlayfs.
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

fn prepare_scratch(scratch: &Path, spec: &RunSpec) -> Result<ScratchLayout, RunError> {
    if let Ok(st) = rustix::fs::statfs(scratch) {
        // `f_type`'s integer type differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let on_overlay = st.f_type as i64 == OVERLAYFS_MAGIC;
        if on_overlay {
            return Err(RunError::Unsupported(format!(
                "the scratch dir {} is on overlayfs (a container's root filesystem?), which \
                 cannot hold an overlay upper dir; put kiln's state on another filesystem \
                 (e.g. a volume or tmpfs via KILN_HOME)",
                scratch.display()
            )));
        }
    }
    let layout = ScratchLayout::new(scratch);
    let io = |step: &str, e: std::io::Error| RunError::Setup {
        step: format!("{step} in {}", scratch.display()),
        message: e.to_string(),
    };
    for d in [
        &layout.upper,
        &layout.work,
        &layout.merged,
        &layout.empty,
        &layout.links,
        &layout.secrets,
    ] {
        std::fs::create_dir(d).map_err(|e| io("creating the scratch dirs", e))?;
    }
    std::fs::write(&layout.hosts, hosts_file(&spec.hostname, &spec.extra_hosts))
        .map_err(|e| io("writing hosts", e))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(&layout.resolv, resolv_conf(&host_resolv, spec.network))
        .map_err(|e| io("writing resolv.conf", e))?;
    Ok(layout)
}

/// Pids of the helpers running now (for [`cancel_all`]).
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Kills every sandbox this process is running (SIGKILL to each helper; its init and
/// every process of the sandbox die with it). For a caller that handles Ctrl-C/SIGTERM
/// itself instead of exiting: the pending [`run_with_helper`] calls then return with the
/// status 137. When kiln simply exits, the sandboxes die anyway (parent-death signal).
pub fn cancel_all() {
    let pids = RUNNING.lock().map(|p| p.clone()).unwrap_or_default();
    for pid in pids {
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

fn track(pid: u32, running: bool) {
    if let Ok(mut p) = RUNNING.lock() {
        if running {
            p.push(pid);
        } else {
            p.retain(|x| *x != pid);
        }
    }
}

/// Whether this process can run the sandbox at all: root, or root of a user namespace
/// (rootless kiln re-executes itself into one, see [`super::userns`]), and overlayfs. The
/// namespaces themselves are only known to work once a RUN tried
/// ([`RunError::Unsupported`] then).
pub fn check_available() -> Result<(), RunError> {
    use super::userns::Executor;
    match super::userns::executor() {
        Executor::Root | Executor::UserNamespace { .. } => {}
        Executor::Rootless { .. } => {
            return Err(RunError::NoSandbox {
                reason: "not root, and this process does not run in a user namespace \
                         (`kiln build` and `kiln bake` re-execute themselves in one)"
                    .into(),
                fix: "run the RUN through `kiln build` or `kiln bake`, or as root".into(),
            })
        }
        Executor::Unavailable { reason, fix } => return Err(RunError::NoSandbox { reason, fix }),
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.trim_end().ends_with("\toverlay"))
    {
        return Err(RunError::Unsupported(
            "the kernel has no overlayfs (/proc/filesystems)".into(),
        ));
    }
    Ok(())
}

/// Before a build with RUN steps starts: the sandbox this process gets, as one line for
/// the progress output, and a warning that goes with it (single-id mapping), or why
/// there is none ([`RunError::NoSandbox`], with the fix).
pub fn preflight() -> Result<(String, Option<String>), RunError> {
    check_available()?;
    let executor = super::userns::executor();
    Ok((
        format!("RUN executor: {}", executor.describe()),
        executor.warning().map(str::to_string),
    ))
}

/// In a user namespace, the ids a RUN switches to or gives files must be mapped.
fn check_ids(spec: &RunSpec) -> Result<(), RunError> {
    let Some(map) = super::userns::current_mapping() else {
        return Ok(());
    };
    let mut uids = vec![spec.uid];
    let mut gids = vec![spec.gid];
    for m in &spec.mounts {
        if let MountSpec::Secret { uid, gid, .. } | MountSpec::Ssh { uid, gid, .. } = m {
            uids.push(*uid);
            gids.push(*gid);
        }
    }
    if super::userns::setgroups_allowed() {
        gids.extend(&spec.additional_gids);
    }
    let unmapped = |what: &'static str, id: u32| RunError::UnmappedId {
        what,
        id,
        map: map.describe(),
    };
    if let Some(id) = uids.into_iter().find(|id| !map.maps_uid(*id)) {
        return Err(unmapped("uid", id));
    }
    if let Some(id) = gids.into_iter().find(|id| !map.maps_gid(*id)) {
        return Err(unmapped("gid", id));
    }
    Ok(())
}

/// A set-up failure as an error: namespaces or mounts the machine refuses (a locked-down
/// container) are [`RunError::Unsupported`], the rest [`RunError::Setup`].
fn classify(step: &str, message: &str) -> RunError {
    let refused = message.contains("Operation not permitted") || message.contains("os error 1)");
    let no_fs = message.contains("No such device");
    if (step.starts_with("creating namespaces") && refused)
        || (step == "mounting overlay" && (refused || no_fs))
        || (step == "making mounts private" && refused)
    {
        return RunError::Unsupported(format!("{step}: {message}"));
    }
    RunError::Setup {
        step: step.to_string(),
        message: message.to_string(),
    }
}

/// [`super::run`] with an explicit helper executable: a `kiln` binary (tests pass
/// `env!("CARGO_BIN_EXE_kiln")`), started as `HELPER __sandbox-init`.
pub fn run_with_helper(
    helper: &Path,
    lower: &[PathBuf],
    spec: &RunSpec,
    scratch: &Path,
    out: &mut dyn FnMut(&[u8]),
) -> Result<RunOutcome, RunError> {
    validate(spec)?;
    qemu::can_run(&spec.platform_arch)?;
    check_available()?;
    check_ids(spec)?;
    for l in lower {
        if !l.is_absolute() || !l.is_dir() {
            return Err(RunError::Invalid(format!(
                "the layer dir {} is not an absolute path to a directory",
                l.display()
            )));
        }
    }
    let scratch = std::path::absolute(scratch).map_err(|e| RunError::Setup {
        step: "resolving the scratch dir".into(),
        message: e.to_string(),
    })?;
    let layout = prepare_scratch(&scratch, spec)?;
    let request = HelperRequest {
        spec: spec.clone(),
        lower: lower.to_vec(),
        scratch: scratch.clone(),
        parent_pid: rustix::process::getpid().as_raw_nonzero().get(),
    };
    let helper_err = |source| RunError::Helper {
        helper: helper.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec(&request).map_err(|e| helper_err(e.into()))?;
    let mut child = Command::new(helper)
        .arg(HELPER_SUBCOMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(helper_err)?;
    track(child.id(), true);
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        track(child.id(), false);
        return Err(helper_err(std::io::Error::other("missing pipes")));
    };
    // The request is small (well under a pipe buffer), but write it from a thread anyway
    // so a helper that dies early cannot block us.
    let writer = std::thread::spawn(move || {
        let r = stdin.write_all(&json);
        drop(stdin);
        r
    });
    let errors = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let mut buf = vec![0u8; 64 * 1024];
    let read_result = loop {
        match stdout.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => out(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if read_result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    track(child.id(), false);
    let status = status.map_err(helper_err)?;
    let _ = writer.join();
    let err_text = errors.join().unwrap_or_default();
    read_result.map_err(helper_err)?;
    let err_text = String::from_utf8_lossy(&err_text);
    if let Some(line) = err_text.lines().find(|l| l.starts_with(ERROR_PREFIX)) {
        let rest = &line[ERROR_PREFIX.len()..];
        let (step, message) = rest
            .split_once('\t')
            .unwrap_or(("running the sandbox", rest));
        return Err(classify(step, message));
    }
    if !err_text.trim().is_empty() {
        return Err(RunError::Setup {
            step: "running the sandbox helper".into(),
            message: err_text.trim().to_string(),
        });
    }
    use std::os::unix::process::ExitStatusExt;
    let exit_code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    };
    Ok(RunOutcome {
        exit_code,
        upper: layout.upper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_buildkit() {
        assert_eq!(
            hosts_file("buildkitsandbox", &[("db".into(), "10.0.0.2".into())]),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tdb\n"
        );
    }

    #[test]
    fn refused_namespaces_are_unsupported() {
        assert!(matches!(
            classify(
                "creating namespaces (unshare)",
                "Operation not permitted (os error 1)"
            ),
            RunError::Unsupported(_)
        ));
        assert!(matches!(
            classify("mounting /tmp/x", "Operation not permitted (os error 1)"),
            RunError::Setup { .. }
        ));
    }

    #[test]
    fn resolv_drops_loopback() {
        let host = "search example\nnameserver 127.0.0.53\n";
        let r = resolv_conf(host, NetworkMode::Default);
        assert!(r.contains("search example") && !r.contains("127.0.0.53"));
        assert!(r.contains("8.8.8.8"));
        assert!(resolv_conf(host, NetworkMode::Host).contains("127.0.0.53"));
        let r = resolv_conf("nameserver 10.1.1.1\n", NetworkMode::Default);
        assert_eq!(r, "nameserver 10.1.1.1\n");
    }
}
