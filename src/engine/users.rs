//! User and group lookup in a stage's root filesystem: `--chown` and `USER` strings to
//! numeric ids through `/etc/passwd` and `/etc/group` (read through an [`FsView`], symlinks
//! followed inside the root), supplementary groups and home directories for RUN.

use std::io::Read;

use crate::engine::fs::{resolve_in_root, EntryKind, FsView};

/// A user or group that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unknown user {name:?}: not found in /etc/passwd of the stage (hint: use a numeric uid, or create the user in an earlier step)")]
    UnknownUser { name: String },
    #[error("unknown group {name:?}: not found in /etc/group of the stage (hint: use a numeric gid, or create the group in an earlier step)")]
    UnknownGroup { name: String },
    #[error(
        "invalid user specification {spec:?} (hint: use `user`, `uid`, `user:group` or `uid:gid`)"
    )]
    Invalid { spec: String },
    #[error("failed to read {path} of the stage: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A user resolved for RUN: ids, supplementary groups and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups from `/etc/group` (empty when the spec names a group).
    pub additional_gids: Vec<u32>,
    /// `HOME` from `/etc/passwd`, `/` for unknown uids.
    pub home: String,
}

/// Reads a file of the view (following symlinks inside the root); `None` when missing.
fn read_text(fs: &dyn FsView, path: &str) -> Result<Option<String>, UserError> {
    let io = |source| UserError::Io {
        path: path.to_string(),
        source,
    };
    let real = resolve_in_root(fs, path, true).map_err(io)?;
    let Some(entry) = fs.lookup(&real).map_err(io)? else {
        return Ok(None);
    };
    if entry.kind != EntryKind::File {
        return Ok(None);
    }
    let Some(content) = entry.content else {
        return Ok(Some(String::new()));
    };
    let mut buf = Vec::new();
    content
        .open()
        .and_then(|mut r| r.read_to_end(&mut buf))
        .map_err(io)?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn fields(line: &str) -> Option<Vec<&str>> {
    let line = line.trim_end_matches('\r');
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(line.split(':').collect())
}

/// Parses `/etc/passwd` text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(fields)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Parses `/etc/group` text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(fields)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The users and groups of a root filesystem.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    pub users: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
}

impl UserDb {
    /// Reads `/etc/passwd` and `/etc/group` of `fs` (missing files are empty).
    pub fn load(fs: &dyn FsView) -> Result<UserDb, UserError> {
        Ok(UserDb {
            users: parse_passwd(&read_text(fs, "/etc/passwd")?.unwrap_or_default()),
            groups: parse_group(&read_text(fs, "/etc/group")?.unwrap_or_default()),
        })
    }

    fn user(&self, spec: &str) -> Result<Option<&PasswdEntry>, UserError> {
        if let Ok(uid) = spec.parse::<u32>() {
            return Ok(self.users.iter().find(|u| u.uid == uid));
        }
        self.users
            .iter()
            .find(|u| u.name == spec)
            .map(Some)
            .ok_or_else(|| UserError::UnknownUser {
                name: spec.to_string(),
            })
    }

    fn group(&self, spec: &str) -> Result<u32, UserError> {
        if let Ok(gid) = spec.parse::<u32>() {
            return Ok(gid);
        }
        self.groups
            .iter()
            .find(|g| g.name == spec)
            .map(|g| g.gid)
            .ok_or_else(|| UserError::UnknownGroup {
                name: spec.to_string(),
            })
    }

    /// `--chown` semantics: `name` takes the user's primary group, `ID` alone uses ID for
    /// the group, `user:group` and `:group` (user 0) name both.
    pub fn chown(&self, spec: &str) -> Result<(u32, u32), UserError> {
        let invalid = || UserError::Invalid {
            spec: spec.to_string(),
        };
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if group == Some("") || (user.is_empty() && group.is_none()) {
            return Err(invalid());
        }
        // BuildKit's `llb.WithUser` takes `root` as id 0 without a lookup, like a number.
        let by_id = |s: &str| if s == "root" { Ok(0) } else { s.parse::<u32>() };
        let (uid, primary) = if user.is_empty() {
            (0, 0)
        } else if let Ok(uid) = by_id(user) {
            (uid, uid)
        } else {
            let u = self.user(user)?.ok_or_else(invalid)?;
            (u.uid, u.gid)
        };
        let gid = match group {
            Some(g) => match by_id(g) {
                Ok(gid) => gid,
                Err(_) => self.group(g)?,
            },
            None => primary,
        };
        Ok((uid, gid))
    }

    /// `USER` semantics for RUN: a numeric uid without an entry keeps gid 0 and HOME `/`;
    /// supplementary groups come from `/etc/group` unless the spec names a group.
    pub fn run_user(&self, spec: &str) -> Result<ResolvedUser, UserError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let user = if user.is_empty() { "0" } else { user };
        let entry = self.user(user)?;
        let uid = match (entry, user.parse::<u32>()) {
            (Some(e), _) => e.uid,
            (None, Ok(uid)) => uid,
            (None, Err(_)) => {
                return Err(UserError::UnknownUser {
                    name: user.to_string(),
                })
            }
        };
        let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());
        let home = if home.is_empty() { "/".into() } else { home };
        match group.filter(|g| !g.is_empty()) {
            Some(g) => Ok(ResolvedUser {
                uid,
                gid: self.group(g)?,
                additional_gids: Vec::new(),
                home,
            }),
            None => {
                let gid = entry.map_or(0, |e| e.gid);
                let additional_gids = entry
                    .map(|e| self.supplementary_groups(&e.name, gid))
                    .unwrap_or_default();
                Ok(ResolvedUser {
                    uid,
                    gid,
                    additional_gids,
                    home,
                })
            }
        }
    }

    /// The groups listing `name` as a member, without the primary group, in file order.
    pub fn supplementary_groups(&self, name: &str, primary: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for g in &self.groups {
            if g.gid != primary && g.members.iter().any(|m| m == name) && !out.contains(&g.gid) {
                out.push(g.gid);
            }
        }
        out
    }

    /// The home directory of `uid` (`/` when unknown).
    pub fn home(&self, uid: u32) -> String {
        self.users
            .iter()
            .find(|u| u.uid == uid && !u.home.is_empty())
            .map_or_else(|| "/".to_string(), |u| u.home.clone())
    }
}

/// Resolves a `--chown` value through the stage's `/etc/passwd` and `/etc/group`.
pub fn resolve_chown(fs: &dyn FsView, spec: &str) -> Result<(u32, u32), UserError> {
    let spec = spec.trim();
    // Purely numeric specs (and `root`) need no lookup (and work on stages without /etc).
    let numeric = spec
        .split(':')
        .all(|p| p == "root" || !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        return UserDb::default().chown(spec);
    }
    UserDb::load(fs)?.chown(spec)
}

/// Resolves a `USER` value for RUN through the stage's `/etc/passwd` and `/etc/group`.
pub fn resolve_run_user(fs: &dyn FsView, spec: &str) -> Result<ResolvedUser, UserError> {
    UserDb::load(fs)?.run_user(spec.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:app\napp:x:1000:\nnogroup:x:65534:\n";

    fn db() -> UserDb {
        UserDb {
            users: parse_passwd(PASSWD),
            groups: parse_group(GROUP),
        }
    }

    #[test]
    fn chown_forms() {
        let db = db();
        assert_eq!(db.chown("app").unwrap(), (1000, 1000));
        assert_eq!(db.chown("app:users").unwrap(), (1000, 100));
        assert_eq!(db.chown("1000:users").unwrap(), (1000, 100));
        assert_eq!(db.chown("42").unwrap(), (42, 42));
        assert_eq!(db.chown("42:7").unwrap(), (42, 7));
        assert_eq!(db.chown(":users").unwrap(), (0, 100));
        assert_eq!(db.chown("nobody:nogroup").unwrap(), (65534, 65534));
        assert_eq!(db.chown("root").unwrap(), (0, 0));
        assert_eq!(UserDb::default().chown("root:root").unwrap(), (0, 0));
        assert!(matches!(
            db.chown("ghost"),
            Err(UserError::UnknownUser { .. })
        ));
        assert!(matches!(
            db.chown("app:ghosts"),
            Err(UserError::UnknownGroup { .. })
        ));
        assert!(matches!(db.chown("app:"), Err(UserError::Invalid { .. })));
    }

    #[test]
    fn reads_the_stage_files_through_symlinks() {
        use crate::engine::copy::MemFs;
        use crate::engine::fs::{Content, Entry, EntryKind};
        use std::sync::Arc;
        let mut fs = MemFs::new();
        fs.insert(Entry::dir("/etc", 0o755, 0, 0));
        fs.insert(Entry::dir("/data", 0o755, 0, 0));
        for (path, text) in [("/data/passwd", PASSWD), ("/data/group", GROUP)] {
            let mut e = Entry::dir(path, 0o644, 0, 0);
            e.kind = EntryKind::File;
            e.size = text.len() as u64;
            e.content = Some(Content::Bytes(Arc::new(text.as_bytes().to_vec())));
            fs.insert(e);
        }
        let mut l = Entry::dir("/etc/passwd", 0o777, 0, 0);
        l.kind = EntryKind::Symlink("../../data/passwd".into());
        fs.insert(l);
        let mut l = Entry::dir("/etc/group", 0o777, 0, 0);
        l.kind = EntryKind::Symlink("/data/group".into());
        fs.insert(l);
        assert_eq!(resolve_chown(&fs, "app:users").unwrap(), (1000, 100));
        assert_eq!(resolve_chown(&fs, " 5:6 ").unwrap(), (5, 6));
        assert!(matches!(
            resolve_chown(&fs, "ghost"),
            Err(UserError::UnknownUser { .. })
        ));
        let u = resolve_run_user(&fs, "nobody").unwrap();
        assert_eq!((u.uid, u.home.as_str()), (65534, "/nonexistent"));
        // Without /etc/passwd only numeric ids work.
        let empty = MemFs::new();
        assert_eq!(resolve_chown(&empty, "42").unwrap(), (42, 42));
        assert!(resolve_chown(&empty, "app").is_err());
    }

    #[test]
    fn run_user_groups_and_home() {
        let db = db();
        let u = db.run_user("app").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![100]);
        let u = db.run_user("app:nogroup").unwrap();
        assert_eq!((u.gid, u.additional_gids.len()), (65534, 0));
        let u = db.run_user("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(db.home(0), "/root");
        assert!(db.run_user("ghost").is_err());
    }
}
