//! Inside the sandbox, before the command starts: the overlay root, `/dev`, `/proc`,
//! `/sys`, `/etc/hosts`, `/etc/resolv.conf`, the RUN mounts, and afterwards the removal
//! of the mount stubs (paths created only to mount on, BuildKit's `MountStubsCleaner`).
//!
//! Every path inside the root is resolved with [`resolve_in`], which follows symlinks
//! but never leaves the root, so a symlink planted in a layer cannot redirect a mount or
//! a stub removal to the host.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Mode, Uid};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::paths::{file_mountpoint, mkdir_all_in, record_stubs, resolve_in};
use super::sandbox::{HelperRequest, ScratchLayout};
use super::MountSpec;

/// A failed set-up step: what was being done, and the error.
pub(crate) struct StepError {
    pub step: String,
    pub error: io::Error,
}

pub(crate) type StepResult<T> = Result<T, StepError>;

pub(crate) fn step<T>(what: impl FnOnce() -> String, r: io::Result<T>) -> StepResult<T> {
    r.map_err(|error| StepError {
        step: what(),
        error,
    })
}

/// What the set-up mounted and which stubs it will remove.
pub(crate) struct Prepared {
    pub merged: PathBuf,
    /// Mount points below `merged`, in mount order (unmounted in reverse).
    pub mounted: Vec<PathBuf>,
    /// Paths that did not exist before the run, deepest first per target.
    pub stubs: Vec<PathBuf>,
    /// SSH agent proxies: the socket the RUN sees (mode/owner as asked) and the agent's.
    pub ssh: Vec<(UnixListener, PathBuf)>,
}

/// A listening socket `dir/name` (bound from inside `dir`: socket paths are short).
fn ssh_listener(dir: &Path, name: &str, mode: u32, uid: u32, gid: u32) -> io::Result<UnixListener> {
    rustix::process::chdir(dir)?;
    let l = UnixListener::bind(name);
    rustix::process::chdir("/")?;
    let l = l?;
    let path = dir.join(name);
    rustix::fs::chown(&path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    rustix::fs::chmod(&path, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(l)
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn mount_fs(fstype: &str, target: &Path, flags: MountFlags, data: &str) -> io::Result<()> {
    let data = cstr(data)?;
    rustix::mount::mount(fstype, target, fstype, flags, Some(data.as_c_str()))?;
    Ok(())
}

fn bind(source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
    rustix::mount::mount_bind_recursive(source, target)?;
    if readonly {
        rustix::mount::mount_remount(
            target,
            MountFlags::BIND | MountFlags::RDONLY | locked_flags(target),
            "",
        )?;
    }
    Ok(())
}

/// The nosuid/nodev/noexec flags the mount at `path` has: a read-only remount keeps them
/// (in a user namespace they are locked, and a remount that would drop them fails).
fn locked_flags(path: &Path) -> MountFlags {
    use rustix::fs::StatVfsMountFlags as S;
    let Ok(st) = rustix::fs::statvfs(path) else {
        return MountFlags::empty();
    };
    let mut flags = MountFlags::empty();
    for (have, keep) in [
        (S::NOSUID, MountFlags::NOSUID),
        (S::NODEV, MountFlags::NODEV),
        (S::NOEXEC, MountFlags::NOEXEC),
    ] {
        if st.f_flag.contains(have) {
            flags |= keep;
        }
    }
    flags
}

/// Mounts the overlay root at `layout.merged`.
fn mount_overlay(req: &HelperRequest, layout: &ScratchLayout) -> StepResult<()> {
    // Short relative lowerdirs (`l/0:l/1`), resolved from the scratch dir: the options of
    // a mount must fit in one page.
    step(
        || "entering the scratch dir".into(),
        rustix::process::chdir(&req.scratch).map_err(Into::into),
    )?;
    let mut lowers = Vec::new();
    for (i, l) in req.lower.iter().enumerate() {
        let link = layout.links.join(i.to_string());
        step(
            || format!("linking layer {}", l.display()),
            std::os::unix::fs::symlink(l, &link),
        )?;
        lowers.push(format!("l/{i}"));
    }
    if lowers.is_empty() {
        lowers.push("empty".into());
    }
    let base = format!("lowerdir={},upperdir=upper,workdir=work", lowers.join(":"));
    // Without metacopy a chmod copies the whole file up (the upper dir must hold the
    // content); without redirect_dir a directory rename copies (BuildKit's differ refuses
    // redirects).
    // In a user namespace (rootless) overlayfs keeps its whiteouts and opaque markers in
    // `user.overlay.*` xattrs (Linux 5.11+); the layers were extracted that way too.
    let base = if super::userns::in_user_namespace() {
        format!("{base},userxattr")
    } else {
        base
    };
    let full = format!("{base},index=off,redirect_dir=off,metacopy=off");
    let r = mount_fs("overlay", Path::new("merged"), MountFlags::empty(), &full)
        .or_else(|_| mount_fs("overlay", Path::new("merged"), MountFlags::empty(), &base));
    step(|| "mounting overlay".into(), r)?;
    step(
        || "leaving the scratch dir".into(),
        rustix::process::chdir("/").map_err(Into::into),
    )
}

const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn setup_dev(merged: &Path, mounted: &mut Vec<PathBuf>) -> StepResult<()> {
    let dev = step(
        || "creating /dev".into(),
        mkdir_all_in(merged, "/dev", 0o755, None),
    )?;
    step(
        || "mounting /dev".into(),
        mount_fs(
            "tmpfs",
            &dev,
            MountFlags::NOSUID | MountFlags::STRICTATIME,
            "mode=755,size=65536k",
        ),
    )?;
    mounted.push(dev.clone());
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        let made = rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(*major, *minor),
        );
        let r = match made {
            Ok(()) => rustix::fs::chmod(&p, Mode::from_raw_mode(0o666)).map_err(io::Error::from),
            // No CAP_MKNOD: bind the host's device instead.
            Err(_) => std::fs::write(&p, b"")
                .and_then(|()| bind(&Path::new("/dev").join(name), &p, false))
                .map(|()| mounted.push(p.clone())),
        };
        step(|| format!("creating /dev/{name}"), r)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        step(
            || format!("linking /dev/{name}"),
            std::os::unix::fs::symlink(target, dev.join(name)),
        )?;
    }
    let sub: [(&str, &str, MountFlags, &str, u32); 3] = [
        (
            "pts",
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
            0o755,
        ),
        (
            "shm",
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV,
            "mode=1777,size=65536k",
            0o1777,
        ),
        (
            "mqueue",
            "mqueue",
            MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV,
            "",
            0o755,
        ),
    ];
    for (name, fstype, flags, data, mode) in sub {
        let p = dev.join(name);
        step(
            || format!("mounting /dev/{name}"),
            std::fs::create_dir(&p)
                .and_then(|()| {
                    rustix::fs::chmod(&p, Mode::from_raw_mode(mode)).map_err(io::Error::from)
                })
                .and_then(|()| {
                    mount_fs(fstype, &p, flags, data).or_else(|e| {
                        match data.strip_suffix(",gid=5") {
                            // Group 5 (tty) is not mapped in a single-id user namespace.
                            Some(without_gid) => mount_fs(fstype, &p, flags, without_gid),
                            None => Err(e),
                        }
                    })
                }),
        )?;
        mounted.push(p);
    }
    Ok(())
}

/// `/proc` (kernel interfaces read-only and a few files masked, like runc) and `/sys`
/// read-only; `insecure` (BuildKit's insecure mode) leaves `/proc` alone and `/sys` writable.
fn setup_proc_sys(merged: &Path, mounted: &mut Vec<PathBuf>, insecure: bool) -> StepResult<()> {
    let proc_dir = step(
        || "creating /proc".into(),
        mkdir_all_in(merged, "/proc", 0o555, None),
    )?;
    let nox = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    step(
        || "mounting /proc".into(),
        mount_fs("proc", &proc_dir, nox, ""),
    )?;
    mounted.push(proc_dir.clone());
    let sys = step(
        || "creating /sys".into(),
        mkdir_all_in(merged, "/sys", 0o555, None),
    )?;
    if insecure {
        let r = mount_fs("sysfs", &sys, nox, "").or_else(|_| bind(Path::new("/sys"), &sys, false));
        step(|| "mounting /sys".into(), r)?;
        mounted.push(sys);
        return Ok(());
    }
    // Like runc: kernel interfaces read-only, a few files hidden. Best effort.
    for ro in ["bus", "fs", "irq", "sys", "sysrq-trigger"] {
        let p = proc_dir.join(ro);
        if p.exists() && bind(&p, &p, true).is_ok() {
            mounted.push(p);
        }
    }
    for masked in [
        "kcore",
        "keys",
        "latency_stats",
        "timer_list",
        "timer_stats",
        "sched_debug",
    ] {
        let p = proc_dir.join(masked);
        if p.is_file() && bind(&merged.join("dev/null"), &p, false).is_ok() {
            mounted.push(p);
        }
    }
    let r = mount_fs("sysfs", &sys, nox | MountFlags::RDONLY, "")
        .or_else(|_| bind(Path::new("/sys"), &sys, true));
    step(|| "mounting /sys".into(), r)?;
    mounted.push(sys);
    Ok(())
}

/// Mounts the RUN's mounts, parents before children.
fn setup_user_mounts(
    req: &HelperRequest,
    layout: &ScratchLayout,
    merged: &Path,
    mounted: &mut Vec<PathBuf>,
    ssh: &mut Vec<(UnixListener, PathBuf)>,
) -> StepResult<()> {
    let mut mounts: Vec<&MountSpec> = req.spec.mounts.iter().collect();
    mounts.sort_by_key(|m| m.target().map_or(0, |t| t.split('/').count()));
    let needs_secret_fs = mounts
        .iter()
        .any(|m| matches!(m, MountSpec::Secret { .. } | MountSpec::Ssh { .. }));
    if needs_secret_fs {
        step(
            || "mounting the secrets tmpfs".into(),
            mount_fs(
                "tmpfs",
                &layout.secrets,
                MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                "mode=0700,size=16m",
            ),
        )?;
    }
    for (i, m) in mounts.into_iter().enumerate() {
        let Some(target) = m.target() else { continue };
        let what = || format!("mounting {target}");
        match m {
            MountSpec::Bind {
                source, readonly, ..
            }
            | MountSpec::Cache {
                source, readonly, ..
            } => {
                let meta = step(
                    || format!("reading the mount source {}", source.display()),
                    std::fs::metadata(source),
                )?;
                let point = if meta.is_dir() {
                    mkdir_all_in(merged, target, 0o755, None)
                } else {
                    file_mountpoint(merged, target)
                };
                let point = step(what, point)?;
                step(what, bind(source, &point, *readonly))?;
                mounted.push(point);
            }
            MountSpec::Tmpfs { size, .. } => {
                let point = step(what, mkdir_all_in(merged, target, 0o755, None))?;
                let data = size.map(|s| format!("size={s}")).unwrap_or_default();
                step(
                    what,
                    mount_fs(
                        "tmpfs",
                        &point,
                        MountFlags::NOSUID | MountFlags::NODEV,
                        &data,
                    ),
                )?;
                mounted.push(point);
            }
            MountSpec::Secret {
                source,
                mode,
                uid,
                gid,
                ..
            } => {
                let copy = layout.secrets.join(i.to_string());
                step(
                    || format!("preparing the secret for {target}"),
                    std::fs::copy(source, &copy).and_then(|_| {
                        rustix::fs::chown(
                            &copy,
                            Some(Uid::from_raw(*uid)),
                            Some(Gid::from_raw(*gid)),
                        )?;
                        rustix::fs::chmod(&copy, Mode::from_raw_mode(*mode & 0o7777))?;
                        Ok(())
                    }),
                )?;
                let point = step(what, file_mountpoint(merged, target))?;
                step(what, bind(&copy, &point, true))?;
                mounted.push(point);
            }
            MountSpec::Ssh {
                socket,
                mode,
                uid,
                gid,
                ..
            } => {
                // A socket of our own with the mode and owner asked for, proxied to the
                // agent by init (chmod on a bind of the agent's socket would change it on
                // the host).
                let name = format!("ssh-{i}");
                let listener = step(
                    || format!("creating the SSH agent socket for {target}"),
                    ssh_listener(&layout.secrets, &name, *mode, *uid, *gid),
                )?;
                let point = step(what, file_mountpoint(merged, target))?;
                step(what, bind(&layout.secrets.join(&name), &point, false))?;
                mounted.push(point);
                ssh.push((listener, socket.clone()));
            }
            MountSpec::SecretEnv { .. } => {}
        }
    }
    Ok(())
}

/// Everything before the command starts. Must run in a private mount namespace, as PID 1
/// of the new pid namespace (for `/proc`).
pub(crate) fn prepare(req: &HelperRequest, layout: &ScratchLayout) -> StepResult<Prepared> {
    step(
        || "making mounts private".into(),
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        )
        .map_err(Into::into),
    )?;
    mount_overlay(req, layout)?;
    let merged = layout.merged.clone();
    let mut stubs = Vec::new();
    let mut targets: Vec<String> = vec!["/etc/resolv.conf".into(), "/etc/hosts".into()];
    targets.extend(
        req.spec
            .mounts
            .iter()
            .filter_map(|m| m.target().map(str::to_string)),
    );
    for t in ["/dev", "/proc", "/sys"] {
        targets.push(t.to_string());
    }
    for t in &targets {
        record_stubs(&merged, t, &mut stubs);
    }
    let spec = &req.spec;
    step(
        || format!("creating the working directory {}", spec.cwd),
        mkdir_all_in(&merged, &spec.cwd, 0o755, Some((spec.uid, spec.gid))),
    )?;
    let mut mounted = Vec::new();
    setup_dev(&merged, &mut mounted)?;
    setup_proc_sys(&merged, &mut mounted, spec.insecure)?;
    for (path, src) in [
        ("/etc/hosts", &layout.hosts),
        ("/etc/resolv.conf", &layout.resolv),
    ] {
        let point = step(
            || format!("creating {path}"),
            file_mountpoint(&merged, path),
        )?;
        step(|| format!("mounting {path}"), bind(src, &point, false))?;
        mounted.push(point);
    }
    let mut ssh = Vec::new();
    setup_user_mounts(req, layout, &merged, &mut mounted, &mut ssh)?;
    Ok(Prepared {
        merged,
        mounted,
        stubs,
        ssh,
    })
}

/// After the command and every process of the sandbox are gone: unmounts what was
/// mounted in the root and removes the stubs that are still empty, keeping their parent
/// directory's times (like BuildKit).
pub(crate) fn cleanup(p: &Prepared) {
    for m in p.mounted.iter().rev() {
        let _ = rustix::mount::unmount(m, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
    }
    for stub in &p.stubs {
        let Ok(rel) = stub.strip_prefix(&p.merged) else {
            continue;
        };
        let Ok(real) = resolve_in(&p.merged, &format!("/{}", rel.display())) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&real) else {
            continue;
        };
        if meta.is_dir() {
            let empty = std::fs::read_dir(&real).is_ok_and(|mut d| d.next().is_none());
            if !empty {
                continue;
            }
        } else if meta.len() != 0 {
            continue;
        }
        let Some(parent) = real.parent() else {
            continue;
        };
        let parent_rel = parent
            .strip_prefix(&p.merged)
            .map(|r| format!("/{}", r.display()))
            .unwrap_or_default();
        match resolve_in(&p.merged, &parent_rel) {
            Ok(rp) if rp == parent => {}
            _ => continue,
        }
        let Ok(pmeta) = std::fs::metadata(parent) else {
            continue;
        };
        let removed = if meta.is_dir() {
            std::fs::remove_dir(&real)
        } else {
            std::fs::remove_file(&real)
        };
        if removed.is_ok() {
            let times = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: pmeta.atime(),
                    tv_nsec: pmeta.atime_nsec() as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: pmeta.mtime(),
                    tv_nsec: pmeta.mtime_nsec() as _,
                },
            };
            let _ = rustix::fs::utimensat(
                rustix::fs::CWD,
                parent,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
    let _ = rustix::mount::unmount(&p.merged, UnmountFlags::DETACH);
}
