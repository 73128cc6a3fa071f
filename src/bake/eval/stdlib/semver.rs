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

fn parse_version(s: &str) -> Result<Version, String> {
    const INVALID: &str = "invalid semantic version";
    let body = s.strip_prefix('v').unwrap_or(s);
    let (core, pre) = split_version(body).ok_or(INVALID)?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(INVALID.into());
    }
    let mut nums = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(INVALID.into());
        }
        nums[i] = p.parse().map_err(|_| {
            format!("error parsing version segment: strconv.ParseUint: parsing {p:?}: value out of range")
        })?;
    }
    let pre: Vec<String> = pre
        .map(|p| p.split('.').map(str::to_string).collect())
        .unwrap_or_default();
    if pre
        .iter()
        .any(|p| p.len() > 1 && p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("version segment starts with 0".into());
    }
    Ok(Version {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre,
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
    /// the version with wildcard parts as zeros
    v: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
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
    let num = |p: &str| -> Option<u64> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let part = |i: usize| parts.get(i).copied();
    let wild_or_missing = |i: usize| part(i).is_none_or(is_wild);
    let (mut nums, mut dirty, mut minor_dirty, mut patch_dirty) = ([0u64; 3], false, false, false);
    if wild_or_missing(0) {
        dirty = true;
    } else if wild_or_missing(1) {
        nums[0] = num(part(0)?)?;
        dirty = true;
        minor_dirty = true;
    } else if wild_or_missing(2) {
        nums[0] = num(part(0)?)?;
        nums[1] = num(part(1)?)?;
        dirty = true;
        patch_dirty = true;
    } else {
        for (i, n) in nums.iter_mut().enumerate() {
            *n = num(part(i)?)?;
        }
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
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

fn tilde(v: &Version, c: &Constraint) -> bool {
    if cmp(v, &c.v) == Ordering::Less {
        return false;
    }
    let zero = c.v.major == 0 && c.v.minor == 0 && c.v.patch == 0;
    if zero && !c.minor_dirty && !c.patch_dirty {
        return true;
    }
    v.major == c.v.major && (c.minor_dirty || v.minor == c.v.minor)
}

/// One constraint; `include_pre` when the AND group names a prerelease.
fn check(v: &Version, c: &Constraint, include_pre: bool) -> bool {
    if !v.pre.is_empty() && !include_pre {
        return false;
    }
    let o = cmp(v, &c.v);
    match c.op.as_str() {
        "" | "=" => {
            if c.dirty {
                tilde(v, c)
            } else {
                o == Ordering::Equal
            }
        }
        "!=" => {
            if c.dirty {
                if c.v.major != v.major {
                    return true;
                }
                if c.minor_dirty {
                    return false;
                }
                if c.v.minor != v.minor {
                    return true;
                }
                if c.patch_dirty {
                    return (!v.pre.is_empty() || !c.v.pre.is_empty())
                        && cmp_pre(&v.pre, &c.v.pre) != Ordering::Equal;
                }
            }
            o != Ordering::Equal
        }
        ">" => {
            if !c.dirty {
                return o == Ordering::Greater;
            }
            if v.major != c.v.major {
                return v.major > c.v.major;
            }
            if c.minor_dirty {
                return false;
            }
            if c.patch_dirty {
                return v.minor > c.v.minor;
            }
            o == Ordering::Greater
        }
        ">=" | "=>" => o != Ordering::Less,
        "<" => o == Ordering::Less,
        "<=" | "=<" => {
            if !c.dirty {
                return o != Ordering::Greater;
            }
            if v.major > c.v.major {
                return false;
            }
            !(v.major == c.v.major && v.minor > c.v.minor && !c.minor_dirty)
        }
        "~" | "~>" => tilde(v, c),
        "^" => {
            if o == Ordering::Less {
                return false;
            }
            if c.v.major > 0 || c.minor_dirty {
                return v.major == c.v.major;
            }
            if v.major > 0 {
                return false;
            }
            if c.v.minor > 0 || c.patch_dirty {
                return v.minor == c.v.minor;
            }
            if v.minor > 0 {
                return false;
            }
            v.patch == c.v.patch
        }
        _ => false,
    }
}

/// One AND group of constraints; `a - b` ranges become `>= a, <= b`.
fn parse_group(group: &str) -> Option<Vec<Constraint>> {
    let chars: Vec<char> = group.chars().collect();
    let is_ver = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '*' | '|');
    let skip_ws = |i: &mut usize| {
        let s = *i;
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
        *i > s
    };
    let read_ver = |i: &mut usize| -> String {
        let s = *i;
        while *i < chars.len() && is_ver(chars[*i]) {
            *i += 1;
        }
        chars[s..*i].iter().collect()
    };
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        let had_ws = skip_ws(&mut i);
        if !out.is_empty() {
            if i >= chars.len() {
                break;
            }
            if chars[i] == ',' {
                i += 1;
                skip_ws(&mut i);
            } else if !had_ws {
                return None;
            }
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
        skip_ws(&mut i);
        let ver = read_ver(&mut i);
        if ver.is_empty() {
            return None;
        }
        // a hyphen range: "a - b" (whitespace on both sides of the hyphen)
        let mut j = i;
        if op.is_empty()
            && skip_ws(&mut j)
            && chars.get(j) == Some(&'-')
            && chars.get(j + 1).is_some_and(|c| c.is_whitespace())
        {
            j += 1;
            skip_ws(&mut j);
            let hi = read_ver(&mut j);
            if !hi.is_empty() {
                out.push(parse_constraint_version(">=", &ver)?);
                out.push(parse_constraint_version("<=", &hi)?);
                i = j;
                continue;
            }
        }
        out.push(parse_constraint_version(&op, &ver)?);
    }
    Some(out)
}

pub(super) fn semvercmp(a: &[Value]) -> Result<Value, FuncError> {
    let version = string(a, 0)?;
    let constraint = string(a, 1)?;
    let v = parse_version(&version).map_err(FuncError::new)?;
    let mut groups = Vec::new();
    for g in constraint.split("||") {
        let parsed =
            parse_group(g).ok_or_else(|| FuncError::new(format!("improper constraint: {g}")))?;
        groups.push(parsed);
    }
    Ok(Value::Bool(groups.iter().any(|g| {
        let include_pre = g.iter().any(|c| !c.v.pre.is_empty());
        g.iter().all(|c| check(&v, c, include_pre))
    })))
}
