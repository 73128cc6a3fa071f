//! What the machine allows a user namespace: the maps of the one this process is in, and
//! for a non-root user the mapping kiln can set up (subordinate ids of `/etc/subuid` and
//! `/etc/subgid` with `newuidmap`/`newgidmap`, or the single-id one) after checking the
//! sysctls that forbid unprivileged user namespaces, the kernel and overlayfs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{single_mapping_warning, IdRange, Mapping};

pub(super) fn parse_map(text: &str) -> Vec<IdRange> {
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
pub(super) fn find_tool(name: &str) -> Option<PathBuf> {
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
pub(super) fn plan_rootless() -> Result<(Mapping, Option<String>), (String, String)> {
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

#[cfg(test)]
mod tests {
    use super::super::format_ranges;
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
