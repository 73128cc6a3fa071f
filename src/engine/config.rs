//! Building the image config as BuildKit's Dockerfile frontend does: the empty (scratch)
//! image, `Env` updates, EXPOSE port specs, HEALTHCHECK, WORKDIR/destination path
//! normalisation, history entries (with Go's `%q`/`%v`/duration formatting, so that
//! `created_by` reads exactly like BuildKit's), and the final platform stamping.

use std::collections::BTreeMap;

use crate::dockerfile::instructions::Healthcheck;
use crate::oci::image::{History, Image};
use crate::oci::Platform;

/// `PATH` for images that have none (Linux and every other non-Windows OS).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The comment BuildKit writes on every history entry.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The config of `FROM scratch`: the platform, `Env PATH=...`, `WorkingDir /`.
pub fn empty_image(platform: &Platform) -> Image {
    let mut img = Image {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        os_version: platform.os_version.clone(),
        os_features: platform.os_features.clone(),
        variant: platform.variant.clone(),
        ..Image::default()
    };
    img.rootfs.kind = "layers".into();
    img.config.working_dir = "/".into();
    if platform.os != "windows" {
        img.config.env = vec![format!("PATH={DEFAULT_PATH}")];
    }
    img
}

/// Splits `K=V` (a missing `=` gives an empty value).
pub fn split_env(entry: &str) -> (&str, &str) {
    entry.split_once('=').unwrap_or((entry, ""))
}

/// Sets `key` in a config `Env` list: replaced in place when present, appended otherwise.
pub fn add_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| split_env(e).0 == key) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Appends a history entry (`empty_layer` unless `with_layer`); steps that BuildKit
/// builds as LLB operations get the ` # buildkit` suffix (`llb_op`).
/// `created` is the `SOURCE_DATE_EPOCH` time when one was given (see [`rfc3339`]).
pub fn commit_history(
    img: &mut Image,
    msg: &str,
    with_layer: bool,
    llb_op: bool,
    created: Option<String>,
) {
    let created_by = if llb_op {
        format!("{msg} # buildkit")
    } else {
        msg.to_string()
    };
    img.history.push(History {
        created,
        created_by,
        author: String::new(),
        comment: HISTORY_COMMENT.into(),
        empty_layer: !with_layer,
    });
}

/// A Unix time as RFC 3339 in UTC (`2023-01-02T03:04:05Z`), as Go marshals a
/// `time.Time` without sub-second part.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// Go's `fmt.Sprintf("%v", []string{...})`: `[a b]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn frac(value: u64, digits: u32) -> String {
    let s = format!("{value:0width$}", width = digits as usize);
    let s = s.trim_end_matches('0');
    if s.is_empty() {
        String::new()
    } else {
        format!(".{s}")
    }
}

/// Go's `time.Duration.String()` for nanoseconds: `0s`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, div, digits) = if u < 1_000 {
            ("ns", 1, 0)
        } else if u < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        return format!("{sign}{}{}{unit}", u / div, frac(u % div, digits));
    }
    let secs = u / 1_000_000_000;
    let mut out = sign.to_string();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if secs >= 60 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}{}s", frac(u % 1_000_000_000, 9)));
    out
}

/// The `Healthcheck` object of the config (zero fields omitted, like Go's `omitempty`)
/// and the text of its history entry.
pub fn healthcheck(h: &Healthcheck) -> (serde_json::Value, String) {
    let (test, interval, timeout, start, start_interval, retries) = match h {
        Healthcheck::None => (vec!["NONE".to_string()], 0, 0, 0, 0, 0),
        Healthcheck::Check(c) => (
            c.test.clone(),
            c.interval,
            c.timeout,
            c.start_period,
            c.start_interval,
            c.retries,
        ),
    };
    let mut m = serde_json::Map::new();
    if !test.is_empty() {
        m.insert("Test".into(), serde_json::json!(test));
    }
    for (k, v) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start),
        ("StartInterval", start_interval),
    ] {
        if v != 0 {
            m.insert(k.into(), serde_json::json!(v));
        }
    }
    if retries != 0 {
        m.insert("Retries".into(), serde_json::json!(retries));
    }
    let text = format!(
        "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        go_list(&test),
        go_duration(interval),
        go_duration(timeout),
        go_duration(start),
        go_duration(start_interval),
        retries
    );
    (serde_json::Value::Object(m), text)
}

fn port_number(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Err("value is empty".into());
    }
    let n: i64 = s.parse().map_err(|_| "invalid syntax".to_string())?;
    if !(0..=65535).contains(&n) {
        return Err("value out of range (0–65535)".into());
    }
    Ok(n as u32)
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    match s.split_once('-') {
        None => port_number(s).map(|p| (p, p)),
        Some((a, b)) if a == b => port_number(a).map(|p| (p, p)),
        Some((a, b)) => {
            let start = port_number(a).map_err(|e| format!("invalid start port '{a}': {e}"))?;
            let end = port_number(b).map_err(|e| format!("invalid end port '{b}': {e}"))?;
            if end < start {
                return Err(format!("invalid port range: {s}"));
            }
            Ok((start, end))
        }
    }
}

/// EXPOSE: `[ip:][hostPort:]port[-end][/proto]` -> `port/proto` entries (`80` -> `80/tcp`).
pub fn parse_ports(specs: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in specs {
        let container = raw.rsplit(':').next().unwrap_or(raw);
        let (port, proto) = container.split_once('/').unwrap_or((container, ""));
        if port.is_empty() {
            return Err(format!("invalid port: {raw:?}: no port specified"));
        }
        let proto = match proto.to_ascii_lowercase().as_str() {
            "" => "tcp".to_string(),
            p @ ("tcp" | "udp" | "sctp") => p.to_string(),
            p => return Err(format!("invalid port: {raw:?}: invalid proto: {p}")),
        };
        let (start, end) =
            port_range(port).map_err(|_| format!("invalid containerPort: {port}"))?;
        for p in start..=end {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    crate::pathutil::clean(p)
}

/// BuildKit's `system.NormalizePath` for Linux: a relative `new` is joined to `parent`
/// (and cleaned); an absolute one is kept as written. With `keep_slash`, a trailing `/`
/// (or `/.`) of `new` survives.
pub fn normalize_path(parent: &str, new: &str, keep_slash: bool) -> String {
    let parent = if parent.is_empty() { "/" } else { parent };
    let parent = if parent.starts_with('/') {
        parent.to_string()
    } else {
        clean_path(&format!("/{parent}"))
    };
    let mut p = if new.is_empty() {
        parent.clone()
    } else {
        new.to_string()
    };
    if !p.starts_with('/') {
        p = clean_path(&format!("{parent}/{p}"));
    }
    if keep_slash {
        if new.ends_with('/') && !p.ends_with('/') {
            p.push('/');
        } else if new.ends_with("/.") {
            if p != "/" {
                p.push('/');
            }
            p.push('.');
        }
    }
    p
}

/// A COPY/ADD destination relative to the working directory (trailing slash kept).
pub fn dest_path(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        return normalize_path("/", dest, true);
    }
    let dest = if dest == "." || dest.is_empty() {
        "./"
    } else {
        dest
    };
    normalize_path(workdir, dest, true)
}

/// Docker's signal names on Linux (without `SIG`).
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// STOPSIGNAL's check: a non-zero number or a known signal name (`SIG` optional).
pub fn check_signal(s: &str) -> Result<(), String> {
    if let Ok(n) = s.parse::<i64>() {
        return if n == 0 {
            Err(format!("Invalid signal: {s}"))
        } else {
            Ok(())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = |prefix: &str, max: u32| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=max).contains(&n))
    };
    if SIGNALS.contains(&name) || rt("RTMIN+", 15) || rt("RTMAX-", 14) {
        Ok(())
    } else {
        Err(format!("Invalid signal: {s}"))
    }
}

/// `SHELL` (or the default `/bin/sh -c`) in front of a shell-form command.
pub fn with_shell(img: &Image, args: &[String]) -> Vec<String> {
    let mut out = match &img.config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ if img.os == "windows" => vec!["cmd".into(), "/S".into(), "/C".into()],
        _ => vec!["/bin/sh".into(), "-c".into()],
    };
    out.push(args.join(" "));
    out
}

/// What BuildKit does to the target stage's config at the end: `--label`s, the
/// requested platform stamped on when one was asked for, the platform normalised
/// (`arm64/v8` -> `arm64`).
pub fn finalize(
    img: &mut Image,
    target: &Platform,
    explicit_platform: bool,
    labels: &BTreeMap<String, String>,
) {
    for (k, v) in labels {
        img.config.labels.insert(k.clone(), v.clone());
    }
    if explicit_platform {
        let same = target.os == img.os && target.architecture == img.architecture;
        img.os = target.os.clone();
        img.architecture = target.architecture.clone();
        if !target.variant.is_empty() || !same {
            img.variant = target.variant.clone();
        }
        if !target.os_version.is_empty() || !same {
            img.os_version = target.os_version.clone();
        }
        if !target.os_features.is_empty() {
            img.os_features = target.os_features.clone();
        }
    }
    let p = img.platform().normalize();
    img.os = p.os;
    img.architecture = p.architecture;
    img.variant = p.variant;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (1_500_000, "1.5ms"),
            (2_000, "2µs"),
            (7, "7ns"),
        ] {
            assert_eq!(go_duration(ns), want);
        }
    }

    #[test]
    fn quoting_like_go() {
        let v = vec!["/bin/sh".to_string(), "-c".into(), "ls \"/tmp\"\n".into()];
        assert_eq!(go_quote_list(&v), r#"["/bin/sh" "-c" "ls \"/tmp\"\n"]"#);
        assert_eq!(go_list(&v[..2]), "[/bin/sh -c]");
    }

    #[test]
    fn ports() {
        let p = |s: &[&str]| parse_ports(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["80"]).unwrap(), vec!["80/tcp"]);
        assert_eq!(p(&["53/UDP"]).unwrap(), vec!["53/udp"]);
        assert_eq!(p(&["8000-8002/tcp"]).unwrap().len(), 3);
        assert_eq!(p(&["127.0.0.1:80:8080"]).unwrap(), vec!["8080/tcp"]);
        assert!(p(&["x"]).is_err());
        assert!(p(&["80/foo"]).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("/srv", "app", false), "/srv/app");
        assert_eq!(
            normalize_path("/srv/app", "../data/./x", false),
            "/srv/data/x"
        );
        assert_eq!(normalize_path("/srv", "/srv/app/", false), "/srv/app/");
        assert_eq!(dest_path("/srv/app", "."), "/srv/app/");
        assert_eq!(dest_path("/srv/app", "rel/"), "/srv/app/rel/");
        assert_eq!(dest_path("/srv/app/sub", "../up.txt"), "/srv/app/up.txt");
        assert_eq!(dest_path("/", "/x"), "/x");
        assert_eq!(clean_path("/a/../../b/"), "/b");
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn signals() {
        assert!(check_signal("9").is_ok());
        assert!(check_signal("SIGTERM").is_ok());
        assert!(check_signal("sigrtmin+3").is_ok());
        assert!(check_signal("0").is_err());
        assert!(check_signal("NOPE").is_err());
    }

    #[test]
    fn scratch_config() {
        let img = empty_image(&Platform::new("linux", "amd64", ""));
        assert_eq!(img.config.env, vec![format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(img.config.working_dir, "/");
    }
}
