//! Fixtures of the corpus replay: the base image as a [`MemFs`], case contexts staged like
//! `run.sh` does, and the `tree.txt`/`layers.txt` summaries.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::StageState;
use crate::engine::copy::archive::{read_entries, Compression};
use crate::engine::copy::{CopyRequest, InlineSource, MemFs};
use crate::engine::fs::{Content, Entry, EntryKind, LayerSpec};
use crate::engine::users::resolve_chown;

pub(super) type Res<T> = Result<T, String>;

pub(super) fn corpus_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/dockerfile");
    d.is_dir().then_some(d)
}

pub(super) fn json(path: &Path) -> Res<serde_json::Value> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&b).map_err(|e| e.to_string())
}

pub(super) fn blob(root: &Path, digest: &str) -> PathBuf {
    root.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// A base image of one architecture: its filesystem and its one layer's paths.
pub(super) fn load_base(root: &Path, arch: &str) -> Res<(MemFs, Vec<String>)> {
    let index = json(&root.join("base/index.json"))?;
    let inner = index["manifests"][0]["digest"].as_str().ok_or("no index")?;
    let inner = json(&blob(&root.join("base"), inner))?;
    let man = inner["manifests"]
        .as_array()
        .ok_or("no manifests")?
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .ok_or("no such platform")?;
    let man = json(&blob(
        &root.join("base"),
        man["digest"].as_str().ok_or("digest")?,
    ))?;
    let layer = man["layers"][0]["digest"].as_str().ok_or("no layer")?;
    let content = Content::Path(blob(&root.join("base"), layer));
    let entries = read_entries(&content, Compression::Gzip).map_err(|e| e.to_string())?;
    let mut fs = MemFs::new();
    let spec = LayerSpec { entries };
    fs.apply(&spec);
    Ok((
        fs,
        spec.entries
            .iter()
            .map(|e| e.path.clone())
            .filter(|p| p != "/")
            .collect(),
    ))
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"._+@:,=~/[]-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn tree_line(e: &Entry) -> Res<String> {
    let p = escape(&e.path);
    let head = |k: &str| format!("{p} {k} {:04o} {} {}", e.mode, e.uid, e.gid);
    Ok(match &e.kind {
        EntryKind::Dir | EntryKind::OpaqueDir => head("d"),
        EntryKind::File => {
            let mut buf = Vec::new();
            if let Some(c) = &e.content {
                c.open()
                    .and_then(|mut r| r.read_to_end(&mut buf))
                    .map_err(|x| x.to_string())?;
            }
            format!(
                "{} {} {}",
                head("f"),
                buf.len(),
                hex::encode(Sha256::digest(&buf))
            )
        }
        EntryKind::Symlink(t) => format!("{p} l 0777 {} {} - {}", e.uid, e.gid, escape(t)),
        EntryKind::CharDevice { major, minor } => format!("{} - {major},{minor}", head("c")),
        EntryKind::BlockDevice { major, minor } => format!("{} - {major},{minor}", head("b")),
        EntryKind::Fifo => head("p"),
        EntryKind::Hardlink(_) | EntryKind::Whiteout => return Ok(String::new()),
    })
}

/// Symlinks of corpus contexts that a copy without symlink support turned into plain files
/// holding the link target (git's form with `core.symlinks=false`): restored as links.
pub(super) const FLATTENED_SYMLINKS: &[(&str, &[&str])] = &[(
    "copy_context_symlinks",
    &["abs", "dangling", "dirlink", "link.txt"],
)];

/// Copies a case's context like run.sh: corpus files left out, modes normalised.
pub(super) fn stage_context(case: &Path, to: &Path) -> Res<()> {
    copy_context(case, to)?;
    let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("");
    for (_, files) in FLATTENED_SYMLINKS.iter().filter(|(c, _)| *c == name) {
        for f in files.iter() {
            let p = to.join(f);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                let target = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
                std::fs::remove_file(&p).map_err(|e| e.to_string())?;
                std::os::unix::fs::symlink(target, &p).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

pub(super) fn copy_context(case: &Path, to: &Path) -> Res<()> {
    const SKIP: [&str; 6] = [
        "cmd",
        "expected",
        "expected.exit",
        "expected.stderr",
        "meta.json",
        "forbidden",
    ];
    fn walk(from: &Path, to: &Path, top: bool) -> std::io::Result<()> {
        for d in std::fs::read_dir(from)? {
            let d = d?;
            let name = d.file_name();
            if top && SKIP.iter().any(|s| name == *s) {
                continue;
            }
            let (src, dst) = (d.path(), to.join(&name));
            let md = std::fs::symlink_metadata(&src)?;
            if md.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            } else if md.is_dir() {
                std::fs::create_dir(&dst)?;
                walk(&src, &dst, false)?;
                std::os::unix::fs::PermissionsExt::set_mode(
                    &mut std::fs::metadata(&dst)?.permissions(),
                    0o755,
                );
                std::fs::set_permissions(
                    &dst,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )?;
            } else {
                std::fs::copy(&src, &dst)?;
                let exec = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o111 != 0;
                let mode = if exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            }
        }
        Ok(())
    }
    walk(case, to, true).map_err(|e| e.to_string())
}

pub(super) fn summarise(last: &StageState) -> Res<(String, String)> {
    let mut layers = format!("{} layers\n", last.layers.len());
    for (k, l) in last.layers.iter().enumerate() {
        layers.push_str(&format!("--- layer {}\n", k + 1));
        let mut l: Vec<String> = l.iter().map(|p| escape(p)).collect();
        l.sort();
        for p in l {
            layers.push_str(&p);
            layers.push('\n');
        }
    }
    let mut tree = String::new();
    for e in last.fs.entries().filter(|e| e.path != "/") {
        let l = tree_line(e)?;
        if !l.is_empty() {
            tree.push_str(&l);
            tree.push('\n');
        }
    }
    Ok((layers, tree))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn request(
    dest_fs: &MemFs,
    workdir: &str,
    sources: &[String],
    contents: &[crate::dockerfile::instructions::SourceContent],
    dest: &str,
    chown: Option<&str>,
    chmod: Option<String>,
    link: bool,
    parents: bool,
    exclude: Vec<String>,
    from_context: bool,
    is_add: bool,
) -> Res<CopyRequest> {
    let d = crate::engine::copy::dest_path(workdir, dest);
    let chown = match chown {
        Some(c) => Some(resolve_chown(dest_fs, c).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(CopyRequest {
        sources: sources.to_vec(),
        inline: contents
            .iter()
            .map(|c| InlineSource::heredoc(c.path.clone(), c.data.clone()))
            .collect(),
        dest: d,
        chown,
        chmod,
        link,
        parents,
        exclude,
        from_context,
        is_add,
        mtime_override: None,
    })
}

pub(super) fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

pub(super) fn diff(e: &str, g: &str) -> String {
    let (e, g) = (sorted_lines(e), sorted_lines(g));
    let missing: Vec<_> = e.iter().filter(|l| !g.contains(l)).take(6).collect();
    let extra: Vec<_> = g.iter().filter(|l| !e.contains(l)).take(6).collect();
    format!("missing {missing:?} extra {extra:?}")
}
