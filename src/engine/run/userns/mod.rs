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
//!
//! Here: the mapping types and what RUN gets ([`executor`]); `detect.rs`: what the
//! machine allows (current maps, sysctls, subordinate ids, the map tools); `reexec.rs`:
//! the re-execution, both sides.

use std::sync::OnceLock;

mod detect;
mod reexec;

use detect::plan_rootless;
pub use detect::{current_mapping, in_user_namespace, setgroups_allowed};
pub use reexec::{enter_if_child, reexec_if_rootless, ChildState, Reexec, UsernsError, CHILD_ENV};

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

/// The error text for an id a rootless namespace cannot represent.
pub fn unmapped_hint() -> String {
    format!("for the full mapping, {INSTALL_FIX}")
}
