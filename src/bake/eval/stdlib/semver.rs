//! `semvercmp(version, constraint)`: semantic versions and constraints as buildx reads
//! them (the Masterminds semver rules): lenient versions (`v` prefix, missing minor or
//! patch), constraints with `=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `~>`, `^`, wildcards
//! (`1.2.x`, `*`, or missing parts), hyphen ranges (`1.2 - 1.4`), `,`/space for AND and
//! `||` for OR. A prerelease version only satisfies constraints that name a prerelease.

use std::cmp::Ordering;

use super::args::string;
use super::FuncError;
use crate::bake::eval::value::Value;

#[derive(Debug, Clone, PartialEq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

fn valid_ident_list(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Splits `1.2.3-pre+meta` into the core and the prerelease (metadata is dropped).
fn split_version(s: &str) -> Option<(&str, Option<&str>)> {
    let (rest, meta) = match s.split_once('+') {
        Some((r, m)) => (r, Some(m)),
        None => (s, None),
    };
    if let Some(m) = meta {
        if !valid_ident_list(m) {
            return None;
        }
    }
    match rest.split_once('-') {
        Some((core, pre)) => {
            if !valid_ident_list(pre) {
                return None;
            }
            Some((core, Some(pre)))
        }
        None => Some((rest, None)),
    }
}

fn parse_version(s: &str) -> Option<Version> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, pre) = split_version(s)?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nums[i] = p.parse().ok()?;
    }
    Some(Version {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre: pre
            .map(|p| p.split('.').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(p), Ok(q)) => p.cmp(&q),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn cmp(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| cmp_pre(&a.pre, &b.pre))
}

#[derive(Debug)]
struct Constraint {
    op: String,
    v: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    /// `*` / `x` for the major part: anything goes
    any: bool,
}

fn is_wild(p: &str) -> bool {
    matches!(p, "x" | "X" | "*")
}

fn parse_constraint_version(op: &str, s: &str) -> Option<Constraint> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, pre) = split_version(s)?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    let mut dirty = [false; 3];
    for i in 0..3 {
        match parts.get(i) {
            None => dirty[i] = true,
            Some(p) if is_wild(p) => dirty[i] = true,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                nums[i] = p.parse().ok()?
            }
            Some(_) => return None,
        }
    }
    // a wildcard part makes every later part a wildcard too
    if dirty[0] {
        dirty = [true; 3];
    } else if dirty[1] {
        dirty[2] = true;
    }
    Some(Constraint {
        op: op.to_string(),
        v: Version {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre: pre
                .map(|p| p.split('.').map(str::to_string).collect())
                .unwrap_or_default(),
        },
        minor_dirty: dirty[1],
        patch_dirty: dirty[2],
        any: dirty[0],
    })
}

fn tilde(v: &Version, c: &Constraint) -> bool {
    cmp(v, &c.v) != Ordering::Less
        && v.major == c.v.major
        && (c.minor_dirty || v.minor == c.v.minor)
}

fn check(v: &Version, c: &Constraint) -> bool {
    if !v.pre.is_empty() && c.v.pre.is_empty() {
        return false;
    }
    if c.any {
        return c.op != "!=";
    }
    let dirty = c.minor_dirty || c.patch_dirty;
    let o = cmp(v, &c.v);
    match c.op.as_str() {
        "" | "=" => {
            if dirty {
                tilde(v, c)
            } else {
                o == Ordering::Equal
            }
        }
        "!=" => {
            if dirty {
                !tilde(v, c)
            } else {
                o != Ordering::Equal
            }
        }
        ">" => {
            if c.minor_dirty {
                v.major > c.v.major
            } else if c.patch_dirty {
                (v.major, v.minor) > (c.v.major, c.v.minor)
            } else {
                o == Ordering::Greater
            }
        }
        ">=" | "=>" => o != Ordering::Less,
        "<" => o == Ordering::Less,
        "<=" | "=<" => {
            if c.minor_dirty {
                v.major <= c.v.major
            } else if c.patch_dirty {
                (v.major, v.minor) <= (c.v.major, c.v.minor)
            } else {
                o != Ordering::Greater
            }
        }
        "~" | "~>" => tilde(v, c),
        "^" => {
            if o == Ordering::Less {
                return false;
            }
            if c.v.major > 0 || c.minor_dirty {
                v.major == c.v.major
            } else if c.v.minor > 0 || c.patch_dirty {
                v.major == 0 && v.minor == c.v.minor
            } else {
                v.major == 0 && v.minor == 0 && v.patch == c.v.patch
            }
        }
        _ => false,
    }
}

/// One AND group of constraints.
fn parse_group(group: &str) -> Option<Vec<Constraint>> {
    let g = group.trim();
    if g.is_empty() {
        return None;
    }
    // hyphen range: "a - b"
    if let Some((lo, hi)) = g.split_once(" - ") {
        let lo = parse_constraint_version(">=", lo.trim())?;
        let hi = parse_constraint_version("<=", hi.trim())?;
        return Some(vec![lo, hi]);
    }
    let chars: Vec<char> = g.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && matches!(chars[i], '=' | '!' | '<' | '>' | '~' | '^') {
            i += 1;
        }
        let op: String = chars[start..i].iter().collect();
        if !matches!(
            op.as_str(),
            "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
        ) {
            return None;
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let vstart = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+' | '*'))
        {
            i += 1;
        }
        let ver: String = chars[vstart..i].iter().collect();
        if ver.is_empty() {
            return None;
        }
        out.push(parse_constraint_version(&op, &ver)?);
        if i < chars.len() && !(chars[i].is_whitespace() || chars[i] == ',') {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

pub(super) fn semvercmp(a: &[Value]) -> Result<Value, FuncError> {
    let version = string(a, 0)?;
    let constraint = string(a, 1)?;
    let v = parse_version(&version).ok_or_else(|| FuncError::new("invalid semantic version"))?;
    let mut groups = Vec::new();
    for g in constraint.split("||") {
        let parsed = parse_group(g)
            .ok_or_else(|| FuncError::new(format!("improper constraint: {constraint}")))?;
        groups.push(parsed);
    }
    Ok(Value::Bool(
        groups.iter().any(|g| g.iter().all(|c| check(&v, c))),
    ))
}
