//! Delivering a build result to the outputs buildx's `--output` names: an OCI archive or
//! directory, a docker archive, the local Docker engine (`--load`), a registry (`--push`,
//! `type=registry`, `type=image,push=true`), a local directory or a tar of the root
//! filesystem. Nothing is half-written: files appear under their name only when complete,
//! and a registry tag moves only after everything it points at is present.

use crate::bake::entries::ExportEntry;
use crate::engine::export::{self, Exportable};
use crate::engine::layer::{Compression, LayerOptions};
use crate::engine::rootfs;
use crate::oci::image::Descriptor;
use crate::oci::layout::Layout;
use crate::oci::reference::Reference;
use crate::oci::registry::{Client, ClientConfig};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The outputs of a build, from `--output`, `--push`, `--load` and `-t`.
pub fn resolve_outputs(
    outputs: &[String],
    push: bool,
    load: bool,
) -> Result<Vec<ExportEntry>, OutputError> {
    let mut list = Vec::new();
    for o in outputs {
        list.push(ExportEntry::parse(o).map_err(OutputError::Invalid)?);
    }
    if push {
        list.push(ExportEntry::parse("type=registry").map_err(OutputError::Invalid)?);
    }
    if load {
        list.push(ExportEntry::parse("type=docker").map_err(OutputError::Invalid)?);
    }
    for o in &list {
        match o.typ.as_str() {
            "oci" | "docker" | "image" | "registry" | "local" | "tar" | "cacheonly" => {}
            other => {
                return Err(OutputError::Invalid(format!(
                    "unknown output type {other:?} (expected oci, docker, image, registry, local, tar or cacheonly)"
                )))
            }
        }
        if o.typ == "local" && (o.dest.is_empty() || o.dest == "-") {
            return Err(OutputError::Invalid(
                "dest is required for local exporter".into(),
            ));
        }
    }
    Ok(list)
}

/// The layer compression the outputs ask for (`compression=gzip|zstd|uncompressed`,
/// `compression-level=N`, `force-compression=true`; the first output that says wins, as
/// buildx takes them from the one exporter), with the build's `SOURCE_DATE_EPOCH`.
/// Returns the options and whether cached layers must be recompressed to match.
pub fn layer_options(
    outputs: &[ExportEntry],
    source_date_epoch: Option<i64>,
) -> Result<(LayerOptions, bool), OutputError> {
    let attr = |k: &str| outputs.iter().find_map(|o| o.attrs.get(k));
    let compression = match attr("compression").map(String::as_str) {
        None | Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some("uncompressed") => Compression::Uncompressed,
        Some(other) => {
            return Err(OutputError::Invalid(format!(
                "invalid compression {other:?}: expected gzip, zstd or uncompressed"
            )))
        }
    };
    let level = attr("compression-level")
        .map(|l| {
            l.parse::<i32>().map_err(|_| {
                OutputError::Invalid(format!(
                    "invalid compression-level {l:?}: expected a number"
                ))
            })
        })
        .transpose()?;
    let force = bool_attr(outputs, "force-compression", false)?;
    Ok((
        LayerOptions {
            compression,
            level,
            source_date_epoch,
        },
        force,
    ))
}

/// `oci-mediatypes=true|false` of the outputs (true when none says).
pub fn oci_mediatypes(outputs: &[ExportEntry]) -> Result<bool, OutputError> {
    bool_attr(outputs, "oci-mediatypes", true)
}

/// A boolean output attribute (`key=true|false`, a bare `key=` is true; `default` when no
/// output says), from the first output that has it.
fn bool_attr(outputs: &[ExportEntry], key: &str, default: bool) -> Result<bool, OutputError> {
    match outputs
        .iter()
        .find_map(|o| o.attrs.get(key))
        .map(String::as_str)
    {
        None => Ok(default),
        Some("true") | Some("") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(OutputError::Invalid(format!(
            "invalid {key} {other:?}: expected true or false"
        ))),
    }
}

/// Names an output publishes: its `name=` attribute (comma separated), else the tags.
fn names_for(o: &ExportEntry, tags: &[String]) -> Vec<String> {
    match o.attrs.get("name") {
        Some(n) => n
            .split(',')
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .collect(),
        None => tags.to_vec(),
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OutputError {
    let what = what.into();
    move |source| OutputError::Io { what, source }
}

/// Delivers `x` to every output. Returns a line per output for the user.
pub fn deliver(
    x: &Exportable,
    outputs: &[ExportEntry],
    tags: &[String],
    docker_host: Option<&str>,
) -> Result<Vec<String>, OutputError> {
    let mut report = Vec::new();
    let mut layout_dir: Option<tempfile::TempDir> = None;
    for o in outputs {
        let names = names_for(o, tags);
        let tar = o
            .attrs
            .get("tar")
            .and_then(|v| crate::bake::eval::varenv::parse_bool(v))
            .unwrap_or(true);
        match o.typ.as_str() {
            "cacheonly" => {}
            "oci" if !tar => {
                std::fs::create_dir_all(&o.dest).map_err(io(format!("creating {}", o.dest)))?;
                export::write_oci_dir(x, &names, Path::new(&o.dest))?;
                report.push(format!("exported OCI layout to {}", o.dest));
            }
            "oci" => {
                if o.dest.is_empty() || o.dest == "-" {
                    let mut out = std::io::stdout().lock();
                    export::write_oci_archive_to(x, &names, &mut out)?;
                } else {
                    export::write_oci_archive(x, &names, Path::new(&o.dest))?;
                    report.push(format!("exported OCI archive to {}", o.dest));
                }
            }
            "docker" => {
                let layout = ensure_layout(x, &mut layout_dir)?;
                let root = root(x)?;
                if o.dest.is_empty() {
                    let tmp = tempfile::NamedTempFile::new()
                        .map_err(io("creating a temporary archive"))?;
                    crate::oci::archive::write_docker_archive(&layout, &root, &names, tmp.path())?;
                    let socket = match docker_host {
                        Some(h) => PathBuf::from(h.trim_start_matches("unix://")),
                        None => crate::oci::docker_engine::socket_path()?,
                    };
                    let rt = runtime()?;
                    let msg =
                        rt.block_on(crate::oci::docker_engine::load_archive(&socket, tmp.path()))?;
                    report.push(format!("loaded into the Docker engine: {}", msg.trim()));
                } else {
                    crate::oci::archive::write_docker_archive(
                        &layout,
                        &root,
                        &names,
                        Path::new(&o.dest),
                    )?;
                    report.push(format!("exported docker archive to {}", o.dest));
                }
            }
            "image" | "registry" => {
                let push = o.typ == "registry" || o.attrs.get("push").is_some_and(|v| v == "true");
                if !push {
                    report.push("image built (not pushed: push=false)".into());
                    continue;
                }
                if names.is_empty() {
                    return Err(OutputError::Invalid(
                        "a push needs an image name: give -t NAME or name=NAME".into(),
                    ));
                }
                let layout = ensure_layout(x, &mut layout_dir)?;
                let root = root(x)?;
                let client = Client::new(ClientConfig::from_env())?;
                let rt = runtime()?;
                for n in &names {
                    let r = Reference::parse(n)?.with_default_tag();
                    let d = rt.block_on(crate::oci::transfer::push_from_layout(
                        &client,
                        &layout,
                        &root,
                        &r,
                        &[],
                    ))?;
                    report.push(format!("pushed {r}@{d}"));
                }
            }
            "local" => {
                let multi = x.images.len() > 1;
                for img in &x.images {
                    let scratch =
                        tempfile::tempdir().map_err(io("creating a scratch directory"))?;
                    let fs = rootfs::view(img, scratch.path()).map_err(rootfs_err)?;
                    let mut dest = PathBuf::from(&o.dest);
                    if multi {
                        dest = dest.join(platform_dir(&img.platform));
                    }
                    rootfs::write_dir(&fs, &dest).map_err(rootfs_err)?;
                    report.push(format!("exported root filesystem to {}", dest.display()));
                }
            }
            "tar" => {
                if x.images.len() > 1 {
                    return Err(OutputError::Invalid(
                        "--output type=tar of a multi-platform build is not available yet in this version (use type=local)".into(),
                    ));
                }
                if o.dest.is_empty() || o.dest == "-" {
                    return Err(OutputError::Invalid(
                        "type=tar needs dest=FILE (writing a tar to stdout is not available yet)"
                            .into(),
                    ));
                }
                for img in &x.images {
                    let scratch =
                        tempfile::tempdir().map_err(io("creating a scratch directory"))?;
                    let fs = rootfs::view(img, scratch.path()).map_err(rootfs_err)?;
                    rootfs::write_tar(&fs, Path::new(&o.dest)).map_err(rootfs_err)?;
                    report.push(format!("exported root filesystem tar to {}", o.dest));
                }
            }
            other => {
                return Err(OutputError::Invalid(format!(
                    "unknown output type {other:?}"
                )))
            }
        }
    }
    Ok(report)
}

fn rootfs_err(e: rootfs::RootfsError) -> OutputError {
    OutputError::Invalid(e.to_string())
}

/// `linux_arm64`, `linux_arm_v7`: the per-platform directory name BuildKit uses.
fn platform_dir(p: &crate::oci::Platform) -> String {
    let mut s = format!("{}_{}", p.os, p.architecture);
    if !p.variant.is_empty() {
        s.push('_');
        s.push_str(&p.variant);
    }
    s
}

fn root(x: &Exportable) -> Result<Descriptor, OutputError> {
    x.root_descriptor()
        .ok_or(OutputError::Export(export::ExportError::Empty))
}

fn ensure_layout(
    x: &Exportable,
    dir: &mut Option<tempfile::TempDir>,
) -> Result<Layout, OutputError> {
    if dir.is_none() {
        let d = tempfile::tempdir().map_err(io("creating a temporary layout"))?;
        export::write_oci_dir_linked(x, &[], d.path())?;
        *dir = Some(d);
    }
    let path = dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default();
    Ok(Layout::open(path)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, OutputError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))
}

/// What to tell a user who asked for an external build cache (`--cache-from`,
/// `--cache-to`, bake's `cache-from`/`cache-to`), which kiln cannot export or import yet:
/// the build still runs, on the local cache in `$KILN_HOME`. `None` when none was asked for.
pub fn external_cache_notice(from: &[String], to: &[String]) -> Option<String> {
    let mut asked = Vec::new();
    if !from.is_empty() {
        asked.push(format!("--cache-from {}", from.join(" ")));
    }
    if !to.is_empty() {
        asked.push(format!("--cache-to {}", to.join(" ")));
    }
    (!asked.is_empty()).then(|| {
        format!(
            "{}: importing and exporting a build cache is not available yet in this version; \
             the build uses (and fills) only the local cache in $KILN_HOME",
            asked.join(", ")
        )
    })
}
