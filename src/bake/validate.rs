//! What a build would reject, checked before printing or building (buildx's `toBuildOpt`),
//! and the context clean-up it applies.

use super::model::Target;
use super::resolve::clean_context;
use std::collections::HashMap;

/// Checks a resolved target; cleans its context path as the build sees it.
/// `env` is the process environment (secrets and ssh read from it).
pub fn check_target(t: &mut Target, env: &HashMap<String, String>) -> Result<(), String> {
    if t.context.as_deref() == Some("-") {
        return Err("context from stdin not allowed in bake".into());
    }
    if t.dockerfile.as_deref() == Some("-") {
        return Err("dockerfile from stdin not allowed in bake".into());
    }
    let ctx = t.context.clone().unwrap_or_else(|| ".".into());
    t.context = Some(clean_context(&ctx));
    if let Some(s) = &t.shm_size {
        parse_mem_bytes(s).ok_or_else(|| format!("invalid value {s} for membytes key shm-size"))?;
    }
    for p in t.platforms.iter().flatten() {
        check_platform(p)?;
    }
    check_secrets(t, env)?;
    check_ssh(t, env)?;
    check_outputs(t)?;
    for a in t.annotations.iter().flatten() {
        check_annotation(a)?;
    }
    for u in t.ulimits.iter().flatten() {
        check_ulimit(u)?;
    }
    if let Some(r) = &t.resources {
        for (k, v) in [("memory", &r.memory), ("memory-swap", &r.memory_swap)] {
            if let Some(v) = v {
                let v = v.trim();
                if parse_mem_bytes(v).is_none() && !(k == "memory-swap" && v == "-1") {
                    return Err(format!(
                        "invalid value {v:?} for resource {k}: invalid size: '{v}'"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// docker's `RAMInBytes`: a number with an optional b/k/m/g/t/p unit (binary multiples).
pub fn parse_mem_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

fn component_ok(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
}

/// containerd's platform specifier syntax: `os[/arch[/variant]]` or `arch`, or `local`.
pub fn check_platform(p: &str) -> Result<(), String> {
    let parts: Vec<&str> = p.split('/').collect();
    let os = parts[0].split('(').next().unwrap_or_default();
    if parts.len() > 3 {
        return Err(format!(
            "{p:?}: cannot parse platform specifier: invalid argument"
        ));
    }
    if !component_ok(os) {
        return Err(format!(
            "{p:?} is an invalid OS component of {p:?}: OSAndVersion specifier component must match \"^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.%-]*)((?:\\\\+[A-Za-z0-9_.%-]+)*)\\\\))?$\": invalid argument"
        ));
    }
    for c in &parts[1..] {
        if !component_ok(c) {
            return Err(format!(
                "{c:?} is an invalid component of {p:?}: platform specifier component must match \"^[A-Za-z0-9_.-]+$\": invalid argument"
            ));
        }
    }
    Ok(())
}

fn check_secrets(t: &Target, env: &HashMap<String, String>) -> Result<(), String> {
    for s in t.secret.iter().flatten() {
        if s.id.is_empty() {
            return Err("secret missing ID".into());
        }
        let mut src = s.src.clone();
        if s.env.is_empty() && src.is_empty() && !env.contains_key(&s.id) {
            src = s.id.clone();
        }
        if !src.is_empty() {
            std::fs::metadata(&src)
                .map_err(|e| format!("failed to stat {src}: {}", io_message(&e)))?;
        }
    }
    Ok(())
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn check_ssh(t: &Target, env: &HashMap<String, String>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for s in t.ssh.iter().flatten() {
        let id = if s.id.is_empty() {
            "default"
        } else {
            s.id.as_str()
        };
        if !seen.insert(id.to_string()) {
            return Err(format!("duplicate agent ID {id:?}"));
        }
        if s.paths.is_empty() {
            if env.get("SSH_AUTH_SOCK").is_none_or(|v| v.is_empty()) {
                return Err(format!(
                    "failed to convert agent config {{{id} [] false}}: invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set"
                ));
            }
        } else {
            for p in &s.paths {
                std::fs::metadata(p).map_err(|e| {
                    format!(
                        "failed to convert agent config {{{id} [{}] false}}: {p}: {}",
                        s.paths.join(" "),
                        io_message(&e)
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn check_outputs(t: &Target) -> Result<(), String> {
    let mut stdout_used = false;
    for o in t.output.iter().flatten() {
        let (file, dir) = match o.typ.as_str() {
            "local" => (false, true),
            "tar" => (true, false),
            "oci" | "docker" => {
                let tar = o
                    .attrs
                    .get("tar")
                    .and_then(|v| super::eval::varenv::parse_bool(v))
                    .unwrap_or(true);
                (tar, !tar)
            }
            _ => (false, false),
        };
        if dir {
            if o.dest.is_empty() {
                return Err(format!("dest is required for {} exporter", o.typ));
            }
            if o.dest == "-" {
                return Err(format!("dest cannot be stdout for {} exporter", o.typ));
            }
            if std::path::Path::new(&o.dest).is_file() {
                return Err(format!("destination directory {} is a file", o.dest));
            }
        }
        if file {
            let dest = if o.dest.is_empty() && o.typ != "docker" {
                "-"
            } else {
                o.dest.as_str()
            };
            if dest == "-" {
                if stdout_used {
                    return Err("multiple outputs configured to write to stdout".into());
                }
                stdout_used = true;
            } else if !dest.is_empty() && std::path::Path::new(dest).is_dir() {
                return Err(format!("destination file {dest} is a directory"));
            }
        }
    }
    Ok(())
}

const ANNOTATION_TYPES: &[&str] = &[
    "",
    "index",
    "index-descriptor",
    "manifest",
    "manifest-descriptor",
];

fn check_annotation(a: &str) -> Result<(), String> {
    if a.is_empty() {
        return Ok(());
    }
    let (k, _) = a
        .split_once('=')
        .ok_or_else(|| format!("invalid annotation {a:?}, expected key=value"))?;
    let Some((types, _key)) = k.split_once(':') else {
        return Ok(());
    };
    for tp in types.split(',') {
        let (typ, platform) = match tp.split_once('[') {
            Some((t, rest)) => match rest.strip_suffix(']') {
                Some(p) => (t, Some(p)),
                None => (tp, Some("")),
            },
            None => (tp, None),
        };
        let typ_ok = typ.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !typ.is_empty();
        let plat_ok = platform.is_none_or(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-')
        });
        if !typ_ok || !plat_ok {
            return Err(format!(
                "invalid annotation type {tp:?}, expected type and optional platform in square brackets"
            ));
        }
        if !ANNOTATION_TYPES.contains(&typ) {
            return Err(format!("unknown annotation type {typ:?}"));
        }
        if let Some(p) = platform {
            check_platform(p).map_err(|e| format!("invalid platform {p:?}: {e}"))?;
        }
    }
    Ok(())
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// docker's ulimit syntax: `name=soft[:hard]`.
fn check_ulimit(u: &str) -> Result<(), String> {
    let (name, limits) = u
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {u}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (s, Some(h)),
        None => (limits, None),
    };
    let soft: i64 = soft
        .parse()
        .map_err(|_| format!("invalid ulimit soft value: {soft}"))?;
    if let Some(h) = hard {
        let hard: i64 = h
            .parse()
            .map_err(|_| format!("invalid ulimit hard value: {h}"))?;
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_bytes() {
        assert_eq!(parse_mem_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_mem_bytes("512"), Some(512));
        assert_eq!(parse_mem_bytes("lots"), None);
    }

    #[test]
    fn platforms() {
        assert!(check_platform("linux/arm64/v8").is_ok());
        assert!(check_platform("not a platform!").is_err());
    }

    #[test]
    fn ulimits() {
        assert!(check_ulimit("nofile=1024:2048").is_ok());
        assert!(check_ulimit("nofile").is_err());
        assert!(check_ulimit("nofile=2:1").is_err());
    }
}
