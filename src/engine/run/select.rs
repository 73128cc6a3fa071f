//! Choosing the RUN executor: `--executor=auto|sandbox|unprivileged` (or
//! `KILN_EXECUTOR`). `auto` takes the sandbox when namespaces work (a child process tries
//! the `unshare` and a mount), else the unprivileged executor, but only when kiln can
//! tell it runs inside a container, because that executor rewrites the root filesystem;
//! anywhere else the first RUN fails with a hint naming the explicit opt-in.

use std::str::FromStr;

use super::executor::{Executor, Selected};
use super::inplace::InPlace;

/// The environment variable that chooses the executor when `--executor` is not given.
pub const ENV_EXECUTOR: &str = "KILN_EXECUTOR";

/// `--executor` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorChoice {
    #[default]
    Auto,
    Sandbox,
    Unprivileged,
}

impl FromStr for ExecutorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "auto" => Ok(ExecutorChoice::Auto),
            "sandbox" => Ok(ExecutorChoice::Sandbox),
            "unprivileged" => Ok(ExecutorChoice::Unprivileged),
            other => Err(format!(
                "invalid executor {other:?}: expected auto, sandbox or unprivileged"
            )),
        }
    }
}

const OPT_IN: &str = "if this is a throw-away CI container or VM, pass --executor=unprivileged \
                      (or set KILN_EXECUTOR=unprivileged): RUN then rewrites this machine's \
                      root filesystem";

/// The executor for `choice`, chosen when a build first needs it.
pub fn select(choice: ExecutorChoice) -> Selected {
    Selected::deferred(choice)
}

fn picked(executor: Executor, reason: impl Into<String>) -> (Executor, String) {
    (executor, reason.into())
}

/// Chooses the executor and says why (probing the machine for `auto`).
pub fn choose(choice: ExecutorChoice) -> (Executor, String) {
    let root = rustix::process::geteuid().is_root();
    match choice {
        ExecutorChoice::Sandbox => {
            picked(Executor::Sandbox, "chosen with --executor or KILN_EXECUTOR")
        }
        ExecutorChoice::Unprivileged if !root => picked(
            Executor::Unavailable {
                message: "the unprivileged executor needs root: it rewrites the root \
                          filesystem to the stage's"
                    .into(),
                hint: "run kiln as root inside the CI container".into(),
            },
            "--executor=unprivileged, but not root",
        ),
        ExecutorChoice::Unprivileged => picked(
            Executor::Unprivileged(InPlace::new()),
            "chosen with --executor or KILN_EXECUTOR",
        ),
        ExecutorChoice::Auto => {
            let why = match probe_sandbox() {
                Ok(()) => return picked(Executor::Sandbox, "auto: namespaces are available"),
                Err(why) => why,
            };
            match container_evidence() {
                Some(evidence) if root => picked(
                    Executor::Unprivileged(InPlace::new()),
                    format!("auto: the sandbox cannot run here ({why}); inside a container ({evidence})"),
                ),
                Some(evidence) => picked(
                    Executor::Unavailable {
                        message: format!(
                            "no RUN executor works here: the sandbox cannot run ({why}), and \
                             the unprivileged executor for containers ({evidence}) needs root"
                        ),
                        hint: "run kiln as root inside the CI container".into(),
                    },
                    format!("auto: sandbox unavailable ({why}), not root"),
                ),
                None => picked(
                    Executor::Unavailable {
                        message: format!(
                            "no RUN executor works here: the sandbox cannot run ({why}), and \
                             kiln does not seem to run inside a container (no /.dockerenv, \
                             /run/.containerenv, container= variable or container cgroup), \
                             so it will not choose the unprivileged executor, which rewrites \
                             the root filesystem"
                        ),
                        hint: OPT_IN.into(),
                    },
                    format!("auto: sandbox unavailable ({why}), not inside a container"),
                ),
            }
        }
    }
}

/// Whether the sandbox can run: root and overlayfs ([`super::check_available`]), and a
/// child process may create the namespaces and mount in them. Gives the reason if not.
pub fn probe_sandbox() -> Result<(), String> {
    super::check_available().map_err(|e| e.to_string())?;
    probe_unshare()
}

/// Forks a child that unshares the sandbox's namespaces (a user namespace too when not
/// root), makes its mounts private and mounts a tmpfs over `/` (only in its own mount
/// namespace), then exits. Its result comes back through a pipe.
fn probe_unshare() -> Result<(), String> {
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if !rustix::process::geteuid().is_root() {
        flags |= libc::CLONE_NEWUSER;
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two descriptors we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "probing namespaces: {}",
            std::io::Error::last_os_error()
        ));
    }
    let (r, w) = (fds[0], fds[1]);
    let slash = c"/";
    let tmpfs = c"tmpfs";
    // SAFETY: between fork and _exit the child makes only async-signal-safe system
    // calls on data prepared before the fork (the caller may be multi-threaded).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let fail = |stage: u8| -> ! {
                let errno = *libc::__errno_location();
                let mut msg = [stage, 0, 0, 0, 0];
                msg[1..].copy_from_slice(&errno.to_ne_bytes());
                libc::write(w, msg.as_ptr().cast(), msg.len());
                libc::_exit(1)
            };
            if libc::unshare(flags) != 0 {
                fail(1);
            }
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                slash.as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            ) != 0
            {
                fail(2);
            }
            if libc::mount(
                tmpfs.as_ptr(),
                slash.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
            {
                fail(3);
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end; reading the child's report.
    unsafe { libc::close(w) };
    if pid < 0 {
        unsafe { libc::close(r) };
        return Err(format!(
            "probing namespaces (fork): {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut msg = [0u8; 5];
    let mut got = 0usize;
    while got < msg.len() {
        // SAFETY: reading into the rest of our buffer.
        let n = unsafe { libc::read(r, msg[got..].as_mut_ptr().cast(), msg.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0
            || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
    }
    unsafe { libc::close(r) };
    let mut status = 0;
    // SAFETY: reaping our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    if got == msg.len() {
        let errno = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
        let what = match msg[0] {
            1 => "creating namespaces (unshare)",
            2 => "making mounts private",
            _ => "mounting in a new mount namespace",
        };
        return Err(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(errno)
        ));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err("the namespace probe did not finish".into())
    }
}

/// Why kiln thinks it runs inside a container, if it does.
pub fn container_evidence() -> Option<String> {
    for marker in ["/.dockerenv", "/run/.containerenv"] {
        if std::fs::symlink_metadata(marker).is_ok() {
            return Some(format!("{marker} exists"));
        }
    }
    if let Some(v) = std::env::var_os("container").filter(|v| !v.is_empty()) {
        return Some(format!("container={} is set", v.to_string_lossy()));
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Some("KUBERNETES_SERVICE_HOST is set".into());
    }
    let cgroup = std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
    if let Some(hint) = cgroup_hint(&cgroup) {
        return Some(format!("/proc/1/cgroup mentions {hint}"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    root_overlay_hint(&mountinfo).map(|h| format!("the root filesystem is an overlay of {h}"))
}

const RUNTIMES: &[&str] = &[
    "docker",
    "kubepods",
    "containerd",
    "libpod",
    "lxc",
    "buildkit",
    "actions_job",
];

fn cgroup_hint(text: &str) -> Option<&'static str> {
    RUNTIMES.iter().copied().find(|r| {
        text.lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .any(|path| path.contains(r))
    })
}

/// A root mount of type overlay whose options name a container runtime's storage.
fn root_overlay_hint(mountinfo: &str) -> Option<&'static str> {
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))?;
    let (_, after) = line.split_once(" - ")?;
    if !after.starts_with("overlay ") {
        return None;
    }
    RUNTIMES.iter().copied().find(|r| after.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse(), Ok(ExecutorChoice::Auto));
        assert_eq!("unprivileged".parse(), Ok(ExecutorChoice::Unprivileged));
        assert!("chroot".parse::<ExecutorChoice>().is_err());
    }

    #[test]
    fn container_hints() {
        assert_eq!(
            cgroup_hint("9:name=systemd:/docker/ce97\n8:pids:/docker/ce97\n"),
            Some("docker")
        );
        assert_eq!(cgroup_hint("0::/\n9:name=systemd:/\n"), None);
        let docker_root = "76 50 0:40 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X,upperdir=/var/lib/docker/overlay2/Y/diff\n";
        assert_eq!(root_overlay_hint(docker_root), Some("docker"));
        let host_root = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(root_overlay_hint(host_root), None);
    }

    #[test]
    fn probe_matches_what_the_machine_allows() {
        // As root the probe must agree with a real unshare in a child process.
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: the probe's root path needs root");
            return;
        }
        let real = std::process::Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "true"])
            .status();
        let Ok(real) = real else {
            eprintln!("SKIP: no unshare(1) to compare with");
            return;
        };
        assert_eq!(
            probe_unshare().is_ok(),
            real.success(),
            "{:?}",
            probe_unshare()
        );
    }
}
