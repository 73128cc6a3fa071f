//! Running the RUN command directly in the root: the stage's environment, the working
//! directory, the user (`setgroups`, `setgid`, `setuid` in the child), umask 022, stdin
//! from `/dev/null`, stdout and stderr into one pipe (interleaved as written, like the
//! sandbox), its own process group. When the command exits, whatever it left running in
//! its process group is killed (the sandbox's pid namespace does that there); a process
//! that made its own session escapes this, which is one of the mode's limits.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::error::InplaceError;
use crate::engine::run::{MountSpec, RunSpec};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's environment: the spec's, with secret variables added.
pub(crate) fn environment(spec: &RunSpec) -> Vec<(String, String)> {
    let mut env: Vec<String> = spec.env.clone();
    for m in &spec.mounts {
        if let MountSpec::SecretEnv { name, value } = m {
            let prefix = format!("{name}=");
            env.retain(|e| !e.starts_with(&prefix));
            env.push(format!("{name}={value}"));
        }
    }
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// The program to execute: `args[0]` itself when it has a `/`, else the first executable
/// regular file of that name in the spec's `PATH`.
fn lookup(name: &str, env: &[(String, String)]) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
}

/// Runs the command; gives its exit status (128+N for signal N, 127 when the program is
/// not there, 126 when it cannot be executed: the message then goes to `out`).
pub(crate) fn run_command(spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32, InplaceError> {
    let env = environment(spec);
    let Some(arg0) = spec.args.first() else {
        return Err(InplaceError::Invalid("no command".into()));
    };
    let Some(program) = lookup(arg0, &env) else {
        out(format!("exec: {arg0:?}: executable file not found in $PATH\n").as_bytes());
        return Ok(127);
    };
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| InplaceError::Spawn(e.into()))?;
    let writer2 = writer.try_clone().map_err(InplaceError::Spawn)?;
    let mut cmd = Command::new(&program);
    cmd.arg0(arg0)
        .args(&spec.args[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0);
    let mut groups: Vec<libc::gid_t> = vec![spec.gid];
    for g in &spec.additional_gids {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    let (uid, gid) = (spec.uid, spec.gid);
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::umask(0o022);
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // The exec failed in the child (the program vanished, not executable, bad
            // ELF): report it like the sandbox does.
            drop(cmd);
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            out(format!("exec: {arg0:?}: {}: {e}\n", program.display()).as_bytes());
            return Ok(code);
        }
    };
    // Our copies of the write end must be closed, or the pipe never reports its end.
    drop(cmd);
    let pid = child.id();
    let waiter = std::thread::spawn(move || wait_and_kill_group(child));
    forward(&reader, out, &waiter);
    let status = waiter
        .join()
        .map_err(|_| InplaceError::Spawn(std::io::Error::other("the waiter thread panicked")))?
        .map_err(InplaceError::Spawn)?;
    tracing::debug!(pid, ?status, "RUN command finished");
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    })
}

/// Waits until the command exits (without reaping it, so its pid, which is also its
/// process group id, cannot be reused), kills what is left in its group, then reaps it.
fn wait_and_kill_group(
    mut child: std::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    let pid = child.id() as libc::pid_t;
    loop {
        // SAFETY: waitid on our own child with a zeroed siginfo we own.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: a plain kill(2) of the command's process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    child.wait()
}

/// Forwards the pipe to `out` until every writer is gone, or, once the command has
/// exited, until nothing more arrives (a process that escaped the group may hold it).
fn forward(
    reader: &OwnedFd,
    out: &mut dyn FnMut(&[u8]),
    waiter: &std::thread::JoinHandle<std::io::Result<std::process::ExitStatus>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut file = std::fs::File::from(match reader.try_clone() {
        Ok(fd) => fd,
        Err(_) => return,
    });
    let mut exited_at: Option<std::time::Instant> = None;
    loop {
        if exited_at.is_none() && waiter.is_finished() {
            exited_at = Some(std::time::Instant::now());
        }
        if exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            return;
        }
        let fd = reader.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec::try_from(Duration::from_millis(100)).ok();
        let ready = match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        };
        if ready == 0 {
            if exited_at.is_some() {
                return;
            }
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => out(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_override_the_environment() {
        let spec = RunSpec {
            args: vec!["true".into()],
            env: vec!["PATH=/bin".into(), "TOK=old".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            hostname: String::new(),
            network: crate::engine::run::NetworkMode::Default,
            mounts: vec![MountSpec::SecretEnv {
                name: "TOK".into(),
                value: "new".into(),
            }],
            platform_arch: crate::engine::run::host_arch().into(),
            extra_hosts: vec![],
            insecure: false,
        };
        let env = environment(&spec);
        assert!(env.contains(&("TOK".into(), "new".into())));
        assert!(!env.contains(&("TOK".into(), "old".into())));
    }
}
