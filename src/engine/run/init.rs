//! The helper process (`kiln __sandbox-init`): namespaces, PID 1, the command.
//!
//! Process tree:
//! ```text
//! kiln (caller)
//!  └─ helper: reads the request, unshares mount/pid/ipc/uts(/net), waits for init
//!      └─ init (PID 1 of the new pid namespace): mounts, reaps every process
//!          └─ command: own copy of the mount namespace, pivot_root, user switch, exec
//! ```
//! Every level asks for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), and when the
//! pid namespace's init dies the kernel kills everything left in it: killing kiln (Ctrl-C,
//! SIGTERM) takes the whole sandbox down. When the command exits, init kills whatever it
//! left behind (`sleep 100 &`) and reaps it before unmounting.
//!
//! The helper is a fresh, single-threaded process, so `fork` without `exec` is sound
//! here: the children may allocate and do ordinary work.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::UnshareFlags;

use super::mounts::{self, StepError, StepResult};
use super::sandbox::{HelperRequest, ScratchLayout, ERROR_PREFIX};
use super::{MountSpec, NetworkMode};

/// The exit status the helper uses for set-up failures (the message on stderr decides).
const SETUP_FAILED: i32 = 255;

fn report(step: &str, err: &dyn std::fmt::Display) {
    let msg = err.to_string().replace(['\n', '\t'], " ");
    let _ = writeln!(std::io::stderr(), "{ERROR_PREFIX}{step}\t{msg}");
}

fn report_step(e: &StepError) {
    report(&e.step, &e.error);
}

/// Entry point of `kiln __sandbox-init`; gives the process exit status.
pub fn sandbox_init_main() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        report("reading the request", &e);
        return SETUP_FAILED;
    }
    let req: HelperRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            report("reading the request", &e);
            return SETUP_FAILED;
        }
    };
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err()
        || rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(req.parent_pid)
    {
        // The caller is already gone.
        return SETUP_FAILED;
    }
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWIPC;
    flags |= UnshareFlags::NEWUTS;
    if req.spec.network == NetworkMode::None {
        flags |= UnshareFlags::NEWNET;
    }
    // SAFETY: this process is single-threaded; unsharing affects only it and its
    // future children.
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(flags) } {
        report("creating namespaces (unshare)", &e);
        return SETUP_FAILED;
    }
    // SAFETY: single-threaded process (see the module docs).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        report(
            "starting the sandbox init (fork)",
            &std::io::Error::last_os_error(),
        );
        return SETUP_FAILED;
    }
    if pid == 0 {
        let code = init_main(&req);
        std::process::exit(code);
    }
    wait_exit_code(pid)
}

/// Waits for `pid` and gives its exit status (128+N for signal N).
fn wait_exit_code(pid: i32) -> i32 {
    let Some(pid) = Pid::from_raw(pid) else {
        return SETUP_FAILED;
    };
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return status_code(&status),
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
    }
}

fn status_code(status: &rustix::process::WaitStatus) -> i32 {
    if let Some(c) = status.exit_status() {
        c
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        SETUP_FAILED
    }
}

/// PID 1 of the sandbox.
fn init_main(req: &HelperRequest) -> i32 {
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err() {
        return SETUP_FAILED;
    }
    let layout = ScratchLayout::new(&req.scratch);
    let prepared = match mounts::prepare(req, &layout) {
        Ok(p) => p,
        Err(e) => {
            report_step(&e);
            return SETUP_FAILED;
        }
    };
    let code = match start_and_reap(req, &prepared) {
        Ok(c) => c,
        Err(e) => {
            report_step(&e);
            SETUP_FAILED
        }
    };
    mounts::cleanup(&prepared);
    code
}

fn set_up_host(req: &HelperRequest) -> StepResult<()> {
    let name = if req.spec.hostname.is_empty() {
        "buildkitsandbox"
    } else {
        req.spec.hostname.as_str()
    };
    mounts::step(
        || "setting the hostname".into(),
        rustix::system::sethostname(name.as_bytes()).map_err(Into::into),
    )?;
    if req.spec.network == NetworkMode::None {
        mounts::step(|| "bringing up lo".into(), loopback_up())?;
    }
    Ok(())
}

/// `ip link set lo up` in the new network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed `ifreq` we own; the fd is closed on
    // every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// Starts the command, reaps every process until the command has exited, then kills
/// and reaps the rest. Gives the command's exit status.
fn start_and_reap(req: &HelperRequest, prepared: &mounts::Prepared) -> StepResult<i32> {
    let merged = prepared.merged.as_path();
    set_up_host(req)?;
    let exec = mounts::step(|| "preparing the command".into(), ExecPlan::new(req))?;
    // SAFETY: this process is single-threaded (forked from the single-threaded helper).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(StepError {
            step: "starting the command (fork)".into(),
            error: std::io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        let code = match command_child(req, merged, &exec) {
            Ok(never) => match never {},
            Err(e) => {
                report_step(&e);
                SETUP_FAILED
            }
        };
        // SAFETY: leaving the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    // Threads only now: the command was forked from a single-threaded process.
    for (listener, agent) in &prepared.ssh {
        if let Ok(l) = listener.try_clone() {
            let agent = agent.clone();
            std::thread::spawn(move || proxy_ssh(l, agent));
        }
    }
    let mut code = None;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((p, status))) => {
                if p.as_raw_nonzero().get() == pid && code.is_none() {
                    code = Some(status_code(&status));
                    // The command is done: nothing else may outlive it.
                    let _ = kill_all();
                }
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break, // ECHILD: everything reaped
        }
    }
    Ok(code.unwrap_or(SETUP_FAILED))
}

/// Forwards each connection to the sandbox's SSH socket to the agent's socket.
fn proxy_ssh(listener: std::os::unix::net::UnixListener, agent: std::path::PathBuf) {
    use std::os::unix::net::UnixStream;
    for conn in listener.incoming() {
        let Ok(inner) = conn else { continue };
        let Ok(outer) = UnixStream::connect(&agent) else {
            continue;
        };
        let (Ok(mut inner_r), Ok(mut outer_w)) = (inner.try_clone(), outer.try_clone()) else {
            continue;
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut inner_r, &mut outer_w);
            let _ = outer_w.shutdown(std::net::Shutdown::Write);
        });
        let (mut outer_r, mut inner_w) = (outer, inner);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut outer_r, &mut inner_w);
            let _ = inner_w.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// `kill(-1, SIGKILL)`: every process of the namespace but init.
fn kill_all() -> std::io::Result<()> {
    // SAFETY: a plain kill(2) call.
    let r = unsafe { libc::kill(-1, libc::SIGKILL) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The argv and environment, ready before forking the command.
struct ExecPlan {
    argv: Vec<CString>,
    envp: Vec<CString>,
    path_env: String,
    /// False in a user namespace that denies setgroups (single-id mapping): the command
    /// keeps the supplementary groups it has.
    setgroups: bool,
}

impl ExecPlan {
    fn new(req: &HelperRequest) -> std::io::Result<ExecPlan> {
        let inval = || std::io::Error::from_raw_os_error(libc::EINVAL);
        let argv = req
            .spec
            .args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| inval()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env: Vec<String> = req.spec.env.clone();
        for m in &req.spec.mounts {
            if let MountSpec::SecretEnv { name, value } = m {
                let prefix = format!("{name}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{name}={value}"));
            }
        }
        let path_env = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
            .unwrap_or_else(|| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
            });
        let envp = env
            .iter()
            .map(|e| CString::new(e.as_str()).map_err(|_| inval()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExecPlan {
            argv,
            envp,
            path_env,
            setgroups: super::userns::setgroups_allowed(),
        })
    }
}

/// Capabilities a RUN keeps (BuildKit's / Docker's defaults: CHOWN, DAC_OVERRIDE,
/// FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP); the others leave the bounding set, so the exec'd
/// command (root included) cannot get them.
const KEPT_CAPS: &[libc::c_ulong] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

fn drop_capabilities() {
    for cap in 0..64 {
        if KEPT_CAPS.contains(&cap) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP) takes plain integers; EINVAL past the last
        // capability the kernel knows ends the loop.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            break;
        }
    }
}

/// `dup2(from, to)`.
fn dup2(from: i32, to: i32, what: &str) -> StepResult<()> {
    // SAFETY: dup2 on descriptors this process owns.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(last(what));
    }
    Ok(())
}

/// In the forked command process: own mount namespace copy, pivot_root into the overlay,
/// working dir, umask, user, exec. Returns only on a set-up failure.
fn command_child(
    req: &HelperRequest,
    merged: &std::path::Path,
    exec: &ExecPlan,
) -> StepResult<std::convert::Infallible> {
    let spec = &req.spec;
    // A copy of init's mount namespace, so pivot_root changes only this process's root.
    // SAFETY: single-threaded process.
    mounts::step(
        || "creating the command's mount namespace".into(),
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }.map_err(Into::into),
    )?;
    let io = |what: &'static str| {
        move |e: rustix::io::Errno| StepError {
            step: what.to_string(),
            error: e.into(),
        }
    };
    rustix::process::chdir(merged).map_err(io("entering the root"))?;
    rustix::process::pivot_root(".", ".").map_err(io("pivot_root"))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(io("detaching the old root"))?;
    rustix::process::chdir("/").map_err(io("entering the new root"))?;
    mounts::step(
        || format!("entering the working directory {}", spec.cwd),
        rustix::process::chdir(spec.cwd.as_str()).map_err(Into::into),
    )?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .map_err(io("opening /dev/null"))?;
    dup2(
        std::os::fd::AsRawFd::as_raw_fd(&null),
        libc::STDIN_FILENO,
        "redirecting stdin",
    )?;
    drop(null);
    if !spec.insecure {
        drop_capabilities();
    }
    let mut groups: Vec<libc::gid_t> = vec![spec.gid];
    for g in &spec.additional_gids {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    // SAFETY: plain credential syscalls in a single-threaded process; `groups` outlives
    // the call.
    unsafe {
        if exec.setgroups && libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(last("setting supplementary groups"));
        }
        if libc::setgid(spec.gid) != 0 {
            return Err(last("setting the group id"));
        }
        if libc::setuid(spec.uid) != 0 {
            return Err(last("setting the user id"));
        }
    }
    // From here on the command's stderr is the output pipe too.
    dup2(
        libc::STDOUT_FILENO,
        libc::STDERR_FILENO,
        "redirecting stderr",
    )?;
    let (code, message) = exec_command(exec);
    let _ = writeln!(std::io::stderr(), "{message}");
    // SAFETY: leaving the forked child.
    unsafe { libc::_exit(code) }
}

fn last(step: &str) -> StepError {
    StepError {
        step: step.to_string(),
        error: std::io::Error::last_os_error(),
    }
}

/// execve of the program (looked up in PATH when it has no `/`); returns only on failure,
/// with the exit status and a runc-like message.
fn exec_command(exec: &ExecPlan) -> (i32, String) {
    let Some(arg0) = exec.argv.first() else {
        return (127, "exec: no command".into());
    };
    let name = String::from_utf8_lossy(arg0.as_bytes()).into_owned();
    let candidates: Vec<std::path::PathBuf> = if name.contains('/') {
        vec![name.clone().into()]
    } else {
        exec.path_env
            .split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| std::path::Path::new(d).join(&name))
            .filter(|p| {
                std::fs::metadata(p).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                })
            })
            .collect()
    };
    let Some(path) = candidates.first() else {
        return (
            127,
            format!("exec: {name:?}: executable file not found in $PATH"),
        );
    };
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
        return (127, format!("exec: {name:?}: invalid path"));
    };
    let mut argv: Vec<*const libc::c_char> = exec.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = exec.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of pointers to CStrings that outlive the call.
    unsafe { libc::execve(cpath.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    (
        code,
        format!("exec: {name:?}: stat {}: {err}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn ssh_proxy_forwards_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent_path = dir.path().join("agent");
        let agent = UnixListener::bind(&agent_path).expect("bind");
        let front = UnixListener::bind(dir.path().join("front")).expect("bind");
        std::thread::spawn(move || super::proxy_ssh(front, agent_path));
        let server = std::thread::spawn(move || {
            let (mut c, _) = agent.accept().expect("accept");
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).expect("read");
            assert_eq!(&buf, b"ping");
            c.write_all(b"pong").expect("write");
        });
        let mut c = UnixStream::connect(dir.path().join("front")).expect("connect");
        c.write_all(b"ping").expect("write");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"pong");
        server.join().expect("join");
    }
}
