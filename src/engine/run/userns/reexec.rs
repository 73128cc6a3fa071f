//! Re-executing kiln inside a user namespace: the parent starts `/proc/self/exe` again,
//! writes the child's uid/gid maps once it has unshared, forwards signals to it and exits
//! with its status; the child enters the namespace first thing in `main`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use super::detect::{find_tool, plan_rootless};
use super::{single_mapping_warning, IdRange, Mapping, FALLBACK, NOTE};

/// Environment variable naming the two pipe fds (`READY,GO`) of a re-executed child.
pub const CHILD_ENV: &str = "_KILN_USERNS_CHILD";

/// What can go wrong entering the user namespace (the parent then runs the command
/// itself, without RUN).
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed ({status}): {stderr}")]
    MapTool {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("the re-executed kiln could not enter a user namespace: {0}")]
    Child(String),
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> UsernsError + '_ {
    move |source| UsernsError::Io {
        what: what.to_string(),
        source,
    }
}

/// The child's state after [`enter_if_child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Not a re-executed child.
    NotChild,
    /// In the user namespace, as uid 0: go on with the command.
    Entered,
    /// Could not enter it; the parent knows and runs the command itself: exit now.
    Failed,
}

/// Child side: when started by [`reexec_if_rootless`] (the [`CHILD_ENV`] variable),
/// unshares user and mount namespaces and waits for the parent's maps. Call first thing
/// in `main`, while the process is single-threaded.
pub fn enter_if_child() -> ChildState {
    let Some(value) = std::env::var_os(CHILD_ENV) else {
        return ChildState::NotChild;
    };
    // Single-threaded here; the variable must not reach anything kiln starts.
    std::env::remove_var(CHILD_ENV);
    let fds: Vec<i32> = value
        .to_str()
        .unwrap_or_default()
        .split(',')
        .filter_map(|f| f.parse().ok())
        .collect();
    let [ready, go] = fds[..] else {
        return ChildState::Failed;
    };
    if ready < 3 || go < 3 || ready == go {
        return ChildState::Failed;
    }
    // SAFETY: the parent passed these two pipe ends to this process and nothing else
    // owns them.
    let (mut ready, mut go) = unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(ready)),
            std::fs::File::from(OwnedFd::from_raw_fd(go)),
        )
    };
    use rustix::thread::UnshareFlags;
    // SAFETY: single-threaded (see above).
    let r = unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) };
    if let Err(e) = r {
        let _ = write!(ready, "Eunshare(CLONE_NEWUSER | CLONE_NEWNS): {e}");
        return ChildState::Failed;
    }
    if ready.write_all(b"K").is_err() {
        return ChildState::Failed;
    }
    drop(ready);
    let mut answer = Vec::new();
    if go.read_to_end(&mut answer).is_err() || answer.first() != Some(&b'K') {
        return ChildState::Failed;
    }
    let note = String::from_utf8_lossy(&answer[1..]).trim().to_string();
    if !note.is_empty() {
        let _ = NOTE.set(note);
    }
    // Die with the parent; keep this namespace's mounts from propagating anywhere.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let _ = rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    );
    if !rustix::process::geteuid().is_root() {
        return ChildState::Failed;
    }
    ChildState::Entered
}

/// The pid signals are forwarded to.
static CHILD_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with a handler that only calls kill(2), or SIG_DFL.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Runs `newuidmap`/`newgidmap` PID INSIDE OUTSIDE COUNT...
fn map_tool(tool: &str, pid: u32, ranges: &[IdRange]) -> Result<(), UsernsError> {
    let path = find_tool(tool).ok_or_else(|| UsernsError::MapTool {
        tool: tool.into(),
        status: "not found".into(),
        stderr: String::new(),
    })?;
    let mut cmd = Command::new(&path);
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([r.inside, r.outside, r.count].map(|v| v.to_string()));
    }
    let out = cmd.output().map_err(io_err(tool))?;
    if out.status.success() {
        return Ok(());
    }
    Err(UsernsError::MapTool {
        tool: tool.into(),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Writes the single-id maps itself (allowed without privileges: one line, own ids,
/// setgroups denied).
fn write_single_maps(pid: u32, uid_written: bool) -> Result<(), UsernsError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    if !uid_written {
        std::fs::write(proc.join("uid_map"), format!("0 {uid} 1\n"))
            .map_err(io_err("writing uid_map"))?;
    }
    std::fs::write(proc.join("setgroups"), "deny").map_err(io_err("writing setgroups"))?;
    std::fs::write(proc.join("gid_map"), format!("0 {gid} 1\n")).map_err(io_err("writing gid_map"))
}

/// Parent side, after the child said it unshared: the maps, and the note for the child.
fn write_maps(pid: u32, mapping: &Mapping, warning: Option<&str>) -> Result<String, UsernsError> {
    if mapping.is_single() {
        write_single_maps(pid, false)?;
        return Ok(warning.unwrap_or_default().to_string());
    }
    let uid = map_tool("newuidmap", pid, &mapping.uids);
    let gid = match &uid {
        Ok(()) => map_tool("newgidmap", pid, &mapping.gids),
        Err(_) => Ok(()),
    };
    match uid.and(gid) {
        Ok(()) => Ok(warning.unwrap_or_default().to_string()),
        Err(e) => {
            let uid_written = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
                .is_ok_and(|m| !m.trim().is_empty());
            write_single_maps(pid, uid_written)?;
            Ok(single_mapping_warning(&e.to_string()))
        }
    }
}

/// What [`reexec_if_rootless`] did.
#[derive(Debug)]
pub enum Reexec {
    /// Root, or no user namespace to be had: go on in this process.
    NotNeeded,
    /// The command ran in the re-executed child; exit with this status.
    Exited(u8),
}

/// Parent side: when not root and a user namespace is available, runs this same command
/// line again inside one and gives its exit status. When the namespace cannot be
/// entered after all, says so on stderr and lets the caller go on (RUN steps then fail
/// with the reason).
pub fn reexec_if_rootless() -> Reexec {
    if rustix::process::geteuid().is_root() {
        return Reexec::NotNeeded;
    }
    let Ok((mapping, warning)) = plan_rootless() else {
        return Reexec::NotNeeded;
    };
    match reexec(&mapping, warning.as_deref()) {
        Ok(code) => Reexec::Exited(code),
        Err(e) => {
            let reason = e.to_string();
            eprintln!("kiln: warning: {reason}; RUN steps are not available in this build");
            let _ = FALLBACK.set(reason);
            Reexec::NotNeeded
        }
    }
}

fn reexec(mapping: &Mapping, warning: Option<&str>) -> Result<u8, UsernsError> {
    use rustix::pipe::{pipe_with, PipeFlags};
    let (ready_r, ready_w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
    let (go_r, go_w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
    let (child_ready, child_go) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    let mut cmd = Command::new("/proc/self/exe");
    let mut args = std::env::args_os();
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args)
        .env(CHILD_ENV, format!("{child_ready},{child_go}"));
    // SAFETY: only fcntl(2) between fork and exec (async-signal-safe): the two child
    // ends of the pipes stay open across exec.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [child_ready, child_go] {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io_err("starting kiln again"))?;
    drop(ready_w);
    drop(go_r);
    let pid = child.id();
    CHILD_PID.store(i32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
    for sig in FORWARDED {
        set_handler(
            sig,
            forward_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let mut ready = std::fs::File::from(ready_r);
    let mut said = Vec::new();
    let _ = ready.read_to_end(&mut said);
    let mut go = std::fs::File::from(go_w);
    let set_up = match said.first() {
        Some(b'K') => write_maps(pid, mapping, warning),
        Some(b'E') => Err(UsernsError::Child(
            String::from_utf8_lossy(&said[1..]).into_owned(),
        )),
        _ => Err(UsernsError::Child("it exited before unsharing".into())),
    };
    match set_up {
        Ok(note) => {
            // The child may be gone already (killed): its status tells.
            let _ = go.write_all(format!("K{note}").as_bytes());
            drop(go);
        }
        Err(e) => {
            drop(go);
            let _ = child.wait();
            restore_handlers();
            return Err(e);
        }
    }
    let status = child.wait().map_err(io_err("waiting for kiln"));
    CHILD_PID.store(0, Ordering::Relaxed);
    restore_handlers();
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        // Die the same way, so the shell sees what happened (130 for Ctrl-C).
        // SAFETY: plain raise(3) after restoring the default action.
        unsafe {
            libc::raise(sig);
        }
        return Ok(u8::try_from(128 + sig).unwrap_or(255));
    }
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(255))
}

fn restore_handlers() {
    for sig in FORWARDED {
        set_handler(sig, libc::SIG_DFL);
    }
}
