//! ADD's local archives: detected by content (a tar stream, plain or compressed with gzip,
//! bzip2, xz or zstd, like BuildKit's `DetectCompression` + `tar.Reader.Next`) and read
//! into entries relative to the archive root.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use crate::engine::fs::{clean_abs, Content, Entry, EntryKind};

/// How an archive's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The decompressed stream of `content`.
fn open(content: &Content, comp: Compression) -> std::io::Result<Box<dyn Read + Send>> {
    let raw = content.open()?;
    Ok(match comp {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(raw)),
        Compression::Zstd => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(raw).map_err(std::io::Error::other)?)
        }
        Compression::Xz => {
            let mut input = std::io::BufReader::new(raw);
            let mut out = Vec::new();
            lzma_rs::xz_decompress(&mut input, &mut out).map_err(std::io::Error::other)?;
            Box::new(Cursor::new(out))
        }
    })
}

/// Whether a 512-byte block is a valid, non-empty tar header.
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == stored
}

/// The compression of `content` if it is a tar archive, else `None` (copied as a file).
pub fn detect(content: &Content) -> std::io::Result<Option<Compression>> {
    let mut head = [0u8; 6];
    let mut r = content.open()?;
    let n = crate::engine::fs::read_full(&mut r, &mut head)?;
    let comp = sniff(&head[..n]);
    let mut block = vec![0u8; 512];
    let got = match open(content, comp) {
        Ok(mut s) => crate::engine::fs::read_full(&mut s, &mut block).unwrap_or(0),
        Err(_) => 0,
    };
    Ok(is_tar_header(&block[..got]).then_some(comp))
}

/// Reads every member of an archive: paths are absolute inside the archive root (`./a/`
/// becomes `/a`, `..` never leaves it), hard link targets likewise; later members with the
/// same path replace earlier ones. File bytes are held in memory.
pub fn read_entries(content: &Content, comp: Compression) -> std::io::Result<Vec<Entry>> {
    let mut archive = tar::Archive::new(open(content, comp)?);
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for member in archive.entries()? {
        let mut member = member?;
        let path = clean_abs(&String::from_utf8_lossy(&member.path_bytes()));
        let header = member.header().clone();
        let link = member
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let dev = || -> std::io::Result<(u32, u32)> {
            Ok((
                header.device_major()?.unwrap_or(0),
                header.device_minor()?.unwrap_or(0),
            ))
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink(link.unwrap_or_default()),
            tar::EntryType::Link => EntryKind::Hardlink(clean_abs(&link.unwrap_or_default())),
            tar::EntryType::Char => {
                let (major, minor) = dev()?;
                EntryKind::CharDevice { major, minor }
            }
            tar::EntryType::Block => {
                let (major, minor) = dev()?;
                EntryKind::BlockDevice { major, minor }
            }
            tar::EntryType::Fifo => EntryKind::Fifo,
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            // Global/extension headers are consumed by the reader; skip anything else.
            _ => continue,
        };
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = member.pax_extensions()? {
            for ext in exts.flatten() {
                if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
        let (size, content) = if kind == EntryKind::File {
            let mut buf = Vec::new();
            member.read_to_end(&mut buf)?;
            (buf.len() as u64, Some(Content::Bytes(Arc::new(buf))))
        } else {
            (0, None)
        };
        let entry = Entry {
            path: path.clone(),
            kind,
            mode: header.mode().unwrap_or(0) & 0o7777,
            // Empty numeric fields read as 0, like Go's archive/tar.
            uid: header
                .uid()
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            gid: header
                .gid()
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            mtime: header
                .mtime()
                .ok()
                .and_then(|v| i64::try_from(v).ok())
                .unwrap_or(0),
            size,
            content,
            xattrs,
        };
        out.insert(path, entry);
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o700);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_size(0);
        b.append_data(&mut h, "./pkg/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(2);
        b.append_data(&mut h, "pkg/a", &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "pkg/b", "pkg/a").unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_and_reads_plain_and_gzip() {
        let plain = Content::Bytes(Arc::new(tar_bytes()));
        assert_eq!(detect(&plain).unwrap(), Some(Compression::None));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar_bytes()).unwrap();
        let gz = Content::Bytes(Arc::new(gz.finish().unwrap()));
        assert_eq!(detect(&gz).unwrap(), Some(Compression::Gzip));
        let entries = read_entries(&gz, Compression::Gzip).unwrap();
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/pkg", "/pkg/a", "/pkg/b"]);
        assert_eq!((entries[0].mode, entries[0].uid), (0o700, 1000));
        assert_eq!(entries[2].kind, EntryKind::Hardlink("/pkg/a".into()));
        let text = Content::Bytes(Arc::new(b"just text".to_vec()));
        assert_eq!(detect(&text).unwrap(), None);
        let gz_text = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, b"not a tar").unwrap();
            Content::Bytes(Arc::new(e.finish().unwrap()))
        };
        assert_eq!(detect(&gz_text).unwrap(), None);
    }

    #[test]
    fn detects_bzip2_xz_zstd() {
        let raw = tar_bytes();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        std::io::Write::write_all(&mut bz, &raw).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &raw[..], &mut xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            &raw[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (bytes, comp) in [
            (bz.finish().unwrap(), Compression::Bzip2),
            (xz, Compression::Xz),
            (zst, Compression::Zstd),
        ] {
            let c = Content::Bytes(Arc::new(bytes));
            assert_eq!(detect(&c).unwrap(), Some(comp));
            assert_eq!(read_entries(&c, comp).unwrap().len(), 3);
        }
    }
}
