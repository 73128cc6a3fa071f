//! String functions: basename, chomp, dirname, homedir, indent, join, lower, replace,
//! reverse, sanitize, split, strlen, substr, title, trim, trimprefix, trimspace,
//! trimsuffix, upper. Lengths and offsets count grapheme clusters, as cty does.

use unicode_segmentation::UnicodeSegmentation;

use super::args::{integer, list_of, string, strings};
use super::FuncError;
use crate::bake::eval::value::{Type, Value};

/// Upper bound for a string a function builds (bytes).
const MAX_RESULT: usize = 1 << 28;

fn map_str(a: &[Value], f: impl Fn(&str) -> String) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    Ok(Value::String(f(&s)))
}

/// Go's per-rune case mapping: a character whose mapping is not a single character is
/// kept as it is (Go has no multi-character case mappings).
fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut it: Box<dyn Iterator<Item = char>> = if upper {
                Box::new(c.to_uppercase())
            } else {
                Box::new(c.to_lowercase())
            };
            match (it.next(), it.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

pub(super) fn upper(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| map_case(s, true))
}

pub(super) fn lower(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| map_case(s, false))
}

pub(super) fn reverse(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| s.graphemes(true).rev().collect())
}

pub(super) fn strlen(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    Ok(Value::int(s.graphemes(true).count() as i64))
}

pub(super) fn substr(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let mut offset = integer(a, 1)?;
    let length = integer(a, 2)?;
    let g: Vec<&str> = s.graphemes(true).collect();
    let total = g.len() as i64;
    if offset < 0 {
        offset = offset.saturating_add(total).max(0);
    } else if length == 0 {
        return Ok(Value::string(""));
    }
    if offset >= total {
        return Ok(Value::string(""));
    }
    let start = offset as usize;
    let end = if length < 0 {
        g.len()
    } else {
        start.saturating_add(length as usize).min(g.len())
    };
    Ok(Value::String(g[start..end].concat()))
}

pub(super) fn chomp(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| s.trim_end_matches(['\n', '\r']).to_string())
}

pub(super) fn trimspace(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| s.trim().to_string())
}

pub(super) fn trim(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let cutset: Vec<char> = string(a, 1)?.chars().collect();
    Ok(Value::String(
        s.trim_matches(|c| cutset.contains(&c)).to_string(),
    ))
}

pub(super) fn trimprefix(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let p = string(a, 1)?;
    Ok(Value::String(s.strip_prefix(&p).unwrap_or(&s).to_string()))
}

pub(super) fn trimsuffix(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let p = string(a, 1)?;
    Ok(Value::String(s.strip_suffix(&p).unwrap_or(&s).to_string()))
}

pub(super) fn indent(a: &[Value]) -> Result<Value, FuncError> {
    let n = integer(a, 0)?;
    let s = string(a, 1)?;
    let pad = " ".repeat(n.clamp(0, 1 << 16) as usize);
    Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
}

pub(super) fn replace(a: &[Value]) -> Result<Value, FuncError> {
    let s = string(a, 0)?;
    let from = string(a, 1)?;
    let to = string(a, 2)?;
    // bound the result so that a hostile file cannot exhaust memory
    let count = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from.as_str()).count()
    };
    if count.saturating_mul(to.len()).saturating_add(s.len()) > MAX_RESULT {
        return Err(FuncError::new("the result would be too long"));
    }
    if from.is_empty() {
        // Go inserts the replacement around every character
        let mut out = String::with_capacity(s.len() * (to.len() + 1));
        out.push_str(&to);
        for c in s.chars() {
            out.push(c);
            out.push_str(&to);
        }
        return Ok(Value::String(out));
    }
    Ok(Value::String(s.replace(&from, &to)))
}

pub(super) fn split(a: &[Value]) -> Result<Value, FuncError> {
    let sep = string(a, 0)?;
    let s = string(a, 1)?;
    let parts: Vec<String> = if sep.is_empty() {
        s.chars().map(String::from).collect()
    } else {
        s.split(sep.as_str()).map(str::to_string).collect()
    };
    Ok(strings(parts))
}

pub(super) fn join(a: &[Value]) -> Result<Value, FuncError> {
    let sep = string(a, 0)?;
    if a.len() < 2 {
        return Err(FuncError::new("at least one list is required"));
    }
    let mut items = Vec::new();
    for i in 1..a.len() {
        for (j, e) in list_of(a, i, &Type::String)?.into_iter().enumerate() {
            match e {
                Value::String(s) => items.push(s),
                _ if a.len() > 2 => {
                    return Err(FuncError::arg(
                        i,
                        format!("element {j} of list {i} is null; cannot concatenate null values"),
                    ))
                }
                _ => {
                    return Err(FuncError::arg(
                        i,
                        format!("element {j} is null; cannot concatenate null values"),
                    ))
                }
            }
        }
    }
    Ok(Value::String(items.join(&sep)))
}

/// Go's `strings.Title` word separators.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

pub(super) fn title(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| {
        let mut prev = ' ';
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if is_separator(prev) {
                let mut up = c.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(u), None) => out.push(u),
                    _ => out.push(c),
                }
            } else {
                out.push(c);
            }
            prev = c;
        }
        out
    })
}

pub(super) fn sanitize(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, |s| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

/// Go's `path.Clean` for slash-separated paths.
pub(super) fn clean_path(p: &str) -> String {
    crate::pathutil::clean(p)
}

/// Go's `path.Base`.
pub(super) fn base_name(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".to_string();
    }
    match t.rfind('/') {
        Some(i) => t[i + 1..].to_string(),
        None => t.to_string(),
    }
}

/// Go's `path.Dir`.
pub(super) fn dir_name(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean_path(dir)
}

pub(super) fn basename(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, base_name)
}

pub(super) fn dirname(a: &[Value]) -> Result<Value, FuncError> {
    map_str(a, dir_name)
}

pub(super) fn homedir(_a: &[Value]) -> Result<Value, FuncError> {
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok(Value::String(home))
}
