//! Reading a layer blob's entries (metadata only).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::{Compression, LayerError};
use crate::engine::fs::{clean_abs, parent, Entry, EntryKind};

/// Opens a layer blob and decompresses it according to its media type (OCI or Docker;
/// gzip streams are read as multi-member).
pub fn open_decompressed(blob: &Path, media_type: &str) -> Result<Box<dyn Read>, LayerError> {
    let compression = Compression::from_media_type(media_type)
        .ok_or_else(|| LayerError::UnsupportedMediaType(media_type.to_string()))?;
    let file = File::open(blob).map_err(|e| LayerError::io(blob, e))?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    Ok(match compression {
        Compression::Uncompressed => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| LayerError::io(blob, e))?,
        ),
    })
}

/// What a tar entry means for the layer.
pub(crate) enum Parsed {
    /// A regular entry at a clean absolute path.
    Entry(Entry),
    /// `DIR/.wh..wh..opq`: the directory (clean absolute path) is opaque.
    Opaque(String),
}

/// Validates a tar member name and makes it a clean absolute path: no absolute names, no
/// `..` components.
pub(crate) fn member_path(raw: &[u8]) -> Result<String, LayerError> {
    let name = String::from_utf8_lossy(raw).into_owned();
    let unsafe_path = |reason: &str| LayerError::Unsafe {
        entry: name.clone(),
        reason: reason.to_string(),
    };
    if name.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(unsafe_path("`..` component"));
    }
    if name.contains('\0') {
        return Err(unsafe_path("NUL in name"));
    }
    Ok(clean_abs(&name))
}

fn pax_mtime(value: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(value).ok()?;
    let int = s.split('.').next()?;
    int.parse().ok()
}

/// Converts one tar member to an entry (content not read).
pub(crate) fn parse_member<R: Read>(
    member: &mut tar::Entry<'_, R>,
    blob: &Path,
) -> Result<Option<Parsed>, LayerError> {
    let tar_err = |source: io::Error| LayerError::Tar {
        path: blob.to_path_buf(),
        source,
    };
    let path = member_path(&member.path_bytes())?;
    if path == "/" {
        // `./` or `/`-only members: the root is not part of a layer's changes.
        return Ok(None);
    }
    let mut xattrs = BTreeMap::new();
    let mut mtime = None;
    if let Some(ext) = member.pax_extensions().map_err(tar_err)? {
        for rec in ext {
            let rec = rec.map_err(tar_err)?;
            let key = rec.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.insert(
                    String::from_utf8_lossy(name).into_owned(),
                    rec.value_bytes().to_vec(),
                );
            } else if key == b"mtime" {
                mtime = pax_mtime(rec.value_bytes());
            }
        }
    }
    let h = member.header();
    let mtime = match mtime {
        Some(m) => m,
        None => h.mtime().map_err(tar_err)? as i64,
    };
    let base = path.rsplit('/').next().unwrap_or("");
    if base == ".wh..wh..opq" {
        return Ok(Some(Parsed::Opaque(parent(&path).to_string())));
    }
    let mut entry = Entry {
        path: path.clone(),
        kind: EntryKind::File,
        mode: h.mode().map_err(tar_err)? & 0o7777,
        uid: u32::try_from(h.uid().map_err(tar_err)?).unwrap_or(u32::MAX),
        gid: u32::try_from(h.gid().map_err(tar_err)?).unwrap_or(u32::MAX),
        mtime,
        size: 0,
        content: None,
        xattrs,
    };
    if let Some(name) = base.strip_prefix(".wh.") {
        if name.starts_with(".wh.") {
            // Other AUFS metadata (`.wh..wh.plnk` ...): not part of the filesystem.
            return Ok(None);
        }
        entry.path = crate::engine::fs::join(parent(&path), name);
        entry.kind = EntryKind::Whiteout;
        entry.mode = 0;
        entry.uid = 0;
        entry.gid = 0;
        return Ok(Some(Parsed::Entry(entry)));
    }
    let link = || -> Result<String, LayerError> {
        let raw = member.link_name_bytes().unwrap_or_default();
        Ok(String::from_utf8_lossy(&raw).into_owned())
    };
    let dev = |v: io::Result<Option<u32>>| -> Result<u32, LayerError> {
        Ok(v.map_err(tar_err)?.unwrap_or(0))
    };
    entry.kind = match h.entry_type() {
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            entry.size = member.size();
            EntryKind::File
        }
        tar::EntryType::Symlink => EntryKind::Symlink(link()?),
        tar::EntryType::Link => {
            let target = link()?;
            EntryKind::Hardlink(member_path(target.as_bytes())?)
        }
        tar::EntryType::Char => EntryKind::CharDevice {
            major: dev(h.device_major())?,
            minor: dev(h.device_minor())?,
        },
        tar::EntryType::Block => EntryKind::BlockDevice {
            major: dev(h.device_major())?,
            minor: dev(h.device_minor())?,
        },
        tar::EntryType::Fifo => EntryKind::Fifo,
        // PAX/GNU metadata members are consumed by the tar reader; anything else
        // (sparse files, volume labels) is not supported in layers.
        other => {
            return Err(LayerError::Unsafe {
                entry: path,
                reason: format!("unsupported tar entry type {other:?}"),
            })
        }
    };
    Ok(Some(Parsed::Entry(entry)))
}

/// Reads the entries of a layer blob in tar order (metadata only: `content` is `None`).
/// Whiteouts become [`EntryKind::Whiteout`] entries; a `.wh..wh..opq` marker turns its
/// directory entry into [`EntryKind::OpaqueDir`] (or adds one if the directory itself is not
/// in the layer).
pub fn read_layer_entries(blob: &Path, media_type: &str) -> Result<Vec<Entry>, LayerError> {
    let reader = open_decompressed(blob, media_type)?;
    let mut archive = tar::Archive::new(reader);
    let tar_err = |source| LayerError::Tar {
        path: blob.to_path_buf(),
        source,
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for member in archive.entries().map_err(tar_err)? {
        let mut member = member.map_err(tar_err)?;
        match parse_member(&mut member, blob)? {
            None => {}
            Some(Parsed::Entry(e)) => {
                index.insert(e.path.clone(), out.len());
                out.push(e);
            }
            Some(Parsed::Opaque(dir)) => match index.get(&dir) {
                Some(&i) if out[i].kind == EntryKind::Dir => out[i].kind = EntryKind::OpaqueDir,
                _ => {
                    let mut e = Entry::dir(dir.clone(), 0o755, 0, 0);
                    e.kind = EntryKind::OpaqueDir;
                    index.insert(dir, out.len());
                    out.push(e);
                }
            },
        }
    }
    Ok(out)
}
