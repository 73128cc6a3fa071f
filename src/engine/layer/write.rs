//! Writing a [`LayerSpec`] as a layer blob, hashing while streaming.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::tarhdr::{self, TarHeader};
use super::{digest_string, Compression, LayerBlob, LayerError, LayerOptions, EMPTY_LAYER_GZIP};
use crate::engine::fs::{Entry, EntryKind, LayerSpec};

/// A writer that hashes and counts what goes through it.
pub(crate) struct HashWriter<W> {
    pub inner: W,
    pub hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compressor between the tar stream and the blob file.
///
/// Compressors do not promise the same output for the same bytes fed in different
/// pieces, so the encoder always feeds them [`CHUNK`]-byte pieces (the last one shorter):
/// a layer written entry by entry and the same tar recompressed from a blob give the same
/// blob digest.
struct Encoder<W: Write> {
    kind: EncoderKind<W>,
    pending: Vec<u8>,
}

/// The size of the pieces fed to the compressor.
const CHUNK: usize = 128 * 1024;

enum EncoderKind<W: Write> {
    Gzip(super::pgzip::ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    fn new(w: W, opts: &LayerOptions) -> io::Result<Self> {
        let kind = match opts.compression {
            Compression::Gzip => {
                let level = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                EncoderKind::Gzip(super::pgzip::ParallelGzip::new(w, level))
            }
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, opts.level.unwrap_or(3))?;
                e.include_checksum(true)?;
                EncoderKind::Zstd(e)
            }
            Compression::Uncompressed => EncoderKind::Plain(w),
        };
        Ok(Encoder {
            kind,
            pending: Vec::with_capacity(CHUNK),
        })
    }

    fn feed(&mut self) -> io::Result<()> {
        match &mut self.kind {
            EncoderKind::Gzip(e) => e.write_all(&self.pending)?,
            EncoderKind::Zstd(e) => e.write_all(&self.pending)?,
            EncoderKind::Plain(w) => w.write_all(&self.pending)?,
        }
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.feed()?;
        match self.kind {
            EncoderKind::Gzip(e) => e.finish(),
            EncoderKind::Zstd(e) => e.finish(),
            EncoderKind::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            self.feed()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Flushing would change the compressed bytes; the data is written by `finish`.
        Ok(())
    }
}

/// A file in the destination directory that is removed unless it was renamed into place.
pub(crate) struct TempFile {
    pub path: PathBuf,
    keep: bool,
}

impl TempFile {
    pub fn create(dir: &Path, tag: &str) -> Result<(TempFile, File), LayerError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".tmp-{tag}-{}-{nanos}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LayerError::io(&path, e))?;
        Ok((TempFile { path, keep: false }, file))
    }

    /// Renames the file to `dest` (replacing what is there).
    pub fn persist(mut self, dest: &Path) -> Result<(), LayerError> {
        std::fs::rename(&self.path, dest).map_err(|e| LayerError::io(dest, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes the layer `spec` as a blob in `dir`, named by the hex of its digest.
///
/// Entries are written in the spec's order; the root `/` is skipped. An empty spec
/// compressed with gzip gives exactly BuildKit's empty layer
/// ([`super::EMPTY_LAYER_GZIP_DIGEST`]).
pub fn write_layer(
    spec: &LayerSpec,
    opts: &LayerOptions,
    dir: &Path,
) -> Result<LayerBlob, LayerError> {
    let (tmp, file) = TempFile::create(dir, "layer")?;
    let media_type = opts.compression.media_type().to_string();
    let (digest, diff_id, size) =
        if spec.entries.iter().all(|e| e.path == "/") && opts.compression == Compression::Gzip {
            let mut w = HashWriter::new(BufWriter::new(file));
            w.write_all(&EMPTY_LAYER_GZIP)
                .map_err(|e| LayerError::io(&tmp.path, e))?;
            let mut diff = Sha256::new();
            diff.update([0u8; 2 * tarhdr::BLOCK]);
            let size = w.count;
            let hasher = w.hasher;
            finish_file(w.inner, &tmp.path)?;
            (digest_string(hasher), digest_string(diff), size)
        } else {
            let out = HashWriter::new(BufWriter::with_capacity(256 * 1024, file));
            let enc = Encoder::new(out, opts).map_err(|e| LayerError::io(&tmp.path, e))?;
            let mut tar = HashWriter::new(enc);
            for entry in &spec.entries {
                write_entry(&mut tar, entry, opts.source_date_epoch, &tmp.path)?;
            }
            tar.write_all(&[0u8; 2 * tarhdr::BLOCK])
                .map_err(|e| LayerError::io(&tmp.path, e))?;
            let diff = tar.hasher;
            let out = tar
                .inner
                .finish()
                .map_err(|e| LayerError::io(&tmp.path, e))?;
            let size = out.count;
            let hasher = out.hasher;
            finish_file(out.inner, &tmp.path)?;
            (digest_string(hasher), digest_string(diff), size)
        };
    let hex = digest.trim_start_matches("sha256:");
    let path = dir.join(hex);
    tmp.persist(&path)?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type,
        path,
    })
}

/// Writes the layer blob `src` (of `media_type`) again with the compression of `opts`, as
/// a blob in `dir` named by the hex of its digest. The tar stream (and so the diff_id) is
/// unchanged; `opts.source_date_epoch` is not applied (the tar already has its times).
/// An empty layer compressed with gzip gives BuildKit's empty layer, as [`write_layer`].
pub fn recompress(
    src: &Path,
    media_type: &str,
    opts: &LayerOptions,
    dir: &Path,
) -> Result<LayerBlob, LayerError> {
    let mut reader = super::read::open_decompressed(src, media_type)?;
    let (tmp, file) = TempFile::create(dir, "layer")?;
    let out = HashWriter::new(BufWriter::with_capacity(256 * 1024, file));
    let enc = Encoder::new(out, opts).map_err(|e| LayerError::io(&tmp.path, e))?;
    let mut tar = HashWriter::new(enc);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(LayerError::Tar {
                    path: src.to_path_buf(),
                    source: e,
                })
            }
        };
        tar.write_all(&buf[..n])
            .map_err(|e| LayerError::io(&tmp.path, e))?;
    }
    let diff_id = digest_string(tar.hasher);
    if diff_id == super::EMPTY_LAYER_DIFF_ID && opts.compression == Compression::Gzip {
        drop(tmp);
        return write_layer(&LayerSpec::default(), opts, dir);
    }
    let out = tar
        .inner
        .finish()
        .map_err(|e| LayerError::io(&tmp.path, e))?;
    let size = out.count;
    let digest = digest_string(out.hasher);
    finish_file(out.inner, &tmp.path)?;
    let path = dir.join(digest.trim_start_matches("sha256:"));
    tmp.persist(&path)?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type().to_string(),
        path,
    })
}

/// Writes an empty layer (a tar of just the end-of-archive marker: 1024 zero bytes).
pub fn empty_layer(opts: &LayerOptions, dir: &Path) -> Result<LayerBlob, LayerError> {
    write_layer(&LayerSpec::default(), opts, dir)
}

fn finish_file(w: BufWriter<File>, path: &Path) -> Result<(), LayerError> {
    let file = w
        .into_inner()
        .map_err(|e| LayerError::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| LayerError::io(path, e))
}

/// The tar name of a clean absolute path (no leading `/`).
fn tar_name(path: &str) -> Result<String, LayerError> {
    let invalid = |reason| LayerError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let rel = path
        .strip_prefix('/')
        .ok_or_else(|| invalid("not absolute"))?;
    if rel.is_empty() {
        return Err(invalid("the root has no tar entry"));
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid("not a clean path"));
    }
    Ok(rel.to_string())
}

fn write_entry<W: Write>(
    w: &mut W,
    entry: &Entry,
    epoch: Option<i64>,
    blob: &Path,
) -> Result<(), LayerError> {
    if entry.path == "/" {
        return Ok(());
    }
    let name = tar_name(&entry.path)?;
    let mtime = match epoch {
        Some(e) => entry.mtime.min(e),
        None => entry.mtime,
    };
    let mut h = TarHeader {
        name,
        mode: i64::from(entry.mode & 0o7777),
        uid: i64::from(entry.uid),
        gid: i64::from(entry.gid),
        mtime,
        xattrs: entry.xattrs.clone(),
        ..Default::default()
    };
    let mut opaque = false;
    match &entry.kind {
        EntryKind::Dir => {
            h.typeflag = tarhdr::TYPE_DIR;
            h.name.push('/');
        }
        EntryKind::OpaqueDir => {
            h.typeflag = tarhdr::TYPE_DIR;
            h.name.push('/');
            opaque = true;
        }
        EntryKind::File => {
            h.typeflag = tarhdr::TYPE_REG;
            h.size = i64::try_from(entry.size).map_err(|_| LayerError::Header {
                entry: entry.path.clone(),
                reason: "file too large".into(),
            })?;
        }
        EntryKind::Symlink(target) => {
            h.typeflag = tarhdr::TYPE_SYMLINK;
            h.linkname = target.clone();
        }
        EntryKind::Hardlink(target) => {
            h.typeflag = tarhdr::TYPE_LINK;
            h.linkname = tar_name(target)?;
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            h.typeflag = if matches!(entry.kind, EntryKind::CharDevice { .. }) {
                tarhdr::TYPE_CHAR
            } else {
                tarhdr::TYPE_BLOCK
            };
            h.devmajor = i64::from(*major);
            h.devminor = i64::from(*minor);
        }
        EntryKind::Fifo => h.typeflag = tarhdr::TYPE_FIFO,
        EntryKind::Whiteout => {
            let (dir, base) = match h.name.rfind('/') {
                Some(i) => (&h.name[..=i], &h.name[i + 1..]),
                None => ("", h.name.as_str()),
            };
            h = TarHeader {
                name: format!("{dir}.wh.{base}"),
                typeflag: tarhdr::TYPE_REG,
                mtime,
                ..Default::default()
            };
        }
    }
    let io_err = |e| LayerError::io(blob, e);
    let header_err = |reason| LayerError::Header {
        entry: entry.path.clone(),
        reason,
    };
    w.write_all(&tarhdr::encode(&h).map_err(header_err)?)
        .map_err(io_err)?;
    if matches!(entry.kind, EntryKind::File) && entry.size > 0 {
        copy_content(w, entry, blob)?;
    }
    if opaque {
        let marker = TarHeader {
            name: format!("{}.wh..wh..opq", h.name),
            typeflag: tarhdr::TYPE_REG,
            mtime,
            ..Default::default()
        };
        w.write_all(&tarhdr::encode(&marker).map_err(header_err)?)
            .map_err(io_err)?;
    }
    Ok(())
}

/// Streams exactly `entry.size` bytes of the entry's content, then the block padding.
fn copy_content<W: Write>(w: &mut W, entry: &Entry, blob: &Path) -> Result<(), LayerError> {
    let content_err = |source| LayerError::Content {
        entry: entry.path.clone(),
        source,
    };
    let content = entry
        .content
        .as_ref()
        .ok_or_else(|| LayerError::SizeMismatch {
            entry: entry.path.clone(),
            expected: entry.size,
            actual: 0,
        })?;
    let mut reader = content.open().map_err(content_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = entry.size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(LayerError::SizeMismatch {
                    entry: entry.path.clone(),
                    expected: entry.size,
                    actual: entry.size - left,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(content_err(e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| LayerError::io(blob, e))?;
        left -= n as u64;
    }
    let mut probe = [0u8; 1];
    if reader.read(&mut probe).map_err(content_err)? != 0 {
        return Err(LayerError::SizeMismatch {
            entry: entry.path.clone(),
            expected: entry.size,
            actual: entry.size + 1,
        });
    }
    w.write_all(&[0u8; tarhdr::BLOCK][..tarhdr::padding(entry.size)])
        .map_err(|e| LayerError::io(blob, e))
}
