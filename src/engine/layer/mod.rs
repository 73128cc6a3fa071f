//! Layer blobs: writing a [`LayerSpec`](crate::engine::fs::LayerSpec) as a deterministic tar (gzip / zstd / plain) with
//! both digests computed while streaming, reading a layer's entries back, and extracting a
//! layer into an overlayfs-format directory.
//!
//! The tar headers are laid out the way BuildKit's (Go `archive/tar` via containerd's change
//! writer) are: USTAR when the entry fits, PAX otherwise (long or non-ASCII names, xattrs as
//! `SCHILY.xattr.*`, large ids/sizes/times), octal fields NUL-terminated, empty user and group
//! names, no trailing padding beyond the two zero blocks.

mod extract;
mod pgzip;
mod read;
mod tarhdr;
mod write;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use extract::{extract_layer, extract_layer_verified, extract_spec, opaque_xattr_name};
pub use read::{open_decompressed, read_layer_entries};
pub use write::{empty_layer, recompress, write_layer};

pub const MEDIA_TYPE_OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_DOCKER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const MEDIA_TYPE_DOCKER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// A layer media type in the OCI (`oci`) or the Docker family (`oci-mediatypes=false`):
/// the same compression, the other family's name. Unknown types are kept.
pub fn layer_media_type(media_type: &str, oci: bool) -> &str {
    match (Compression::from_media_type(media_type), oci) {
        (Some(c), true) => c.media_type(),
        (Some(Compression::Gzip), false) if media_type != MEDIA_TYPE_DOCKER_FOREIGN_GZIP => {
            MEDIA_TYPE_DOCKER_GZIP
        }
        (Some(Compression::Zstd), false) => MEDIA_TYPE_DOCKER_ZSTD,
        (Some(Compression::Uncompressed), false) => MEDIA_TYPE_DOCKER_TAR,
        _ => media_type,
    }
}

/// The gzip blob BuildKit (Go's `compress/gzip`) writes for an empty layer: 1024 zero bytes
/// (a tar end-of-archive) compressed. Its digest is [`EMPTY_LAYER_GZIP_DIGEST`].
pub const EMPTY_LAYER_GZIP: [u8; 32] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x62, 0x18, 0x05, 0xa3, 0x60, 0x14,
    0x8c, 0x58, 0x00, 0x08, 0x00, 0x00, 0xff, 0xff, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00,
];
/// Digest of [`EMPTY_LAYER_GZIP`] (the well-known empty layer of BuildKit images).
pub const EMPTY_LAYER_GZIP_DIGEST: &str =
    "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1";
/// diff_id of an empty layer: sha256 of 1024 zero bytes.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    Uncompressed,
}

impl Compression {
    /// The OCI media type of a layer with this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_OCI_GZIP,
            Compression::Zstd => MEDIA_TYPE_OCI_ZSTD,
            Compression::Uncompressed => MEDIA_TYPE_OCI_TAR,
        }
    }

    /// The compression of a layer media type (OCI or Docker), `None` if it is not a layer
    /// type kiln understands.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            MEDIA_TYPE_OCI_TAR
            | MEDIA_TYPE_DOCKER_TAR
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
                Some(Compression::Uncompressed)
            }
            MEDIA_TYPE_OCI_GZIP
            | MEDIA_TYPE_DOCKER_GZIP
            | MEDIA_TYPE_DOCKER_FOREIGN_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            MEDIA_TYPE_OCI_ZSTD
            | MEDIA_TYPE_DOCKER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }
}

/// How [`write_layer`] writes a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compression: Compression,
    /// Compression level; `None` is the default (gzip 6, zstd 3, like BuildKit's defaults).
    pub level: Option<i32>,
    /// Clamp entry mtimes to this (BuildKit's `rewrite-timestamp` with `SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<i64>,
}

/// A layer blob written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the blob (compressed) bytes.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the blob in bytes.
    pub size: u64,
    pub media_type: String,
    /// The blob file, `<dir>/<hex of digest>`.
    pub path: PathBuf,
}

/// What can go wrong writing, reading or extracting a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the content of {entry}: {source}")]
    Content {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    /// `actual` is what could be read, `expected + 1` when the content is longer.
    #[error("{entry}: the content is not {expected} bytes long as the entry says (read {actual})")]
    SizeMismatch {
        entry: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid path in a layer: {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("cannot encode a tar header for {entry}: {reason}")]
    Header { entry: String, reason: String },
    #[error("reading layer {path}: {source}")]
    Tar {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported layer media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("refusing to extract {entry}: {reason}")]
    Unsafe { entry: String, reason: String },
    /// Rootless: the layer has a file owned by an id the user namespace does not map.
    #[error("{entry} in a layer is owned by {what} {id}, which this rootless user namespace cannot represent (its map: {map}); {}", crate::engine::run::userns::unmapped_hint())]
    UnmappedOwner {
        entry: String,
        what: &'static str,
        id: u32,
        map: String,
    },
    #[error("extracting {entry} to {path}: {source}")]
    Extract {
        entry: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LayerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LayerError {
        LayerError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `sha256:<hex>` of a finished hasher.
pub(crate) fn digest_string(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
