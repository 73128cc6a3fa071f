//! `RUN --mount=...`: CSV fields `key=value` (quoted fields allowed), parsed as BuildKit
//! does. Values may hold variables, so the engine parses each spec with
//! [`Mount::parse`] and its expander at dispatch time; [`Mount::check_unexpanded`] runs
//! the checks BuildKit makes when the Dockerfile is read.

use super::super::error::{suggest, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// Cache sharing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// `from=`: a stage name, image or named context.
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: bool,
    /// tmpfs `size=` in bytes (0: unlimited).
    pub size_limit: u64,
    /// `id=` (cache id or secret/ssh id).
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    /// secret `env=`: expose the secret as this environment variable.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Splits one CSV record: commas separate fields; a field that starts with `"` is quoted
/// and `""` inside it is a quote.
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => i += 1,
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
            fields.push(field);
            continue;
        }
        while let Some(c) = chars.get(i) {
            match c {
                ',' => break,
                '"' => return Err("bare \" in non-quoted-field".into()),
                c => field.push(*c),
            }
            i += 1;
        }
        fields.push(field);
        if i >= chars.len() {
            return Ok(fields);
        }
        i += 1;
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ErrorKind> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ErrorKind::Mount(format!("invalid value for {key}: {v}"))),
    }
}

/// Docker's `units.RAMInBytes`: `64m`, `1.5g`, `512KiB`... (binary multiples).
pub(crate) fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => return None,
            };
            (&t[..t.len() - 1], m)
        }
        _ => (t, 1),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty()
        || !num.chars().all(|c| c.is_ascii_digit() || c == '.')
        || num.starts_with('.')
    {
        return None;
    }
    let f: f64 = num.parse().ok()?;
    Some((f * mult as f64) as u64)
}

impl Mount {
    /// The checks BuildKit makes before expansion: the CSV must be valid and `from=`
    /// must not use variables.
    pub fn check_unexpanded(spec: &str) -> Result<(), ErrorKind> {
        let fields = csv_fields(spec)
            .map_err(|e| ErrorKind::Mount(format!("failed to parse csv mounts: {e}")))?;
        for f in fields {
            if let Some((k, v)) = f.split_once('=') {
                if k.eq_ignore_ascii_case("from") {
                    if let Some(idx) = v.find('$') {
                        if idx != v.len() - 1 {
                            return Err(ErrorKind::Mount(
                                "'from' doesn't support variable expansion, define alias stage instead".into(),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses one `--mount` value; `expand` is applied to every value (pass the identity
    /// when there is nothing to expand).
    pub fn parse(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, ErrorKind>,
    ) -> Result<Mount, ErrorKind> {
        let fields = csv_fields(spec)
            .map_err(|e| ErrorKind::Mount(format!("failed to parse csv mounts: {e}")))?;
        let mut m = Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            read_only: false,
            size_limit: 0,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        };
        let mut ro_auto = true;
        let err = |s: String| ErrorKind::Mount(s);
        for field in fields {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
                None => (field.to_ascii_lowercase(), None),
            };
            let Some(value) = value else {
                match key.as_str() {
                    "readonly" | "ro" => {
                        m.read_only = true;
                        ro_auto = false;
                    }
                    "readwrite" | "rw" => {
                        m.read_only = false;
                        ro_auto = false;
                    }
                    "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                        m.required = true
                    }
                    "required" => {
                        return Err(err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        )))
                    }
                    _ => {
                        return Err(err(format!(
                            "invalid field '{field}' must be a key=value pair"
                        )))
                    }
                }
                continue;
            };
            let value = expand(&value)?;
            match key.as_str() {
                "type" => {
                    m.kind = match value.to_ascii_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => {
                            let s =
                                suggest(&value, &["bind", "cache", "tmpfs", "secret", "ssh"], true);
                            let hint = s
                                .map(|s| format!(" (did you mean {s}?)"))
                                .unwrap_or_default();
                            return Err(err(format!("unsupported mount type {value:?}{hint}")));
                        }
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => {
                    m.read_only = parse_bool(&key, &value)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = !parse_bool(&key, &value)?;
                    ro_auto = false;
                }
                "required" => {
                    if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        return Err(err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        )));
                    }
                    m.required = parse_bool(&key, &value)?;
                }
                "size" => {
                    if m.kind != MountType::Tmpfs {
                        return Err(err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        )));
                    }
                    m.size_limit = ram_in_bytes(&value)
                        .ok_or_else(|| err(format!("invalid value for {key}: {value}")))?;
                }
                "id" => m.id = Some(value),
                "sharing" => {
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        _ => return Err(err(format!("unsupported sharing value {value:?}"))),
                    })
                }
                "mode" => {
                    m.mode = Some(
                        u32::from_str_radix(&value, 8)
                            .map_err(|_| err(format!("invalid value {value} for mode")))?,
                    )
                }
                "uid" => {
                    m.uid = Some(
                        value
                            .parse()
                            .map_err(|_| err(format!("invalid value {value} for uid")))?,
                    )
                }
                "gid" => {
                    m.gid = Some(
                        value
                            .parse()
                            .map_err(|_| err(format!("invalid value {value} for gid")))?,
                    )
                }
                "env" => m.env = Some(value),
                _ => {
                    let s = suggest(&key, ALL_KEYS, true);
                    let hint = s
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    return Err(err(format!("unexpected key '{key}' in '{field}'{hint}")));
                }
            }
        }
        let file_info_allowed = matches!(
            m.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        if !file_info_allowed {
            let kind = m.kind.as_str();
            if m.mode.is_some() {
                return Err(err(format!("mode not allowed for \"{kind}\" type mounts")));
            }
            if m.uid.is_some() {
                return Err(err(format!("uid not allowed for \"{kind}\" type mounts")));
            }
            if m.gid.is_some() {
                return Err(err(format!("gid not allowed for \"{kind}\" type mounts")));
            }
        }
        if ro_auto {
            m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        if m.kind == MountType::Secret {
            if m.from.as_deref().is_some_and(|f| !f.is_empty()) {
                return Err(err("secret mount should not have a from".into()));
            }
            if m.sharing.is_some() {
                return Err(err("secret mount should not define sharing".into()));
            }
            let empty = |o: &Option<String>| o.as_deref().unwrap_or("").is_empty();
            if empty(&m.source) && empty(&m.target) && empty(&m.id) {
                return Err(err(
                    "invalid secret mount. one of source, target required".into()
                ));
            }
            if !empty(&m.source) && !empty(&m.id) {
                return Err(err("both source and id can't be set".into()));
            }
        }
        if m.sharing.is_some() && m.kind != MountType::Cache {
            return Err(err(format!(
                "invalid cache sharing set for {} mount",
                m.kind.as_str()
            )));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Mount, ErrorKind> {
        Mount::parse(s, &mut |v| Ok(v.to_string()))
    }

    #[test]
    fn csv() {
        assert_eq!(
            csv_fields("a=1,b=2"),
            Ok(vec!["a=1".to_string(), "b=2".to_string()])
        );
        assert_eq!(
            csv_fields("\"src=a,b\",dst=/x"),
            Ok(vec!["src=a,b".to_string(), "dst=/x".to_string()])
        );
        assert_eq!(csv_fields("\"a\"\"b\""), Ok(vec!["a\"b".to_string()]));
        assert!(csv_fields("a\"b").is_err());
        assert!(csv_fields("\"open").is_err());
    }

    #[test]
    fn mount_kinds_and_defaults() {
        let m = parse("type=cache,target=/c,id=x,uid=1000,gid=1000,mode=0700,sharing=locked")
            .expect("cache");
        assert_eq!(
            (m.kind, m.read_only, m.mode, m.uid, m.sharing),
            (
                MountType::Cache,
                false,
                Some(0o700),
                Some(1000),
                Some(Sharing::Locked)
            )
        );
        let b = parse("target=/src").expect("bind");
        assert_eq!((b.kind, b.read_only), (MountType::Bind, true));
        let rw = parse("type=bind,source=dir,target=/d,rw").expect("rw");
        assert!(!rw.read_only);
        let s = parse("type=secret,id=mysecret,target=/etc/app/key,mode=0400,uid=1000")
            .expect("secret");
        assert_eq!(
            (s.kind, s.id.as_deref(), s.read_only),
            (MountType::Secret, Some("mysecret"), true)
        );
        let t = parse("type=tmpfs,target=/t,size=64m").expect("tmpfs");
        assert_eq!((t.size_limit, t.read_only), (64 << 20, false));
        let r = parse("type=ssh,required").expect("ssh");
        assert!(r.required);
        let f = parse("type=bind,from=img:1,source=/etc,target=/e").expect("from");
        assert_eq!(f.from.as_deref(), Some("img:1"));
    }

    #[test]
    fn mount_errors() {
        let cases: &[(&str, &str)] = &[
            ("type=volume,target=/x", "unsupported mount type \"volume\""),
            (
                "type=bind,target=/x,mode=0700",
                "mode not allowed for \"bind\" type mounts",
            ),
            (
                "type=bind,required",
                "unexpected key 'required' for mount type 'bind'",
            ),
            (
                "type=cache,size=1m",
                "unexpected key 'size' for mount type 'cache'",
            ),
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            (
                "type=tmpfs,sharing=locked",
                "invalid cache sharing set for tmpfs mount",
            ),
            (
                "type=cache,targte=/x",
                "unexpected key 'targte' in 'targte=/x' (did you mean target?)",
            ),
            ("type=cache,uid=x", "invalid value x for uid"),
            (
                "type=cache,bogus",
                "invalid field 'bogus' must be a key=value pair",
            ),
            ("type=cache,ro=maybe", "invalid value for ro: maybe"),
        ];
        for (spec, msg) in cases {
            let e = parse(spec).err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some(*msg), "{spec}");
        }
        assert!(Mount::check_unexpanded("type=bind,from=$X,target=/x").is_err());
        assert!(Mount::check_unexpanded("type=bind,from=x$,target=/x").is_ok());
        assert!(Mount::check_unexpanded("type=cache,id=$X,target=/x").is_ok());
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5m"), Some(1536 * 1024));
        assert_eq!(ram_in_bytes("2GiB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("x"), None);
    }
}
