//! Hashes and identifiers: bcrypt, md5, sha1, sha256, sha512, uuidv4, uuidv5.

use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use super::args::{integer, string};
use super::FuncError;
use crate::bake::eval::value::Value;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_with<D: Digest>(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    Ok(Value::String(hex(&D::digest(s.as_bytes()))))
}

pub(super) fn md5(a: &[Value]) -> Result<Value, FuncError> {
    hash_with::<Md5>(a)
}

pub(super) fn sha1(a: &[Value]) -> Result<Value, FuncError> {
    hash_with::<Sha1>(a)
}

pub(super) fn sha256(a: &[Value]) -> Result<Value, FuncError> {
    hash_with::<Sha256>(a)
}

pub(super) fn sha512(a: &[Value]) -> Result<Value, FuncError> {
    hash_with::<Sha512>(a)
}

pub(super) fn bcrypt(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    if a.len() > 2 {
        return Err(FuncError::new("bcrypt() takes no more than two arguments"));
    }
    let mut cost = if a.len() == 2 { integer(a, 1)? } else { 10 };
    // Go's bcrypt silently uses the default cost below the minimum
    if cost < 4 {
        cost = 10;
    }
    if cost > 31 {
        return Err(FuncError::new(format!(
            "error occured generating password crypto/bcrypt: cost {cost} is outside allowed inclusive range 4..31"
        )));
    }
    if s.len() > 72 {
        return Err(FuncError::new(
            "error occured generating password bcrypt: password length exceeds 72 bytes",
        ));
    }
    let parts = ::bcrypt::hash_with_result(s.as_bytes(), cost as u32)
        .map_err(|e| FuncError::new(format!("error occured generating password {e}")))?;
    Ok(Value::String(
        parts.format_for_version(::bcrypt::Version::TwoA),
    ))
}

fn format_uuid(b: &[u8; 16]) -> String {
    let h = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses a UUID in its usual textual forms (plain, `{...}`, `urn:uuid:...`, 32 hex digits).
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let body = if let Some(rest) = s.strip_prefix("urn:uuid:") {
        rest
    } else if s.len() == 38 && s.starts_with('{') && s.ends_with('}') {
        &s[1..37]
    } else {
        s
    };
    let hexdigits: String = match body.len() {
        36 => {
            let b = body.as_bytes();
            if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
                return None;
            }
            body.chars().filter(|c| *c != '-').collect()
        }
        32 => body.to_string(),
        _ => return None,
    };
    if hexdigits.len() != 32 || !hexdigits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hexdigits.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub(super) fn uuidv4(_a: &[Value]) -> Result<Value, FuncError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| FuncError::new(format!("cannot generate a random UUID: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(Value::String(format_uuid(&b)))
}

pub(super) fn uuidv5(a: &[Value]) -> Result<Value, FuncError> {
    let ns_name = string(a, 0)?;
    let name = string(a, 1)?;
    let ns_text = match ns_name.as_str() {
        "dns" => "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "url" => "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
        "oid" => "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
        "x500" => "6ba7b814-9dad-11d1-80b4-00c04fd430c8",
        other => other,
    };
    let ns = parse_uuid(ns_text).ok_or_else(|| {
        let why = if ns_text.len() == 36 || ns_text.len() == 32 || ns_text.len() == 38 {
            "invalid UUID format".to_string()
        } else {
            format!("invalid UUID length: {}", ns_text.len())
        };
        FuncError::new(format!(
            "uuidv5() doesn't support namespace {ns_name} ({why})"
        ))
    })?;
    let mut h = Sha1::new();
    h.update(ns);
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(Value::String(format_uuid(&b)))
}
