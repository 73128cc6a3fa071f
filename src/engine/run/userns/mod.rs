//! Rootless RUN: when kiln is not root, `kiln build` / `kiln bake` re-execute themselves
//! once inside a new user namespace (and mount namespace) where kiln is uid 0, the way
//! rootless podman and buildah do. Inside, extraction (chown), overlayfs (`userxattr`),
//! the sandbox's namespaces and the RUN diff all work as they do for root; what the store
//! holds is owned on the host by the user and by the user's subordinate ids.
//!
//! The mapping is the fullest available:
//! * uid/gid 0 -> the user's own id, and 1..N -> the ranges of `/etc/subuid` and
//!   `/etc/subgid`, written by the setuid helpers `newuidmap` / `newgidmap` (Debian
//!   package `uidmap`);
//! * without those, a single-id mapping (0 -> the user's id only), written by kiln
//!   itself: files owned by any other id (e.g. `/home/app` of a base image, a
//!   `USER 1000` step) cannot exist in it, and a layer that needs one fails clearly.
//!
//! The re-execution ([`reexec_if_rootless`], parent side; [`enter_if_child`], child side):
//! the parent starts `/proc/self/exe` with the same arguments and two pipes; the child,
//! still single-threaded, unshares user and mount namespaces and says so on the first
//! pipe; the parent writes its uid/gid maps and answers on the second one; the child
//! goes on with the command as uid 0. The parent forwards SIGINT, SIGTERM, SIGHUP and
//! SIGQUIT to the child and exits with its status (re-raising the signal that killed
//! it). The host network is kept: registry pushes, `--load` and caches work as usual.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// Environment variable naming the two pipe fds (`READY,GO`) of a re-executed child.
pub const CHILD_ENV: &str = "_KILN_USERNS_CHILD";

/// One line of a uid or gid map: ids `inside..inside+count` are `outside..` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    fn contains(&self, id: u32) -> bool {
        id >= self.inside && u64::from(id) < u64::from(self.inside) + u64::from(self.count)
    }
}

/// The uid and gid maps of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn format_ranges(ranges: &[IdRange]) -> String {
    let end = |start: u32, count: u32| u64::from(start) + u64::from(count) - 1;
    ranges
        .iter()
        .map(|r| {
            if r.count == 1 {
                format!("{}->{}", r.inside, r.outside)
            } else {
                format!(
                    "{}-{}->{}-{}",
                    r.inside,
                    end(r.inside, r.count),
                    r.outside,
                    end(r.outside, r.count)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Mapping {
    /// Only uid 0 and gid 0 exist (no subordinate ids).
    pub fn is_single(&self) -> bool {
        self.uids.iter().map(|r| u64::from(r.count)).sum::<u64>() <= 1
    }

    pub fn maps_uid(&self, id: u32) -> bool {
        self.uids.iter().any(|r| r.contains(id))
    }

    pub fn maps_gid(&self, id: u32) -> bool {
        self.gids.iter().any(|r| r.contains(id))
    }

    /// `uid 0->1001, 1-65536->100000-165535; gid ...`
    pub fn describe(&self) -> String {
        format!(
            "uid {}; gid {}",
            format_ranges(&self.uids),
            format_ranges(&self.gids)
        )
    }
}

fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(str::parse::<u32>);
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The maps of the user namespace this process is in, or None in the initial one.
pub fn current_mapping() -> Option<&'static Mapping> {
    static CURRENT: OnceLock<Option<Mapping>> = OnceLock::new();
    CURRENT
        .get_or_init(|| {
            let uids = parse_map(&std::fs::read_to_string("/proc/self/uid_map").ok()?);
            let gids = parse_map(&std::fs::read_to_string("/proc/self/gid_map").ok()?);
            let initial = IdRange {
                inside: 0,
                outside: 0,
                count: u32::MAX,
            };
            (uids != [initial]).then_some(Mapping { uids, gids })
        })
        .as_ref()
}

/// Whether this process runs in a user namespace other than the host's (re-executed
/// rootless kiln, or a rootless container): overlayfs then needs `userxattr`, the opaque
/// xattr is `user.overlay.opaque`, and device nodes cannot be created.
pub fn in_user_namespace() -> bool {
    current_mapping().is_some()
}

/// Whether `setgroups(2)` is allowed here (a single-id mapping denies it).
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny")
}

/// What a RUN step runs in, for this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// Real root: the sandbox's namespaces directly.
    Root,
    /// Root of a user namespace (kiln re-executed itself, or runs in a rootless
    /// container); `note` says why the mapping is not the full one, if it is not.
    UserNamespace {
        mapping: Mapping,
        note: Option<String>,
    },
    /// Not root: `kiln build` and `kiln bake` re-execute themselves in a user namespace
    /// with this mapping; `warning` when it is the single-id one.
    Rootless {
        mapping: Mapping,
        warning: Option<String>,
    },
    /// No sandbox: why, and what fixes it.
    Unavailable { reason: String, fix: String },
}

impl Executor {
    /// One line for `kiln builder inspect` and the start of a build.
    pub fn describe(&self) -> String {
        match self {
            Executor::Root => "sandbox as root (namespaces, overlayfs)".into(),
            Executor::UserNamespace { mapping, .. } | Executor::Rootless { mapping, .. } => {
                let kind = if mapping.is_single() {
                    "single-id mapping"
                } else {
                    "subordinate ids"
                };
                format!(
                    "rootless sandbox (user namespace, {kind}: {})",
                    mapping.describe()
                )
            }
            Executor::Unavailable { reason, .. } => format!("not available: {reason}"),
        }
    }

    /// The warning that goes with it (single-id mapping, a fallback), if any.
    pub fn warning(&self) -> Option<&str> {
        match self {
            Executor::UserNamespace { note, .. } => note.as_deref(),
            Executor::Rootless { warning, .. } => warning.as_deref(),
            _ => None,
        }
    }
}

/// Why the re-executed user namespace could not be used (set when the parent falls back
/// to running the command itself).
static FALLBACK: OnceLock<String> = OnceLock::new();
/// The note the parent handed to the re-executed child (single-id mapping, why).
static NOTE: OnceLock<String> = OnceLock::new();

const INSTALL_FIX: &str = "install uidmap (`apt-get install uidmap`) and give your user \
    subordinate ids in /etc/subuid and /etc/subgid (e.g. `sudo usermod --add-subuids \
    100000-165535 --add-subgids 100000-165535 $USER`), or build as root";

/// What RUN gets in this process.
pub fn executor() -> Executor {
    if rustix::process::geteuid().is_root() {
        return match current_mapping() {
            None => Executor::Root,
            Some(m) => Executor::UserNamespace {
                mapping: m.clone(),
                note: NOTE.get().cloned().or_else(|| {
                    m.is_single()
                        .then(|| single_mapping_warning("no subordinate ids"))
                }),
            },
        };
    }
    if let Some(reason) = FALLBACK.get() {
        return Executor::Unavailable {
            reason: reason.clone(),
            fix: "check that unprivileged user namespaces are allowed, or build as root".into(),
        };
    }
    match plan_rootless() {
        Ok((mapping, warning)) => Executor::Rootless { mapping, warning },
        Err((reason, fix)) => Executor::Unavailable { reason, fix },
    }
}

fn single_mapping_warning(why: &str) -> String {
    format!(
        "rootless with a single-id mapping ({why}): only uid 0 and gid 0 exist in the \
         sandbox, so files owned by other ids (in base images too) and USER with another \
         id cannot be represented; for the full mapping, {INSTALL_FIX}"
    )
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// `(major, minor)` of the running kernel.
fn kernel_version() -> Option<(u32, u32)> {
    let uname = rustix::system::uname();
    let release = uname.release().to_str().ok()?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The login name of `uid` (passwd database, NSS included).
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter; the buffer outlives the call
    // and the strings read from `pwd` point into it.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if r != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

/// The ranges of `file` (`/etc/subuid` format: `name-or-id:start:count`) for a user.
fn subordinate_ranges(file: &Path, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let id = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != id && Some(who) != name {
                return None;
            }
            let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// `0 -> own`, then the subordinate ranges from inside id 1 on.
fn full_map(own: u32, subs: &[(u32, u32)]) -> Vec<IdRange> {
    let mut out = vec![IdRange {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next: u64 = 1;
    for (start, count) in subs {
        let Ok(inside) = u32::try_from(next) else {
            break;
        };
        out.push(IdRange {
            inside,
            outside: *start,
            count: *count,
        });
        next += u64::from(*count);
    }
    out
}

/// An executable called `name` in PATH or the usual system directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The mapping a non-root user gets (and a warning for the single-id one), or why there
/// is none and what fixes it.
fn plan_rootless() -> Result<(Mapping, Option<String>), (String, String)> {
    if read_trimmed("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err((
            "user namespaces are disabled (sysctl user.max_user_namespaces = 0)".into(),
            "enable them: `sudo sysctl -w user.max_user_namespaces=15000`, or build as root".into(),
        ));
    }
    if read_trimmed("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err((
            "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)".into(),
            "enable them: `sudo sysctl -w kernel.unprivileged_userns_clone=1`, or build as root".into(),
        ));
    }
    if read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
        == Some("1")
    {
        return Err((
            "AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns = 1)".into(),
            "allow them: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile for kiln with `userns,`), or build as root".into(),
        ));
    }
    match kernel_version() {
        Some(v) if v < (5, 11) => {
            return Err((
                format!(
                    "overlayfs in a user namespace (`userxattr`) needs Linux 5.11 or newer; this is {}.{}",
                    v.0, v.1
                ),
                "build as root, or on a newer kernel".into(),
            ))
        }
        _ => {}
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems
        .lines()
        .any(|l| l.trim_end().ends_with("\toverlay"))
    {
        return Err((
            "the kernel has no overlayfs (/proc/filesystems)".into(),
            "load it: `sudo modprobe overlay`".into(),
        ));
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let single = Mapping {
        uids: full_map(uid, &[]),
        gids: full_map(gid, &[]),
    };
    let name = user_name(uid);
    let who = name.clone().unwrap_or_else(|| format!("uid {uid}"));
    let tools = [find_tool("newuidmap"), find_tool("newgidmap")];
    if tools.iter().any(Option::is_none) {
        let why = "newuidmap/newgidmap not found";
        return Ok((single, Some(single_mapping_warning(why))));
    }
    let subuids = subordinate_ranges(Path::new("/etc/subuid"), name.as_deref(), uid);
    let subgids = subordinate_ranges(Path::new("/etc/subgid"), name.as_deref(), gid);
    if subuids.is_empty() || subgids.is_empty() {
        let why = format!("no range for {who} in /etc/subuid and /etc/subgid");
        return Ok((single, Some(single_mapping_warning(&why))));
    }
    Ok((
        Mapping {
            uids: full_map(uid, &subuids),
            gids: full_map(gid, &subgids),
        },
        None,
    ))
}

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

/// The error text for an id a rootless namespace cannot represent.
pub fn unmapped_hint() -> String {
    format!("for the full mapping, {INSTALL_FIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_and_describe() {
        let m = Mapping {
            uids: parse_map("         0       1001          1\n         1     100000      65536\n"),
            gids: parse_map("0 1001 1\n"),
        };
        assert_eq!(
            m.describe(),
            "uid 0->1001, 1-65536->100000-165535; gid 0->1001"
        );
        assert!(m.maps_uid(1000) && m.maps_uid(65536) && !m.maps_uid(65537));
        assert!(m.maps_gid(0) && !m.maps_gid(1000));
        assert!(!m.is_single());
        assert!(Mapping {
            uids: m.gids.clone(),
            gids: m.gids.clone()
        }
        .is_single());
    }

    #[test]
    fn subordinate_ranges_by_name_or_id() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("subuid");
        std::fs::write(
            &f,
            "# comment\nalice:100000:65536\n1002:300000:1000\nbob:200000:65536\nalice:500000:10\nbad\n",
        )
        .expect("write");
        assert_eq!(
            subordinate_ranges(&f, Some("alice"), 1001),
            vec![(100000, 65536), (500000, 10)]
        );
        assert_eq!(subordinate_ranges(&f, None, 1002), vec![(300000, 1000)]);
        assert!(subordinate_ranges(&f, Some("carol"), 1003).is_empty());
        let map = full_map(1001, &[(100000, 65536), (500000, 10)]);
        assert_eq!(
            format_ranges(&map),
            "0->1001, 1-65536->100000-165535, 65537-65546->500000-500009"
        );
    }
}
