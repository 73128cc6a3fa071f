//! Build contexts given as git repositories, as BuildKit takes them: `kiln build
//! https://host/org/repo.git#ref:subdir`, `--build-context name=git@host:org/repo.git`, bake
//! `context = "…git#main"`. The ref is resolved and the commit checked out (shallow when
//! the server allows) into the store's scratch space for as long as the build runs; the
//! `.git` directory is left out unless the build argument `BUILDKIT_CONTEXT_KEEP_GIT_DIR`
//! is true. Plain `http(s)://` URLs (tarballs, Dockerfiles) are not contexts kiln reads.

use std::path::{Path, PathBuf};

use crate::engine::copy::git::{self, Checkout, GitError};

/// Why a remote context could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteContextError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("build context {0}: a context from an http(s) URL that is not a git repository (a tarball or a Dockerfile) is not available yet in this version (hint: download it and pass the directory, or use a git URL ending in .git)")]
    Url(String),
}

/// Whether `value` names a git repository rather than a local path.
pub fn is_remote(value: &str) -> bool {
    git::is_git(value)
}

/// The checkouts of one build's remote contexts; they are removed when this is dropped.
#[derive(Debug)]
pub struct RemoteContexts {
    tmp: PathBuf,
    keep_git_dir: bool,
    checkouts: Vec<Checkout>,
}

impl RemoteContexts {
    /// Checkouts go below `tmp`.
    pub fn new(tmp: impl Into<PathBuf>, keep_git_dir: bool) -> RemoteContexts {
        RemoteContexts {
            tmp: tmp.into(),
            keep_git_dir,
            checkouts: Vec::new(),
        }
    }

    /// The directory to read for a context `value`: a checkout for a git URL, `value`
    /// itself for a local path.
    pub fn local(&mut self, value: &str) -> Result<PathBuf, RemoteContextError> {
        let Some(src) = git::parse(value)? else {
            let lower = value.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                return Err(RemoteContextError::Url(git::redact(value)));
            }
            return Ok(PathBuf::from(value));
        };
        let resolved = git::resolve(&src)?;
        let checkout = git::checkout(&src, &resolved, self.keep_git_dir, &self.tmp)?;
        let root = checkout.root.clone();
        self.checkouts.push(checkout);
        Ok(root)
    }
}

/// The Dockerfile of a build whose context is `context`: `file` (relative to the working
/// directory for a local context, to the checkout for a remote one), else
/// `context/Dockerfile`.
pub fn dockerfile_path(context: &Path, remote: bool, file: Option<&str>) -> PathBuf {
    match file {
        Some(f) if remote && Path::new(f).is_relative() => context.join(f),
        Some(f) => PathBuf::from(f),
        None => context.join("Dockerfile"),
    }
}

/// `BUILDKIT_CONTEXT_KEEP_GIT_DIR` as BuildKit reads it (a boolean build argument).
pub fn keep_git_dir(build_arg: Option<&str>) -> bool {
    build_arg.is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
}
