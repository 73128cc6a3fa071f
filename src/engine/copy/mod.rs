//! COPY and ADD as a pure function from views to the layer they write: which source
//! entries land where in the destination image, with which owners and modes, and which
//! existing parent directories the layer repeats.
//!
//! The rules, as BuildKit applies them (checked against the conformance corpus by
//! `corpus_tests`):
//!
//! * Sources are patterns relative to the source root (`*`, `?`, `[..]` per component);
//!   a named symlink is followed inside the source root (never outside); a directory
//!   source copies its contents; symlinks inside a copied directory stay symlinks. A
//!   pattern that matches nothing is an error naming it.
//! * A destination ending in `/` (or `.`) is a directory; a file also goes inside an
//!   existing directory. Several sources need a directory (kiln errors where BuildKit
//!   silently lets the last one win).
//! * The destination resolves symlinks inside the image (`/var/run/x` lands in `/run/x`,
//!   a file copied onto `/etc/localtime` writes the link's target), except with `--link`,
//!   where the copy is made onto an empty tree.
//! * The layer repeats every existing parent directory with its current metadata (never
//!   the root); missing ones are created 0755 owned by the `--chown` user (`--chmod` does
//!   not apply to them); the target directory of a directory copy counts as a parent.
//! * Owners: from the context 0:0, from a stage or image as they are (setuid kept);
//!   `--chown` overrides. `--chmod` (octal or symbolic) applies to every copied entry
//!   except symlinks.
//! * ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd; detected by content)
//!   into the destination directory, keeping the archive's owners unless `--chown`.
//! * A hard link in a source view is copied as a full file.
//!
//! Downloads (`ADD <url>`, see [`url`]) and heredocs are resolved by the caller into
//! [`InlineSource`]s, so [`copy_layer`] itself never touches the network.

pub(crate) mod archive;
mod chmod;
pub mod git;
mod glob;
mod memfs;
mod tree;
pub mod url;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use crate::dockerfile::ignore::{IgnoreError, Matcher};
use crate::engine::fs::{clean_abs, resolve_in_root, FsView, LayerSpec};

pub use self::archive::Compression;
pub use self::chmod::Chmod;
pub use self::glob::{expand, glob_match, has_wildcard, SourceMatch};
pub use self::memfs::MemFs;

/// A source whose bytes the caller already holds: a heredoc (`COPY <<EOF /x`, mode 0644)
/// or a downloaded URL (mode 0600, like BuildKit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The file name used when the destination is a directory.
    pub name: String,
    pub content: Arc<Vec<u8>>,
    pub mode: u32,
    pub mtime: i64,
}

impl InlineSource {
    /// A heredoc source named after its delimiter, mode 0644.
    pub fn heredoc(name: impl Into<String>, content: impl Into<Vec<u8>>) -> InlineSource {
        InlineSource {
            name: name.into(),
            content: Arc::new(content.into()),
            mode: 0o644,
            mtime: 0,
        }
    }
}

/// One COPY or ADD, with its flags already expanded and `--chown` resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyRequest {
    /// Source patterns relative to the source root (`*`, `?`, `[..]` per component).
    pub sources: Vec<String>,
    /// Sources held in memory (heredocs, downloads), copied after `sources`.
    pub inline: Vec<InlineSource>,
    /// Absolute destination; a trailing `/` makes it a directory.
    pub dest: String,
    pub chown: Option<(u32, u32)>,
    /// Octal (`755`) or symbolic (`u+x,g-w`) mode.
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// Sources come from the build context: owners become 0:0 unless `--chown`.
    pub from_context: bool,
    /// ADD: local tar archives are extracted (false for `ADD --unpack=false`).
    pub is_add: bool,
    pub mtime_override: Option<i64>,
}

/// Why a COPY/ADD cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("failed to compute cache key: \"{pattern}\" not found (hint: check the path is inside the build context and not excluded by .dockerignore or --exclude)")]
    SourceNotFound { pattern: String },
    #[error("invalid --chmod value {value:?} (hint: use octal like 755 or symbolic like u+x,g-w)")]
    InvalidChmod { value: String },
    #[error("destination {dest:?} must be absolute (hint: join it with the WORKDIR first)")]
    RelativeDest { dest: String },
    #[error("cannot copy to non-directory: {path} (hint: a directory is copied where the image has a file or symlink)")]
    CopyToNonDir { path: String },
    #[error("cannot replace to directory {path} with file (hint: a file is copied where the image has a directory)")]
    ReplaceDirWithFile { path: String },
    #[error(
        "cannot make the working directory {path}: it exists in the image and is not a directory"
    )]
    WorkdirNotDir { path: String },
    #[error("cannot copy to {path}: {parent} is not a directory in the destination image")]
    NotADirectory { path: String, parent: String },
    #[error("invalid --exclude pattern: {0}")]
    Exclude(#[from] IgnoreError),
    #[error("failed to read archive {path}: {source} (hint: a corrupt archive; ADD copies non-archives as files)")]
    Archive {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Download(#[from] url::DownloadError),
    #[error("ADD source {url} is a URL: download it first (hint: engine::copy::url::download gives an InlineSource)")]
    UrlSource { url: String },
}

pub(crate) fn io_err(path: &str) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_string(),
        source,
    }
}

/// Whether `dest` names a directory by its syntax (`/x/`, `/x/.`, `/`).
fn dir_syntax(dest: &str) -> bool {
    dest.ends_with('/') || dest.ends_with("/.") || dest == "."
}

/// The destination of a COPY/ADD as [`CopyRequest::dest`] wants it: `dest` joined to the
/// WORKDIR when relative, cleaned, keeping the directory syntax (a trailing `/`, or `.`).
pub fn dest_path(workdir: &str, dest: &str) -> String {
    let mut d = crate::engine::fs::join(workdir, dest);
    if dir_syntax(dest) && d != "/" {
        d.push('/');
    }
    d
}

/// The name a source is copied under when the destination is a directory.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Computes the layer a COPY/ADD writes: `src` is where sources are read (build context,
/// stage, image), `dest` the image being built (ignored with `--link`, where the copy is
/// made onto an empty tree).
pub fn copy_layer(
    req: &CopyRequest,
    src: &dyn FsView,
    dest: &dyn FsView,
) -> Result<LayerSpec, CopyError> {
    if !req.dest.starts_with('/') {
        return Err(CopyError::RelativeDest {
            dest: req.dest.clone(),
        });
    }
    let chmod = match &req.chmod {
        Some(v) => {
            Some(Chmod::parse(v).ok_or_else(|| CopyError::InvalidChmod { value: v.clone() })?)
        }
        None => None,
    };
    let exclude = Matcher::new(&req.exclude, Path::new("--exclude"))?;
    let as_dir = dir_syntax(&req.dest);
    let dest_clean = clean_abs(&req.dest);
    let empty = MemFs::new();
    let lower: &dyn FsView = if req.link { &empty } else { dest };

    // Every source first: a path that does not exist is an error before anything. A
    // wildcard that matches nothing copies nothing (BuildKit's `AllowEmptyWildcard`), but
    // a match that is a dangling symlink is an error, as BuildKit follows it.
    let mut items = Vec::new();
    for pattern in &req.sources {
        if url::is_url(pattern) {
            return Err(CopyError::UrlSource {
                url: pattern.clone(),
            });
        }
        let wildcard = has_wildcard(pattern);
        if wildcard {
            if let Some(base) =
                glob::missing_wildcard_base(src, pattern).map_err(io_err(pattern))?
            {
                return Err(CopyError::SourceNotFound { pattern: base });
            }
        }
        let before = items.len();
        for m in expand(src, pattern).map_err(io_err(pattern))? {
            let Some((real, entry)) = tree::resolve_source(src, &m.path)? else {
                if wildcard {
                    return Err(CopyError::SourceNotFound { pattern: m.path });
                }
                continue;
            };
            let rel = m.path.trim_start_matches('/');
            if wildcard && !rel.is_empty() && exclude.is_excluded(rel, entry.is_dir()) {
                continue;
            }
            items.push((m, real, entry));
        }
        if items.len() == before && !wildcard {
            return Err(CopyError::SourceNotFound {
                pattern: pattern.clone(),
            });
        }
    }
    // Several sources into something that is not a directory: BuildKit copies each onto
    // the same path in turn (moby/buildkit#1853): files replace each other (the last one
    // wins), a file after a directory lands inside it.
    let mut b = tree::Builder::new(req, chmod, lower);
    for (m, real, entry) in items {
        let target = if req.parents && !m.keep.is_empty() {
            crate::engine::fs::join(&dest_clean, &m.keep)
        } else {
            dest_clean.clone()
        };
        if entry.is_dir() {
            let d = b.dir_target(&target)?;
            b.copy_tree(src, &real, &d, "", &exclude)?;
            continue;
        }
        let named = as_dir && (!req.parents || m.keep.is_empty());
        if let (true, Some(content)) = (req.is_add, &entry.content) {
            if let Some(comp) = archive::detect(content).map_err(io_err(&m.path))? {
                let d = b.dir_target(&target)?;
                let members =
                    archive::read_entries(content, comp).map_err(|source| CopyError::Archive {
                        path: m.path.clone(),
                        source,
                    })?;
                b.extract(&d, members)?;
                continue;
            }
        }
        let t = b.file_target(&target, base_name(&m.path), named)?;
        b.put_source(src, &entry, &t)?;
    }
    for inline in &req.inline {
        let t = b.file_target(&dest_clean, &inline.name, as_dir)?;
        b.put_inline(inline, &t)?;
    }
    Ok(b.finish())
}

/// WORKDIR's layer: creates `path` and its missing parents 0755 owned by `owner` (the
/// current USER), repeating existing parents; symlinks resolve inside the image. Empty
/// when the directory already exists (BuildKit still makes a layer).
pub fn mkdir_layer(
    dest: &dyn FsView,
    path: &str,
    owner: (u32, u32),
) -> Result<LayerSpec, CopyError> {
    let req = CopyRequest {
        dest: clean_abs(path),
        chown: Some(owner),
        ..CopyRequest::default()
    };
    let d = resolve_in_root(dest, &req.dest, true).map_err(io_err(path))?;
    match dest.lookup(&d).map_err(io_err(path))? {
        Some(e) if e.is_dir() => return Ok(LayerSpec::default()),
        // BuildKit's mkdir fails with "not a directory".
        Some(_) => return Err(CopyError::WorkdirNotDir { path: d }),
        None => {}
    }
    let mut b = tree::Builder::new(&req, None, dest);
    b.dir_target(&d)?;
    Ok(b.finish())
}
