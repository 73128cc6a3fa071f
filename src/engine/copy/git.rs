//! `ADD <git ref> <dest>`: which sources are git repositories (BuildKit's rules), how a
//! ref resolves to a commit (`git ls-remote`, before the cache is asked), and the
//! checkout of that commit into a scratch directory, all through the `git` binary, as
//! BuildKit does.
//!
//! * **Sources.** `http(s)://…` only when the URL path ends in `.git`; every `git://` and
//!   `ssh://` URL; SCP-like `user@host:path`. A fragment selects `#ref:subdir` (ref = a
//!   branch, a tag or a full commit sha; both optional) or, in BuildKit's CSV form,
//!   `##ref=…,commit=…,subdir=…`. `./x`, `../x` and `github.com/x` stay local paths.
//! * **Resolution.** No ref: the remote's `HEAD`. A branch or tag: `git ls-remote`
//!   (branches before tags, annotated tags peeled to their commit). A 40-hex ref is a
//!   commit and needs no network until it is fetched.
//! * **Checkout.** `git init`, `git fetch --depth=1 <url> <ref>` (a full fetch when the
//!   server refuses shallow fetches or fetches of an unadvertised commit), checkout of the
//!   commit; then `.git` is removed unless `--keep-git-dir=true` (ignored with a subdir,
//!   as BuildKit does; the kept `.git` has `origin` set to the URL with its password
//!   redacted, no `FETCH_HEAD`, no reflog). Submodules are not checked out.
//! * **Metadata.** Modes are normalised to what git records (0755 for executables and
//!   directories, 0644 for other files), independent of the umask; every mtime is the
//!   commit's committer time (BuildKit's `git.mtime=commit` policy, which it takes when
//!   `SOURCE_DATE_EPOCH` is set), so the same commit always gives the same layer. Owners
//!   are 0:0 (as for context files) unless `--chown`.
//! * **Credentials.** git runs with the user's environment (git config, credential
//!   helpers, `SSH_AUTH_SOCK`) but never prompts (`GIT_TERMINAL_PROMPT=0`); a password in
//!   a URL (`https://user:pass@host/…`) is replaced by `xxxxx` in every message.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git source of `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// What git is given (the URL without its fragment).
    pub remote: String,
    /// Branch, tag or commit sha (`None`: the remote's HEAD).
    pub reference: Option<String>,
    /// A directory of the repository to copy instead of its root.
    pub subdir: Option<String>,
}

/// Why a git source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("ADD of a git repository needs the git command, which was not found (hint: install git, e.g. `apt-get install git`, or put it on PATH)")]
    NotInstalled,
    #[error("failed to run git: {0}")]
    Spawn(String),
    #[error("invalid git source {source_text}: {reason}")]
    Invalid { source_text: String, reason: String },
    #[error("failed to read git repository {remote}: {message} (hint: check the URL, the network and your git credentials: ssh agent, credential helper, ~/.gitconfig)")]
    Unreachable { remote: String, message: String },
    #[error("git ref {reference:?} not found in {remote} (hint: use a branch, a tag or a full 40-hex commit sha)")]
    UnknownRef { remote: String, reference: String },
    #[error("failed to fetch {reference} from {remote}: {message}")]
    Fetch {
        remote: String,
        reference: String,
        message: String,
    },
    #[error("{reference} of {remote} moved from {expected} to {actual} during the build (hint: build again)")]
    Moved {
        remote: String,
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("invalid --checksum {value:?} for a git source (hint: use the commit sha, 40 hex digits, or a prefix of at least 7)")]
    BadChecksum { value: String },
    #[error("git checksum mismatch for {remote}: expected commit {expected}, got {actual}")]
    Checksum {
        remote: String,
        expected: String,
        actual: String,
    },
    #[error("subdirectory {subdir:?} not found in {remote} at commit {commit}")]
    SubdirNotFound {
        remote: String,
        subdir: String,
        commit: String,
    },
    #[error("git checkout of {remote} failed: {message}")]
    Checkout { remote: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GitError + '_ {
    move |source| GitError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Whether an ADD source is a git repository.
pub fn is_git(src: &str) -> bool {
    matches!(parse(src), Ok(Some(_)))
}

/// The scheme of `s` (`[a-zA-Z0-9]+://`), lowercased.
fn scheme(s: &str) -> Option<String> {
    let (scheme, _) = s.split_once("://")?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| scheme.to_ascii_lowercase())
}

/// SCP-like `user@host:path[#fragment]` (the user is required: `a:b` stays a local path).
fn scp_like(s: &str) -> Option<(&str, Option<&str>)> {
    let (user, rest) = s.split_once('@')?;
    let user_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if user.is_empty() || !user.bytes().all(user_ok) {
        return None;
    }
    let (host, _) = rest.split_once(':')?;
    let host_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    if host.is_empty() || !host.bytes().all(host_ok) {
        return None;
    }
    Some(match s.split_once('#') {
        Some((remote, frag)) => (remote, Some(frag)),
        None => (s, None),
    })
}

/// Parses an ADD source: `Ok(None)` when it is not a git source, an error when it is one
/// with a malformed fragment.
pub fn parse(src: &str) -> Result<Option<GitSource>, GitError> {
    if src.starts_with("./") || src.starts_with("../") || src.starts_with("github.com/") {
        return Ok(None);
    }
    let (remote, fragment) = if let Some(scheme) = scheme(src) {
        if !matches!(scheme.as_str(), "http" | "https" | "ssh" | "git") {
            return Ok(None);
        }
        let (remote, fragment) = match src.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (src, None),
        };
        let after = &remote[scheme.len() + 3..];
        let path = after
            .split_once('/')
            .map_or("", |(_, p)| p)
            .split('?')
            .next()
            .unwrap_or("");
        if matches!(scheme.as_str(), "http" | "https") && !path.ends_with(".git") {
            return Ok(None);
        }
        if after.is_empty() || after.starts_with('/') {
            return Ok(None);
        }
        (remote, fragment)
    } else if let Some(parts) = scp_like(src) {
        parts
    } else {
        return Ok(None);
    };
    let mut out = GitSource {
        remote: remote.to_string(),
        reference: None,
        subdir: None,
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match fragment {
        None | Some("") => {}
        Some(f) if f.starts_with('#') => {
            let invalid = |reason: String| GitError::Invalid {
                source_text: redact(src),
                reason,
            };
            let mut commit = None;
            for field in f[1..].split(',').filter(|x| !x.is_empty()) {
                let (k, v) = field
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("{field:?} must be a key=value pair")))?;
                match k.to_ascii_lowercase().as_str() {
                    "ref" => out.reference = non_empty(v),
                    "commit" => commit = non_empty(v),
                    "subdir" => out.subdir = non_empty(v),
                    _ => {
                        return Err(invalid(format!(
                            "unexpected key {k:?} (supported keys: ref, commit, subdir)"
                        )))
                    }
                }
            }
            if out.reference.is_none() {
                out.reference = commit;
            }
        }
        Some(f) => {
            let (r, sub) = f.split_once(':').unwrap_or((f, ""));
            out.reference = non_empty(r);
            out.subdir = non_empty(sub);
        }
    }
    Ok(Some(out))
}

/// The URL with the password of its user info replaced by `xxxxx`.
pub fn redact(url: &str) -> String {
    redact_text(url)
}

/// Replaces the password of every `scheme://user:password@host` in `text` by `xxxxx`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '#' || c == '?' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                out.push_str(user);
                out.push_str(":xxxxx@");
                out.push_str(host);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A ref resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub commit: String,
    /// What `git fetch` asks for: a full ref name (`refs/heads/main`), `HEAD` or the sha.
    pub fetch: String,
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs git; stdout on success, the (redacted) stderr as the error.
fn git<I, S>(dir: Option<&Path>, args: I) -> Result<Result<String, String>, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "protocol.file.allow=user",
        "-c",
        "advice.detachedHead=false",
    ])
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("LC_ALL", "C")
    .stdin(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => GitError::NotInstalled,
        _ => GitError::Spawn(e.to_string()),
    })?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let msg = if msg.is_empty() {
            format!("git exited with {}", out.status)
        } else {
            msg
        };
        Ok(Err(redact_text(&msg)))
    }
}

/// Parses `git ls-remote` output into (sha, ref name) pairs.
fn ls_remote_lines(out: &str) -> Vec<(&str, &str)> {
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (sha.trim(), name.trim()))
        .collect()
}

/// Picks the commit a ref names from `git ls-remote` lines: an exact full name, then a
/// branch, then a tag (peeled when annotated), then any ref ending in `/<reference>`.
fn pick(lines: &[(&str, &str)], reference: &str) -> Option<Resolved> {
    let peeled = |name: &str| {
        let want = format!("{name}^{{}}");
        lines
            .iter()
            .find(|(_, n)| *n == want)
            .map(|(s, _)| s.to_string())
    };
    let candidates = [
        reference.to_string(),
        format!("refs/heads/{reference}"),
        format!("refs/tags/{reference}"),
    ];
    let found = candidates
        .iter()
        .find_map(|c| lines.iter().find(|(_, n)| n == c))
        .or_else(|| {
            let suffix = format!("/{reference}");
            lines.iter().find(|(_, n)| n.ends_with(&suffix))
        })?;
    let (sha, name) = *found;
    Some(Resolved {
        commit: peeled(name).unwrap_or_else(|| sha.to_string()),
        fetch: name.to_string(),
    })
}

/// Resolves the source's ref to a commit (`git ls-remote`; no network for a full sha).
pub fn resolve(src: &GitSource) -> Result<Resolved, GitError> {
    if let Some(r) = src.reference.as_deref().filter(|r| is_full_sha(r)) {
        let sha = r.to_ascii_lowercase();
        return Ok(Resolved {
            commit: sha.clone(),
            fetch: sha,
        });
    }
    let remote = redact(&src.remote);
    let pattern = src.reference.as_deref().unwrap_or("HEAD");
    // `<ref>^{}` too: an annotated tag's peeled commit is only listed when asked for.
    let peeled = format!("{pattern}^{{}}");
    let out = git(
        None,
        [
            "ls-remote",
            "--",
            src.remote.as_str(),
            pattern,
            peeled.as_str(),
        ],
    )?
    .map_err(|message| GitError::Unreachable {
        remote: remote.clone(),
        message,
    })?;
    let lines = ls_remote_lines(&out);
    let unknown = || GitError::UnknownRef {
        remote: remote.clone(),
        reference: pattern.to_string(),
    };
    match &src.reference {
        None => lines
            .iter()
            .find(|(_, n)| *n == "HEAD")
            .map(|(sha, _)| Resolved {
                commit: sha.to_string(),
                fetch: "HEAD".to_string(),
            })
            .ok_or_else(unknown),
        Some(r) => pick(&lines, r).ok_or_else(unknown),
    }
}

/// Checks a `--checksum` value against the resolved commit.
pub fn verify_checksum(src: &GitSource, commit: &str, checksum: &str) -> Result<(), GitError> {
    let want = checksum.trim().to_ascii_lowercase();
    if want.len() < 7 || want.len() > 40 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GitError::BadChecksum {
            value: checksum.to_string(),
        });
    }
    if !commit.starts_with(&want) {
        return Err(GitError::Checksum {
            remote: redact(&src.remote),
            expected: checksum.to_string(),
            actual: commit.to_string(),
        });
    }
    Ok(())
}

/// A checked-out commit in a scratch directory (removed when dropped).
#[derive(Debug)]
pub struct Checkout {
    _dir: tempfile::TempDir,
    /// The directory to copy (the checkout, or its subdir).
    pub root: PathBuf,
    pub commit: String,
    /// The commit's committer time: every copied entry's mtime.
    pub mtime: i64,
}

/// Fetches and checks out `resolved` under `tmp`.
pub fn checkout(
    src: &GitSource,
    resolved: &Resolved,
    keep_git_dir: bool,
    tmp: &Path,
) -> Result<Checkout, GitError> {
    let remote = redact(&src.remote);
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let dir = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(tmp)
        .map_err(io(tmp))?;
    let tree = dir.path().join("tree");
    let failed = |message: String| GitError::Checkout {
        remote: remote.clone(),
        message,
    };
    git(
        None,
        [
            OsStr::new("-c"),
            OsStr::new("init.defaultBranch=master"),
            OsStr::new("init"),
            OsStr::new("-q"),
            tree.as_os_str(),
        ],
    )?
    .map_err(failed)?;
    let in_tree = Some(tree.as_path());
    let by_sha = resolved.fetch == resolved.commit;
    // A branch or tag is fetched under its own name (so a kept .git has it too).
    let refspec = if resolved.fetch.starts_with("refs/") {
        format!("+{0}:{0}", resolved.fetch)
    } else {
        resolved.fetch.clone()
    };
    let shallow = git(
        in_tree,
        [
            "fetch",
            "-q",
            "-u",
            "--no-tags",
            "--depth=1",
            "--",
            src.remote.as_str(),
            refspec.as_str(),
        ],
    )?;
    if let Err(first) = shallow {
        // Dumb HTTP has no shallow fetches; many servers refuse unadvertised commits.
        let full = if by_sha {
            git(
                in_tree,
                [
                    "fetch",
                    "-q",
                    "-u",
                    "--tags",
                    "--",
                    src.remote.as_str(),
                    "+refs/heads/*:refs/remotes/origin/*",
                ],
            )?
        } else {
            git(
                in_tree,
                [
                    "fetch",
                    "-q",
                    "-u",
                    "--no-tags",
                    "--",
                    src.remote.as_str(),
                    refspec.as_str(),
                ],
            )?
        };
        full.map_err(|message| GitError::Fetch {
            remote: remote.clone(),
            reference: resolved.fetch.clone(),
            message: format!("{message} (shallow fetch: {first})"),
        })?;
    }
    let rev = if by_sha {
        format!("{}^{{commit}}", resolved.commit)
    } else {
        "FETCH_HEAD^{commit}".to_string()
    };
    let got = git(in_tree, ["rev-parse", "--verify", "-q", rev.as_str()])?
        .map(|s| s.trim().to_string())
        .map_err(|_| GitError::UnknownRef {
            remote: remote.clone(),
            reference: resolved.fetch.clone(),
        })?;
    if got != resolved.commit {
        return Err(GitError::Moved {
            remote,
            reference: resolved.fetch.clone(),
            expected: resolved.commit.clone(),
            actual: got,
        });
    }
    git(in_tree, ["checkout", "-q", "--detach", got.as_str()])?.map_err(failed)?;
    let mtime = git(in_tree, ["log", "-1", "--format=%ct", got.as_str()])?
        .map_err(failed)?
        .trim()
        .parse::<i64>()
        .map_err(|e| failed(format!("reading the commit time: {e}")))?;
    let subdir = src
        .subdir
        .as_deref()
        .map(crate::engine::fs::clean_abs)
        .filter(|s| s != "/");
    let dot_git = tree.join(".git");
    if keep_git_dir && subdir.is_none() {
        git(
            in_tree,
            ["remote", "add", "origin", redact(&src.remote).as_str()],
        )?
        .map_err(failed)?;
        git(in_tree, ["reflog", "expire", "--all", "--expire=now"])?.map_err(failed)?;
        match std::fs::remove_file(dot_git.join("FETCH_HEAD")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&dot_git)(e)),
            _ => {}
        }
    } else {
        std::fs::remove_dir_all(&dot_git).map_err(io(&dot_git))?;
    }
    normalize_modes(&tree)?;
    let root = match &subdir {
        None => tree.clone(),
        Some(s) => {
            let not_found = || GitError::SubdirNotFound {
                remote: remote.clone(),
                subdir: s.trim_start_matches('/').to_string(),
                commit: got.clone(),
            };
            let p = tree.join(s.trim_start_matches('/'));
            // The subdir must be a directory inside the checkout (symlinks resolved).
            let real = p.canonicalize().map_err(|_| not_found())?;
            let base = tree.canonicalize().map_err(io(&tree))?;
            if !real.starts_with(&base) || !real.is_dir() {
                return Err(not_found());
            }
            real
        }
    };
    Ok(Checkout {
        _dir: dir,
        root,
        commit: got,
        mtime,
    })
}

/// Gives every directory 0755 and every file 0755 (executable) or 0644: what git
/// records, whatever the umask was.
fn normalize_modes(dir: &Path) -> Result<(), GitError> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let md = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            continue;
        }
        let mode = if ft.is_dir() || md.permissions().mode() & 0o100 != 0 {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(&path))?;
        if ft.is_dir() {
            normalize_modes(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(remote: &str, reference: Option<&str>, subdir: Option<&str>) -> Option<GitSource> {
        Some(GitSource {
            remote: remote.into(),
            reference: reference.map(Into::into),
            subdir: subdir.map(Into::into),
        })
    }

    #[test]
    fn detection_follows_buildkit() {
        let p = |s: &str| parse(s).expect("parses");
        assert_eq!(
            p("https://github.com/moby/buildkit.git#v0.10.1"),
            src(
                "https://github.com/moby/buildkit.git",
                Some("v0.10.1"),
                None
            )
        );
        assert_eq!(
            p("https://h/r.git#main:docs/x"),
            src("https://h/r.git", Some("main"), Some("docs/x"))
        );
        assert_eq!(p("git://h/r#:sub"), src("git://h/r", None, Some("sub")));
        assert_eq!(p("ssh://git@h/r"), src("ssh://git@h/r", None, None));
        assert_eq!(
            p("git@github.com:a/b.git#dev"),
            src("git@github.com:a/b.git", Some("dev"), None)
        );
        assert_eq!(
            p("https://h/r.git##ref=v1,subdir=d"),
            src("https://h/r.git", Some("v1"), Some("d"))
        );
        assert_eq!(
            p("https://h/r.git##commit=abc"),
            src("https://h/r.git", Some("abc"), None)
        );
        assert!(parse("https://h/r.git##bogus=1").is_err());
        // HTTP(S) needs the .git suffix; other sources stay local or HTTP.
        for not_git in [
            "https://example.com/file.tar.gz",
            "https://example.com/repo#main",
            "http://h/r.git.tar",
            "ftp://h/r.git",
            "github.com/a/b",
            "./x@y:z",
            "a:b",
            "file.txt",
            "dir/*.git",
        ] {
            assert_eq!(p(not_git), None, "{not_git}");
        }
        assert!(is_git("http://h/r.git?x=1"));
        assert!(!is_git("HTTPS://h/r"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("https://u:secret@h/r.git#main"),
            "https://u:xxxxx@h/r.git#main"
        );
        assert_eq!(redact("https://token@h/r.git"), "https://token@h/r.git");
        assert_eq!(
            redact_text("fatal: unable to access 'https://u:p@h:8/r.git/': refused"),
            "fatal: unable to access 'https://u:xxxxx@h:8/r.git/': refused"
        );
        assert_eq!(redact("git@h:a/b.git"), "git@h:a/b.git");
    }

    #[test]
    fn picking_refs() {
        let lines = [
            ("1111111111111111111111111111111111111111", "HEAD"),
            (
                "2222222222222222222222222222222222222222",
                "refs/heads/main",
            ),
            ("3333333333333333333333333333333333333333", "refs/tags/v1"),
            (
                "4444444444444444444444444444444444444444",
                "refs/tags/v1^{}",
            ),
            ("5555555555555555555555555555555555555555", "refs/tags/main"),
        ];
        let r = pick(&lines, "v1").expect("tag");
        assert_eq!(r.commit, "4".repeat(40));
        assert_eq!(r.fetch, "refs/tags/v1");
        assert_eq!(pick(&lines, "main").expect("branch").commit, "2".repeat(40));
        assert_eq!(
            pick(&lines, "refs/tags/main").expect("full").commit,
            "5".repeat(40)
        );
        assert_eq!(pick(&lines, "nope"), None);
    }

    #[test]
    fn checksums() {
        let s = GitSource {
            remote: "git://h/r".into(),
            reference: None,
            subdir: None,
        };
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert!(verify_checksum(&s, c, c).is_ok());
        assert!(verify_checksum(&s, c, "0123456").is_ok());
        assert!(matches!(
            verify_checksum(&s, c, "0123457"),
            Err(GitError::Checksum { .. })
        ));
        assert!(matches!(
            verify_checksum(&s, c, "sha256:00"),
            Err(GitError::BadChecksum { .. })
        ));
    }
}
