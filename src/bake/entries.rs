//! The structured list attributes of a target, in their string (`type=x,k=v`) and object
//! forms: attestations, cache imports/exports, outputs, secrets, ssh, policies.
//! Parsing, merging, de-duplication and JSON follow buildx.

use super::csv;
use super::eval::convert::convert;
use super::eval::value::{Type, Value};
use super::eval::varenv::parse_bool;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, String>;

fn kv_fields(s: &str) -> Result<Vec<String>> {
    csv::fields(s, ',')
}

/// Elements of a list attribute, skipping empty strings and unknowns (as buildx does).
fn elements(v: &Value, want: &str) -> Result<Vec<Value>> {
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Ok(items
            .iter()
            .filter(|e| !e.is_unknown() && e.as_str() != Some(""))
            .cloned()
            .collect()),
        other => Err(format!(
            "{want} required, but have {}",
            other.type_of().friendly_name()
        )),
    }
}

fn string_map(v: &Value) -> Result<BTreeMap<String, String>> {
    let conv = convert(v, &Type::Map(Box::new(Type::String))).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    if let Some(m) = conv.as_entries() {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_string());
            }
        }
    }
    Ok(out)
}

/// `attest` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Attest {
    pub typ: String,
    pub disabled: bool,
    pub attrs: BTreeMap<String, String>,
}

impl Attest {
    pub fn parse(s: &str) -> Result<Attest> {
        let mut a = Attest {
            typ: String::new(),
            disabled: false,
            attrs: BTreeMap::new(),
        };
        for field in kv_fields(s)? {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid value {field}"))?;
            match k.trim().to_lowercase().as_str() {
                "type" => a.typ = v.to_string(),
                "disabled" => {
                    a.disabled = parse_bool(v).ok_or_else(|| {
                        format!(
                        "invalid value {field}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                    )
                    })?
                }
                _ => {
                    a.attrs.insert(k.to_string(), v.to_string());
                }
            }
        }
        if a.typ.is_empty() {
            return Err("attestation type not specified".into());
        }
        Ok(a)
    }

    fn from_value(v: &Value) -> Result<Attest> {
        if let Value::String(s) = v {
            return Attest::parse(s);
        }
        let mut a = Attest {
            typ: String::new(),
            disabled: false,
            attrs: BTreeMap::new(),
        };
        for (k, val) in string_map(v)? {
            match k.as_str() {
                "type" => a.typ = val,
                "disabled" => {
                    a.disabled = parse_bool(&val).ok_or_else(|| {
                        format!("strconv.ParseBool: parsing {val:?}: invalid syntax")
                    })?
                }
                _ => {
                    a.attrs.insert(k, val);
                }
            }
        }
        Ok(a)
    }

    pub fn to_json(&self) -> Json {
        let mut m: BTreeMap<String, Json> = self
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        m.insert("type".into(), Json::String(self.typ.clone()));
        if self.disabled {
            m.insert("disabled".into(), Json::Bool(true));
        }
        Json::Object(m.into_iter().collect())
    }

    /// The entry as a string, buildx's `CanonicalizeAttest` input form.
    pub fn canonical(typ: &str, input: &str) -> String {
        if input.is_empty() {
            return String::new();
        }
        match parse_bool(input) {
            Some(b) => format!("type={typ},disabled={}", !b),
            None => format!("type={typ},{input}"),
        }
    }
}

pub fn parse_attests(v: &Value) -> Result<Vec<Attest>> {
    elements(v, "list of map of string")?
        .iter()
        .map(Attest::from_value)
        .collect()
}

/// Later entries of the same type replace earlier ones, in place.
pub fn dedup_attests(list: Vec<Attest>) -> Vec<Attest> {
    let mut out: Vec<Attest> = Vec::new();
    for a in list {
        match out.iter().position(|o| o.typ == a.typ) {
            Some(i) => out[i] = a,
            None => out.push(a),
        }
    }
    out
}

/// `cache-from` / `cache-to` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    pub typ: String,
    pub attrs: BTreeMap<String, String>,
}

impl CacheEntry {
    fn parse_one(s: &str) -> Result<CacheEntry> {
        let fields = kv_fields(s)?;
        if fields.len() == 1 && !fields[0].contains('=') {
            return Ok(CacheEntry {
                typ: "registry".into(),
                attrs: [("ref".to_string(), fields[0].clone())]
                    .into_iter()
                    .collect(),
            });
        }
        let mut e = CacheEntry {
            typ: String::new(),
            attrs: BTreeMap::new(),
        };
        for field in fields {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid value {field}"))?;
            match k.to_lowercase().as_str() {
                "type" => e.typ = v.to_string(),
                key => {
                    e.attrs.insert(key.to_string(), v.to_string());
                }
            }
        }
        if e.typ.is_empty() {
            return Err(format!("type required for {s:?}"));
        }
        Ok(e)
    }

    /// buildx's `ParseCacheEntry`: a value without `=` may list several refs.
    pub fn parse(s: &str) -> Result<Vec<CacheEntry>> {
        if s.is_empty() {
            return Ok(Vec::new());
        }
        if !s.contains('=') {
            return kv_fields(s)?
                .iter()
                .map(|f| CacheEntry::parse_one(f))
                .collect();
        }
        Ok(vec![CacheEntry::parse_one(s)?])
    }

    fn from_value(v: &Value) -> Result<Vec<CacheEntry>> {
        if let Value::String(s) = v {
            return CacheEntry::parse(s);
        }
        let mut attrs = string_map(v)?;
        let typ = attrs.remove("type").unwrap_or_default();
        if typ.is_empty() {
            let shown =
                serde_json::to_string(&super::eval::varenv::value_to_json(v)).unwrap_or_default();
            return Err(format!("type required for {shown:?}"));
        }
        Ok(vec![CacheEntry { typ, attrs }])
    }

    pub fn to_json(&self) -> Json {
        let mut m: BTreeMap<String, Json> = self
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        m.insert("type".into(), Json::String(self.typ.clone()));
        Json::Object(m.into_iter().collect())
    }
}

pub fn parse_cache(v: &Value) -> Result<Vec<CacheEntry>> {
    let mut out = Vec::new();
    for e in elements(v, "list of map of string")? {
        out.extend(CacheEntry::from_value(&e)?);
    }
    Ok(out)
}

/// `output` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportEntry {
    pub typ: String,
    pub attrs: BTreeMap<String, String>,
    pub dest: String,
}

impl ExportEntry {
    pub fn parse(s: &str) -> Result<ExportEntry> {
        let fields = kv_fields(s)?;
        let mut e = ExportEntry {
            typ: String::new(),
            attrs: BTreeMap::new(),
            dest: String::new(),
        };
        if fields.len() == 1 && fields[0] == s && !s.starts_with("type=") {
            e.typ = if s == "-" { "tar" } else { "local" }.into();
            e.dest = s.to_string();
            return Ok(e);
        }
        for field in fields {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid value {field}"))?;
            match k.trim().to_lowercase().as_str() {
                "type" => e.typ = v.to_string(),
                "dest" => e.dest = v.to_string(),
                key => {
                    e.attrs.insert(key.to_string(), v.to_string());
                }
            }
        }
        if e.typ.is_empty() {
            return Err("type is required for output".into());
        }
        Ok(e)
    }

    fn from_value(v: &Value) -> Result<ExportEntry> {
        if let Value::String(s) = v {
            return ExportEntry::parse(s);
        }
        let mut attrs = string_map(v)?;
        let typ = attrs.remove("type").unwrap_or_default();
        let dest = attrs.remove("dest").unwrap_or_default();
        if typ.is_empty() {
            return Err("type is required for output".into());
        }
        Ok(ExportEntry { typ, attrs, dest })
    }

    pub fn to_json(&self) -> Json {
        let mut m: BTreeMap<String, Json> = self
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        m.insert("type".into(), Json::String(self.typ.clone()));
        if !self.dest.is_empty() {
            m.insert("dest".into(), Json::String(self.dest.clone()));
        }
        Json::Object(m.into_iter().collect())
    }
}

pub fn parse_outputs(v: &Value) -> Result<Vec<ExportEntry>> {
    elements(v, "list of map of string")?
        .iter()
        .map(ExportEntry::from_value)
        .collect()
}

/// buildx's `removeDupes`: keeps the first of equal entries, moving the last entry into
/// the place of each removed one (the order this gives is part of the output).
pub fn remove_dupes<T: PartialEq>(mut s: Vec<T>) -> Vec<T> {
    if s.len() < 2 {
        return s;
    }
    let mut i = s.len() as isize - 2;
    while i >= 0 {
        let iu = i as usize;
        let mut j = iu + 1;
        while j < s.len() {
            if s[iu] == s[j] {
                let last = s.len() - 1;
                s.swap(j, last);
                s.truncate(last);
                break;
            }
            j += 1;
        }
        i -= 1;
    }
    s
}

/// `secret` entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Secret {
    pub id: String,
    pub src: String,
    pub env: String,
}

impl Secret {
    pub fn parse(s: &str) -> Result<Secret> {
        let fields = kv_fields(s).map_err(|e| format!("failed to parse csv secret: {e}"))?;
        let mut sec = Secret::default();
        let mut typ = String::new();
        for field in fields {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))?;
            let key = k.to_lowercase();
            match key.as_str() {
                "type" => {
                    if v != "file" && v != "env" {
                        return Err(format!("unsupported secret type {v:?}"));
                    }
                    typ = v.to_string();
                }
                "id" => sec.id = v.to_string(),
                "source" | "src" => sec.src = v.to_string(),
                "env" => sec.env = v.to_string(),
                _ => return Err(format!("unexpected key '{key}' in '{field}'")),
            }
        }
        if typ == "env" && sec.env.is_empty() {
            sec.env = std::mem::take(&mut sec.src);
        }
        Ok(sec)
    }

    fn from_value(v: &Value) -> Result<Secret> {
        if let Value::String(s) = v {
            return Secret::parse(s);
        }
        let m = string_map(v)?;
        Ok(Secret {
            id: m.get("id").cloned().unwrap_or_default(),
            src: m.get("src").cloned().unwrap_or_default(),
            env: m.get("env").cloned().unwrap_or_default(),
        })
    }

    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        if !self.id.is_empty() {
            m.insert("id".into(), json!(self.id));
        }
        if !self.src.is_empty() {
            m.insert("src".into(), json!(self.src));
        }
        if !self.env.is_empty() {
            m.insert("env".into(), json!(self.env));
        }
        Json::Object(m)
    }
}

pub fn parse_secrets(v: &Value) -> Result<Vec<Secret>> {
    elements(v, "list of object")?
        .iter()
        .map(Secret::from_value)
        .collect()
}

/// Later entries with the same id replace earlier ones, in place.
pub fn dedup_by_id<T: Clone>(list: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in list {
        match out.iter().position(|o| id(o) == id(&item)) {
            Some(i) => out[i] = item,
            None => out.push(item),
        }
    }
    out
}

/// `ssh` entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ssh {
    pub id: String,
    pub paths: Vec<String>,
}

impl Ssh {
    pub fn parse(s: &str) -> Ssh {
        match s.split_once('=') {
            Some((id, paths)) => Ssh {
                id: id.to_string(),
                paths: paths.split(',').map(str::to_string).collect(),
            },
            None => Ssh {
                id: s.to_string(),
                paths: Vec::new(),
            },
        }
    }

    fn from_value(v: &Value) -> Result<Ssh> {
        if let Value::String(s) = v {
            return Ok(Ssh::parse(s));
        }
        let m = v
            .as_entries()
            .ok_or_else(|| "object required".to_string())?;
        let id = match m.get("id") {
            Some(Value::Null(_)) | None => String::new(),
            Some(x) => convert(x, &Type::String)
                .map_err(|e| e.to_string())?
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let paths = match m.get("paths") {
            Some(Value::Null(_)) | None => Vec::new(),
            Some(x) => {
                let l =
                    convert(x, &Type::List(Box::new(Type::String))).map_err(|e| e.to_string())?;
                l.as_seq()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            }
        };
        Ok(Ssh { id, paths })
    }

    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        if !self.id.is_empty() {
            m.insert("id".into(), json!(self.id));
        }
        if !self.paths.is_empty() {
            m.insert("paths".into(), json!(self.paths));
        }
        Json::Object(m)
    }
}

pub fn parse_ssh(v: &Value) -> Result<Vec<Ssh>> {
    elements(v, "list of object")?
        .iter()
        .map(Ssh::from_value)
        .collect()
}

/// `policy` entries (source policy evaluation options).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub files: Vec<String>,
    pub reset: bool,
    pub disabled: bool,
    pub strict: Option<bool>,
    pub log_level: Option<String>,
}

const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
];

impl Policy {
    pub fn parse(s: &str) -> Result<Policy> {
        let mut p = Policy::default();
        for field in kv_fields(s)? {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid value {field}"))?;
            let bad = || format!("invalid value {field}");
            match k.trim().to_lowercase().as_str() {
                "filename" if !v.is_empty() => p.files.push(v.to_string()),
                "reset" => p.reset = parse_bool(v).ok_or_else(bad)?,
                "disabled" => p.disabled = parse_bool(v).ok_or_else(bad)?,
                "strict" => p.strict = Some(parse_bool(v).ok_or_else(bad)?),
                "log-level" if LOG_LEVELS.contains(&v.to_lowercase().as_str()) => {
                    p.log_level = Some(v.to_lowercase())
                }
                _ => return Err(bad()),
            }
        }
        Ok(p)
    }

    fn from_value(v: &Value) -> Result<Policy> {
        if let Value::String(s) = v {
            return Policy::parse(s);
        }
        let m = string_map(v)?;
        let s: Vec<String> = m.iter().map(|(k, v)| csv::pair(k, v)).collect();
        Policy::parse(&s.join(","))
    }

    pub fn to_json(&self) -> Json {
        let level_num = |l: &str| match l {
            "panic" => 0,
            "fatal" => 1,
            "error" => 2,
            "warn" | "warning" => 3,
            "info" => 4,
            "debug" => 5,
            _ => 6,
        };
        json!({
            "Files": if self.files.is_empty() { Json::Null } else {
                Json::Array(self.files.iter().map(|f| json!({"Filename": f, "Data": null})).collect())
            },
            "Reset": self.reset,
            "Disabled": self.disabled,
            "Strict": self.strict,
            "LogLevel": self.log_level.as_deref().map(level_num),
        })
    }
}

pub fn parse_policies(v: &Value) -> Result<Vec<Policy>> {
    elements(v, "list of object")?
        .iter()
        .map(Policy::from_value)
        .collect()
}

const RESOURCE_KEYS: &[&str] = &[
    "memory",
    "memory-swap",
    "cpu-shares",
    "cpu-period",
    "cpu-quota",
    "cpuset-cpus",
    "cpuset-mems",
];

/// `resources` limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

impl Resources {
    pub fn set_field(&mut self, name: &str, value: &str) -> Result<()> {
        let int = || {
            value
                .parse::<i64>()
                .map_err(|_| format!("invalid value {value} for int64 key resources.{name}"))
        };
        match name {
            "memory" => self.memory = Some(value.to_string()),
            "memory-swap" => self.memory_swap = Some(value.to_string()),
            "cpu-shares" => self.cpu_shares = Some(int()?),
            "cpu-period" => self.cpu_period = Some(int()?),
            "cpu-quota" => self.cpu_quota = Some(int()?),
            "cpuset-cpus" => self.cpuset_cpus = Some(value.to_string()),
            "cpuset-mems" => self.cpuset_mems = Some(value.to_string()),
            _ => return Err(format!("unknown resources key {name}")),
        }
        Ok(())
    }

    pub fn from_value(v: &Value) -> Result<Resources> {
        let m = v
            .as_entries()
            .ok_or_else(|| format!("object required, but have {}", v.type_of().friendly_name()))?;
        let mut r = Resources::default();
        for (k, val) in m {
            if val.is_null() {
                continue;
            }
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "string required, but have {}",
                        other.type_of().friendly_name()
                    ))
                }
            };
            // Unknown keys are ignored in the file (but rejected by `--set`).
            if r.set_field(k, &text).is_err() && RESOURCE_KEYS.contains(&k.as_str()) {
                r.set_field(k, &text)?;
            }
        }
        Ok(r)
    }

    pub fn merge(&mut self, o: &Resources) {
        macro_rules! take {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f.clone(); } )* };
        }
        take!(
            memory,
            memory_swap,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems
        );
    }

    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Json>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put("memory", self.memory.clone().map(Json::String));
        put("memory-swap", self.memory_swap.clone().map(Json::String));
        put("cpu-shares", self.cpu_shares.map(Json::from));
        put("cpu-period", self.cpu_period.map(Json::from));
        put("cpu-quota", self.cpu_quota.map(Json::from));
        put("cpuset-cpus", self.cpuset_cpus.clone().map(Json::String));
        put("cpuset-mems", self.cpuset_mems.clone().map(Json::String));
        Json::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_shorthand_is_registry_refs() {
        let e = CacheEntry::parse("user/app:cache,user/app:cache2").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].typ, "registry");
        assert_eq!(e[1].attrs["ref"], "user/app:cache2");
        assert!(CacheEntry::parse("ref=x").is_err());
    }

    #[test]
    fn output_shorthand_is_local_dir() {
        let e = ExportEntry::parse("./out").unwrap();
        assert_eq!((e.typ.as_str(), e.dest.as_str()), ("local", "./out"));
        let t = ExportEntry::parse("-").unwrap();
        assert_eq!(t.typ, "tar");
    }

    #[test]
    fn remove_dupes_matches_buildx_order() {
        assert_eq!(remove_dupes(vec![1, 2, 1, 3]), vec![1, 2, 3]);
        assert_eq!(remove_dupes(vec![1, 1, 2, 3]), vec![1, 3, 2]);
    }

    #[test]
    fn secret_env_type() {
        let s = Secret::parse("type=env,id=A,src=B").unwrap();
        assert_eq!(s.env, "B");
        assert!(s.src.is_empty());
        assert!(Secret::parse("id=A,foo=b").is_err());
    }
}
