//! Tar headers laid out byte for byte as Go's `archive/tar` writes them for containerd's
//! change writer (`Format = PAX`, which lets USTAR be used whenever the entry fits).

use std::collections::BTreeMap;

pub(crate) const BLOCK: usize = 512;

pub(crate) const TYPE_REG: u8 = b'0';
pub(crate) const TYPE_LINK: u8 = b'1';
pub(crate) const TYPE_SYMLINK: u8 = b'2';
pub(crate) const TYPE_CHAR: u8 = b'3';
pub(crate) const TYPE_BLOCK: u8 = b'4';
pub(crate) const TYPE_DIR: u8 = b'5';
pub(crate) const TYPE_FIFO: u8 = b'6';
const TYPE_PAX: u8 = b'x';

const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;

/// One tar header to encode. `name` has no leading `/`; directories end with `/`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TarHeader {
    pub name: String,
    pub linkname: String,
    pub typeflag: u8,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub size: i64,
    pub mtime: i64,
    pub devmajor: i64,
    pub devminor: i64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Field offsets of a USTAR block.
mod off {
    pub const NAME: (usize, usize) = (0, 100);
    pub const MODE: (usize, usize) = (100, 8);
    pub const UID: (usize, usize) = (108, 8);
    pub const GID: (usize, usize) = (116, 8);
    pub const SIZE: (usize, usize) = (124, 12);
    pub const MTIME: (usize, usize) = (136, 12);
    pub const CHKSUM: (usize, usize) = (148, 8);
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: (usize, usize) = (157, 100);
    pub const MAGIC: (usize, usize) = (257, 6);
    pub const VERSION: (usize, usize) = (263, 2);
    pub const DEVMAJOR: (usize, usize) = (329, 8);
    pub const DEVMINOR: (usize, usize) = (337, 8);
    pub const PREFIX: (usize, usize) = (345, 155);
}

fn field(block: &mut [u8; BLOCK], f: (usize, usize)) -> &mut [u8] {
    &mut block[f.0..f.0 + f.1]
}

fn fits_octal(width: usize, x: i64) -> bool {
    let bits = (width as u32 - 1) * 3;
    x >= 0 && (width >= 22 || x < (1i64 << bits))
}

/// Copies `s` into the field, NUL-terminating it when there is room; a truncated name does
/// not keep a trailing slash.
fn put_str(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len());
    b[..n].copy_from_slice(&s[..n]);
    if s.len() < b.len() {
        b[s.len()] = 0;
    }
    if s.len() > b.len() && b[b.len() - 1] == b'/' {
        let kept = s[..b.len()]
            .iter()
            .rposition(|&c| c != b'/')
            .map_or(0, |i| i + 1);
        b[kept] = 0;
    }
}

/// Octal, zero-padded, leaving room for a NUL; 0 when it does not fit.
fn put_octal(b: &mut [u8], x: i64) {
    let x = if fits_octal(b.len(), x) { x } else { 0 };
    let digits = format!("{x:o}");
    let s = if digits.len() + 1 < b.len() {
        format!("{}{digits}", "0".repeat(b.len() - digits.len() - 1))
    } else {
        digits
    };
    put_str(b, s.as_bytes());
}

fn to_ascii(s: &str) -> Vec<u8> {
    s.bytes().filter(|&c| c < 0x80 && c != 0).collect()
}

/// Splits a long ASCII name into a USTAR prefix and name, if possible.
fn split_ustar(s: &str) -> Option<(&str, &str)> {
    let mut len = s.len();
    if len <= NAME_SIZE || !s.is_ascii() {
        return None;
    }
    if len > PREFIX_SIZE + 1 {
        len = PREFIX_SIZE + 1;
    } else if s.as_bytes()[len - 1] == b'/' {
        len -= 1;
    }
    let i = s[..len].rfind('/')?;
    let nlen = s.len() - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&s[..i], &s[i + 1..]))
}

fn set_magic_and_checksum(block: &mut [u8; BLOCK]) {
    field(block, off::MAGIC).copy_from_slice(b"ustar\0");
    field(block, off::VERSION).copy_from_slice(b"00");
    field(block, off::CHKSUM).fill(b' ');
    let sum: i64 = block.iter().map(|&b| i64::from(b)).sum();
    let chk = field(block, off::CHKSUM);
    put_octal(&mut chk[..7], sum);
    chk[7] = b' ';
}

/// The common V7 + USTAR fields.
fn template(h: &TarHeader, name: &[u8], linkname: &[u8]) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[off::TYPEFLAG] = h.typeflag;
    put_str(field(&mut b, off::NAME), name);
    put_str(field(&mut b, off::LINKNAME), linkname);
    put_octal(field(&mut b, off::MODE), h.mode);
    put_octal(field(&mut b, off::UID), h.uid);
    put_octal(field(&mut b, off::GID), h.gid);
    put_octal(field(&mut b, off::SIZE), h.size);
    put_octal(field(&mut b, off::MTIME), h.mtime);
    // uname/gname stay empty (NUL-terminated at offset 0 of their fields).
    put_octal(field(&mut b, off::DEVMAJOR), h.devmajor);
    put_octal(field(&mut b, off::DEVMINOR), h.devminor);
    b
}

/// One PAX record: `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(key: &str, value: &[u8], out: &mut Vec<u8>) {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    if size.to_string().len() + base != size {
        size = base + size.to_string().len();
    }
    out.extend_from_slice(size.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The name of the PAX extended header of `name`: `dir/PaxHeaders.0/file`.
fn pax_header_name(name: &str) -> Vec<u8> {
    let (dir, file) = match name.rfind('/') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("", name),
    };
    let mut parts: Vec<&str> = Vec::new();
    if !dir.is_empty() {
        parts.push(dir);
    }
    parts.push("PaxHeaders.0");
    if !file.is_empty() {
        parts.push(file);
    }
    let mut n = to_ascii(&parts.join("/"));
    n.truncate(NAME_SIZE);
    while n.last() == Some(&b'/') {
        n.pop();
    }
    n
}

/// Encodes the header blocks of one entry (a PAX extended header first when needed).
pub(crate) fn encode(h: &TarHeader) -> Result<Vec<u8>, String> {
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ustar = true;
    for (key, value, can_split) in [("path", &h.name, true), ("linkpath", &h.linkname, false)] {
        if value.contains('\0') {
            return Err(format!("{key} contains a NUL byte"));
        }
        if !value.is_ascii() || value.len() > NAME_SIZE {
            if !(can_split && split_ustar(value).is_some()) {
                ustar = false;
            }
            pax.insert(key.to_string(), value.as_bytes().to_vec());
        }
    }
    for (what, value, width, key) in [
        ("mode", h.mode, 8, None),
        ("uid", h.uid, 8, Some("uid")),
        ("gid", h.gid, 8, Some("gid")),
        ("size", h.size, 12, Some("size")),
        ("mtime", h.mtime, 12, Some("mtime")),
        ("devmajor", h.devmajor, 8, None),
        ("devminor", h.devminor, 8, None),
    ] {
        if !fits_octal(width, value) {
            ustar = false;
            match key {
                Some(k) => {
                    pax.insert(k.to_string(), value.to_string().into_bytes());
                }
                None => return Err(format!("{what} {value} does not fit a tar header")),
            }
        }
    }
    for (k, v) in &h.xattrs {
        if k.contains('=') || k.contains('\0') || k.is_empty() {
            return Err(format!("invalid xattr name {k:?}"));
        }
        pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
        ustar = false;
    }

    if ustar {
        let (prefix, name) = match split_ustar(&h.name) {
            Some((p, n)) => (p, n),
            None => ("", h.name.as_str()),
        };
        let mut b = template(h, name.as_bytes(), h.linkname.as_bytes());
        put_str(field(&mut b, off::PREFIX), prefix.as_bytes());
        set_magic_and_checksum(&mut b);
        return Ok(b.to_vec());
    }

    let mut data = Vec::new();
    for (k, v) in &pax {
        pax_record(k, v, &mut data);
    }
    let mut out = Vec::with_capacity(3 * BLOCK + data.len());
    let mut x = [0u8; BLOCK];
    x[off::TYPEFLAG] = TYPE_PAX;
    put_str(field(&mut x, off::NAME), &pax_header_name(&h.name));
    put_octal(field(&mut x, off::MODE), 0);
    put_octal(field(&mut x, off::UID), 0);
    put_octal(field(&mut x, off::GID), 0);
    put_octal(field(&mut x, off::SIZE), data.len() as i64);
    put_octal(field(&mut x, off::MTIME), 0);
    set_magic_and_checksum(&mut x);
    out.extend_from_slice(&x);
    out.extend_from_slice(&data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);

    let mut b = template(h, &to_ascii(&h.name), &to_ascii(&h.linkname));
    set_magic_and_checksum(&mut b);
    out.extend_from_slice(&b);
    Ok(out)
}

/// Zero bytes that pad `size` bytes of content to a whole block.
pub(crate) fn padding(size: u64) -> usize {
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK - rem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &str) -> TarHeader {
        TarHeader {
            name: name.into(),
            typeflag: TYPE_REG,
            mode: 0o644,
            mtime: 1_700_000_000,
            size: 5,
            ..Default::default()
        }
    }

    #[test]
    fn ustar_fields_like_go() {
        let b = encode(&hdr("etc/passwd")).unwrap();
        assert_eq!(b.len(), 512);
        assert_eq!(&b[100..108], b"0000644\0");
        assert_eq!(&b[124..136], b"00000000005\0");
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[329..337], b"0000000\0");
        assert_eq!(&b[155..156], b" ");
        assert_eq!(b[154], 0);
        assert_eq!(&b[265..266], b"\0");
    }

    #[test]
    fn long_names_split_or_pax() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let b = encode(&hdr(&long)).unwrap();
        assert_eq!(b.len(), 512);
        assert_eq!(&b[345..465], "d".repeat(120).as_bytes());
        let too_long = "x".repeat(150);
        let b = encode(&hdr(&too_long)).unwrap();
        assert_eq!(b.len(), 3 * 512);
        assert_eq!(b[156], b'x');
        assert!(b.starts_with(b"PaxHeaders.0/xxx"));
        assert_eq!(&b[512..520], b"160 path");
    }

    #[test]
    fn pax_record_lengths() {
        let mut out = Vec::new();
        pax_record("path", &[b'a'; 92], &mut out);
        assert_eq!(out.len(), 102);
        assert!(out.starts_with(b"102 path="));
        out.clear();
        pax_record("k", b"", &mut out);
        assert_eq!(out, b"5 k=\n");
    }
}
