//! The bake model: targets and groups with buildx's field names, decoded from evaluated
//! attribute values, merged (`inherits`, repeated definitions) and printed as buildx does.

use super::entries::{self, Attest, CacheEntry, ExportEntry, Policy, Resources, Secret, Ssh};
use super::eval::convert::convert;
use super::eval::value::{Type, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Attributes a target block accepts (besides `matrix` and `name`).
pub const TARGET_FIELDS: &[&str] = &[
    "description",
    "inherits",
    "annotations",
    "attest",
    "context",
    "contexts",
    "dockerfile",
    "dockerfile-inline",
    "args",
    "labels",
    "tags",
    "cache-from",
    "cache-to",
    "target",
    "secret",
    "ssh",
    "platforms",
    "output",
    "pull",
    "no-cache",
    "network",
    "no-cache-filter",
    "shm-size",
    "ulimits",
    "resources",
    "call",
    "entitlements",
    "extra-hosts",
    "policy",
];

pub const GROUP_FIELDS: &[&str] = &["description", "targets"];

pub fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "target" => TARGET_FIELDS,
        "group" => GROUP_FIELDS,
        _ => &[],
    }
}

/// A value as a referencing expression sees it (`target.x.args`): converted to the field's
/// type where that is a plain type.
pub fn field_value(kind: &str, field: &str, v: Value) -> Value {
    let string_list = Type::List(Box::new(Type::String));
    let want = match (kind, field) {
        ("target", "args" | "labels" | "contexts" | "extra-hosts") => {
            Some(Type::Map(Box::new(Type::String)))
        }
        (
            "target",
            "tags" | "platforms" | "inherits" | "annotations" | "no-cache-filter" | "ulimits"
            | "entitlements",
        )
        | ("group", "targets") => Some(string_list),
        ("target", "pull" | "no-cache") => Some(Type::Bool),
        (
            "target",
            "context" | "dockerfile" | "dockerfile-inline" | "target" | "network" | "shm-size"
            | "call" | "description",
        )
        | ("group", "description") => Some(Type::String),
        _ => None,
    };
    match want {
        Some(t) => convert(&v, &t).unwrap_or(v),
        None => v,
    }
}

/// A target, as buildx's `Target` struct. `None` = not set (Go nil).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub name: String,
    pub description: String,
    pub inherits: Vec<String>,
    pub annotations: Option<Vec<String>>,
    pub attest: Option<Vec<Attest>>,
    pub context: Option<String>,
    pub contexts: Option<BTreeMap<String, String>>,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub args: Option<BTreeMap<String, Option<String>>>,
    pub labels: Option<BTreeMap<String, Option<String>>>,
    pub tags: Option<Vec<String>>,
    pub cache_from: Option<Vec<CacheEntry>>,
    pub cache_to: Option<Vec<CacheEntry>>,
    pub target: Option<String>,
    pub secret: Option<Vec<Secret>>,
    pub ssh: Option<Vec<Ssh>>,
    pub platforms: Option<Vec<String>>,
    pub output: Option<Vec<ExportEntry>>,
    pub pull: Option<bool>,
    pub no_cache: Option<bool>,
    pub network: Option<String>,
    pub no_cache_filter: Option<Vec<String>>,
    pub shm_size: Option<String>,
    pub ulimits: Option<Vec<String>>,
    pub resources: Option<Resources>,
    pub call: Option<String>,
    pub entitlements: Option<Vec<String>>,
    pub extra_hosts: Option<BTreeMap<String, Option<String>>>,
    pub policy: Option<Vec<Policy>>,
    /// Source file directory of the block that set `context` (for relative paths).
    pub context_base: Option<String>,
    /// Source file directory of the block (for file-relative paths).
    pub default_context_base: Option<String>,
    /// `context = target.x.context`: the target it came from.
    pub context_base_ref: Option<String>,
    pub contexts_base: BTreeMap<String, String>,
    /// Used only as a `target:` context dependency of a requested target.
    pub linked: bool,
    /// With file-relative paths and no `context`, the context is the file's directory.
    pub use_file_relative: bool,
}

/// A group of targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub targets: Vec<String>,
}

/// A decoding error for one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn ferr(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn conv(field: &str, v: &Value, t: Type) -> Result<Value, FieldError> {
    convert(v, &t).map_err(|e| ferr(field, format!("Unsuitable value: {e}")))
}

fn opt_string(field: &str, v: &Value) -> Result<Option<String>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(conv(field, v, Type::String)?.as_str().map(str::to_string))
}

fn string_list(field: &str, v: &Value) -> Result<Option<Vec<String>>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    let l = conv(field, v, Type::List(Box::new(Type::String)))?;
    Ok(Some(
        l.as_seq()
            .unwrap_or_default()
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_string())
            .collect(),
    ))
}

fn nullable_map(
    field: &str,
    v: &Value,
) -> Result<Option<BTreeMap<String, Option<String>>>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    let m = conv(field, v, Type::Map(Box::new(Type::String)))?;
    Ok(Some(
        m.as_entries()
            .map(|e| {
                e.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
                    .collect()
            })
            .unwrap_or_default(),
    ))
}

fn opt_bool(field: &str, v: &Value) -> Result<Option<bool>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    match conv(field, v, Type::Bool)? {
        Value::Bool(b) => Ok(Some(b)),
        _ => Ok(None),
    }
}

fn entries<T>(
    field: &str,
    v: &Value,
    parse: fn(&Value) -> Result<Vec<T>, String>,
) -> Result<Option<Vec<T>>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    parse(v).map(Some).map_err(|m| ferr(field, m))
}

impl Target {
    /// Sets one attribute from its evaluated value.
    pub fn set_field(&mut self, field: &str, v: &Value) -> Result<(), FieldError> {
        match field {
            "description" => self.description = opt_string(field, v)?.unwrap_or_default(),
            "inherits" => self.inherits = string_list(field, v)?.unwrap_or_default(),
            "annotations" => self.annotations = string_list(field, v)?,
            "attest" => self.attest = entries(field, v, entries::parse_attests)?,
            "context" => self.context = opt_string(field, v)?,
            "contexts" => {
                self.contexts = nullable_map(field, v)?.map(|m| {
                    m.into_iter()
                        .map(|(k, v)| (k, v.unwrap_or_default()))
                        .collect()
                })
            }
            "dockerfile" => self.dockerfile = opt_string(field, v)?,
            "dockerfile-inline" => self.dockerfile_inline = opt_string(field, v)?,
            "args" => self.args = nullable_map(field, v)?,
            "labels" => self.labels = nullable_map(field, v)?,
            "tags" => self.tags = string_list(field, v)?,
            "cache-from" => self.cache_from = entries(field, v, entries::parse_cache)?,
            "cache-to" => self.cache_to = entries(field, v, entries::parse_cache)?,
            "target" => self.target = opt_string(field, v)?,
            "secret" => self.secret = entries(field, v, entries::parse_secrets)?,
            "ssh" => self.ssh = entries(field, v, entries::parse_ssh)?,
            "platforms" => self.platforms = string_list(field, v)?,
            "output" => self.output = entries(field, v, entries::parse_outputs)?,
            "pull" => self.pull = opt_bool(field, v)?,
            "no-cache" => self.no_cache = opt_bool(field, v)?,
            "network" => self.network = opt_string(field, v)?,
            "no-cache-filter" => self.no_cache_filter = string_list(field, v)?,
            "shm-size" => self.shm_size = opt_string(field, v)?,
            "ulimits" => self.ulimits = string_list(field, v)?,
            "resources" => {
                self.resources = if v.is_null() {
                    None
                } else {
                    Some(Resources::from_value(v).map_err(|m| ferr(field, m))?)
                }
            }
            "call" => self.call = opt_string(field, v)?,
            "entitlements" => self.entitlements = string_list(field, v)?,
            "extra-hosts" => self.extra_hosts = nullable_map(field, v)?,
            "policy" => self.policy = entries(field, v, entries::parse_policies)?,
            other => return Err(ferr(other, "unknown attribute")),
        }
        Ok(())
    }

    /// buildx's `Target.Merge`: `other`'s set fields override or extend this one's.
    pub fn merge(&mut self, o: &Target) {
        if o.default_context_base.is_some() {
            self.default_context_base = o.default_context_base.clone();
            self.use_file_relative = o.use_file_relative;
        }
        if o.context.is_some() {
            self.context = o.context.clone();
            self.context_base = o.context_base.clone();
            self.context_base_ref = o.context_base_ref.clone();
        }
        if o.dockerfile.is_some() {
            self.dockerfile = o.dockerfile.clone();
        }
        if o.dockerfile_inline.is_some() {
            self.dockerfile_inline = o.dockerfile_inline.clone();
        }
        merge_map(&mut self.args, &o.args);
        if let Some(c) = &o.contexts {
            let mine = self.contexts.get_or_insert_with(BTreeMap::new);
            for (k, v) in c {
                mine.insert(k.clone(), v.clone());
                match o.contexts_base.get(k) {
                    Some(b) => {
                        self.contexts_base.insert(k.clone(), b.clone());
                    }
                    None => {
                        self.contexts_base.remove(k);
                    }
                }
            }
        }
        merge_map(&mut self.labels, &o.labels);
        if o.tags.is_some() {
            self.tags = o.tags.clone();
        }
        if o.target.is_some() {
            self.target = o.target.clone();
        }
        if o.call.is_some() {
            self.call = o.call.clone();
        }
        append(&mut self.annotations, &o.annotations);
        if let Some(a) = &o.attest {
            let mut all = self.attest.take().unwrap_or_default();
            all.extend(a.iter().cloned());
            self.attest = Some(entries::dedup_attests(all));
        }
        append(&mut self.policy, &o.policy);
        if let Some(s) = &o.secret {
            let mut all = self.secret.take().unwrap_or_default();
            all.extend(s.iter().cloned());
            self.secret = Some(entries::dedup_by_id(all, |s: &Secret| &s.id));
        }
        if let Some(s) = &o.ssh {
            let mut all = self.ssh.take().unwrap_or_default();
            all.extend(s.iter().cloned());
            self.ssh = Some(entries::dedup_by_id(all, |s: &Ssh| &s.id));
        }
        if o.platforms.is_some() {
            self.platforms = o.platforms.clone();
        }
        if let Some(c) = &o.cache_from {
            let mut all = self.cache_from.take().unwrap_or_default();
            all.extend(c.iter().cloned());
            self.cache_from = Some(entries::remove_dupes(all));
        }
        if o.cache_to.is_some() {
            self.cache_to = o.cache_to.clone();
        }
        if o.output.is_some() {
            self.output = o.output.clone();
        }
        if o.pull.is_some() {
            self.pull = o.pull;
        }
        if o.no_cache.is_some() {
            self.no_cache = o.no_cache;
        }
        if o.network.is_some() {
            self.network = o.network.clone();
        }
        append(&mut self.no_cache_filter, &o.no_cache_filter);
        if o.shm_size.is_some() {
            self.shm_size = o.shm_size.clone();
        }
        append(&mut self.ulimits, &o.ulimits);
        if let Some(r) = &o.resources {
            self.resources
                .get_or_insert_with(Resources::default)
                .merge(r);
        }
        if !o.description.is_empty() {
            self.description = o.description.clone();
        }
        append(&mut self.entitlements, &o.entitlements);
        merge_map(&mut self.extra_hosts, &o.extra_hosts);
        self.inherits.extend(o.inherits.iter().cloned());
    }

    /// buildx's `normalize`: de-duplicate lists, drop empty contexts, `network=host`
    /// implies the `network.host` entitlement.
    pub fn normalize(&mut self) {
        dedup_strings(&mut self.annotations);
        if let Some(a) = self.attest.take() {
            self.attest = non_empty(entries::dedup_attests(a));
        }
        dedup_strings(&mut self.tags);
        if let Some(s) = self.secret.take() {
            self.secret = non_empty(entries::dedup_by_id(s, |s: &Secret| &s.id));
        }
        if let Some(s) = self.ssh.take() {
            self.ssh = non_empty(entries::dedup_by_id(s, |s: &Ssh| &s.id));
        }
        dedup_strings(&mut self.platforms);
        if let Some(c) = self.cache_from.take() {
            self.cache_from = non_empty(entries::remove_dupes(c));
        }
        if let Some(c) = self.cache_to.take() {
            self.cache_to = non_empty(entries::remove_dupes(c));
        }
        if let Some(o) = self.output.take() {
            self.output = non_empty(entries::remove_dupes(o));
        }
        dedup_strings(&mut self.no_cache_filter);
        dedup_strings(&mut self.ulimits);
        if self.network.as_deref() == Some("host") {
            self.entitlements
                .get_or_insert_with(Vec::new)
                .push("network.host".into());
        }
        dedup_strings(&mut self.entitlements);
        if let Some(c) = &mut self.contexts {
            c.retain(|_, v| !v.is_empty());
            if c.is_empty() {
                self.contexts = None;
            }
        }
    }

    /// The JSON `docker buildx bake --print` shows for this target (Go field order).
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        let esc = |s: &str| s.replace("${", "$${").replace("%{", "%%{");
        if !self.description.is_empty() {
            m.insert("description".into(), Json::String(self.description.clone()));
        }
        if !self.inherits.is_empty() {
            m.insert("inherits".into(), strings_json(&self.inherits));
        }
        if let Some(a) = nonempty(&self.annotations) {
            m.insert(
                "annotations".into(),
                Json::Array(a.iter().map(|s| Json::String(esc(s))).collect()),
            );
        }
        if let Some(a) = nonempty(&self.attest) {
            m.insert(
                "attest".into(),
                Json::Array(a.iter().map(Attest::to_json).collect()),
            );
        }
        if let Some(c) = &self.context {
            m.insert("context".into(), Json::String(c.clone()));
        }
        if let Some(c) = self.contexts.as_ref().filter(|c| !c.is_empty()) {
            m.insert(
                "contexts".into(),
                Json::Object(
                    c.iter()
                        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                        .collect(),
                ),
            );
        }
        if let Some(d) = &self.dockerfile {
            m.insert("dockerfile".into(), Json::String(d.clone()));
        }
        if let Some(d) = &self.dockerfile_inline {
            m.insert("dockerfile-inline".into(), Json::String(esc(d)));
        }
        for (key, map) in [("args", &self.args), ("labels", &self.labels)] {
            if let Some(a) = map.as_ref().filter(|a| !a.is_empty()) {
                m.insert(key.into(), nullable_map_json(a, esc));
            }
        }
        if let Some(t) = nonempty(&self.tags) {
            m.insert("tags".into(), strings_json(t));
        }
        if let Some(c) = nonempty(&self.cache_from) {
            m.insert(
                "cache-from".into(),
                Json::Array(c.iter().map(CacheEntry::to_json).collect()),
            );
        }
        if let Some(c) = nonempty(&self.cache_to) {
            m.insert(
                "cache-to".into(),
                Json::Array(c.iter().map(CacheEntry::to_json).collect()),
            );
        }
        if let Some(t) = &self.target {
            m.insert("target".into(), Json::String(t.clone()));
        }
        if let Some(s) = nonempty(&self.secret) {
            m.insert(
                "secret".into(),
                Json::Array(s.iter().map(Secret::to_json).collect()),
            );
        }
        if let Some(s) = nonempty(&self.ssh) {
            m.insert(
                "ssh".into(),
                Json::Array(s.iter().map(Ssh::to_json).collect()),
            );
        }
        if let Some(p) = nonempty(&self.platforms) {
            m.insert("platforms".into(), strings_json(p));
        }
        if let Some(o) = nonempty(&self.output) {
            m.insert(
                "output".into(),
                Json::Array(o.iter().map(ExportEntry::to_json).collect()),
            );
        }
        if let Some(p) = self.pull {
            m.insert("pull".into(), Json::Bool(p));
        }
        if let Some(p) = self.no_cache {
            m.insert("no-cache".into(), Json::Bool(p));
        }
        if let Some(n) = &self.network {
            m.insert("network".into(), Json::String(n.clone()));
        }
        if let Some(f) = nonempty(&self.no_cache_filter) {
            m.insert("no-cache-filter".into(), strings_json(f));
        }
        if let Some(s) = &self.shm_size {
            m.insert("shm-size".into(), Json::String(s.clone()));
        }
        if let Some(u) = nonempty(&self.ulimits) {
            m.insert("ulimits".into(), strings_json(u));
        }
        if let Some(r) = &self.resources {
            m.insert("resources".into(), r.to_json());
        }
        if let Some(c) = &self.call {
            m.insert("call".into(), Json::String(c.clone()));
        }
        if let Some(e) = nonempty(&self.entitlements) {
            m.insert("entitlements".into(), strings_json(e));
        }
        if let Some(h) = self.extra_hosts.as_ref().filter(|h| !h.is_empty()) {
            m.insert("extra-hosts".into(), nullable_map_json(h, esc));
        }
        if let Some(p) = nonempty(&self.policy) {
            m.insert(
                "policy".into(),
                Json::Array(p.iter().map(Policy::to_json).collect()),
            );
        }
        Json::Object(m)
    }
}

impl Group {
    pub fn set_field(&mut self, field: &str, v: &Value) -> Result<(), FieldError> {
        match field {
            "description" => self.description = opt_string(field, v)?.unwrap_or_default(),
            "targets" => self.targets = string_list(field, v)?.unwrap_or_default(),
            other => return Err(ferr(other, "unknown attribute")),
        }
        Ok(())
    }

    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        if !self.description.is_empty() {
            m.insert("description".into(), Json::String(self.description.clone()));
        }
        m.insert("targets".into(), strings_json(&self.targets));
        Json::Object(m)
    }
}

fn nonempty<T>(v: &Option<Vec<T>>) -> Option<&Vec<T>> {
    v.as_ref().filter(|v| !v.is_empty())
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn strings_json(v: &[String]) -> Json {
    Json::Array(v.iter().map(|s| Json::String(s.clone())).collect())
}

fn nullable_map_json(m: &BTreeMap<String, Option<String>>, esc: impl Fn(&str) -> String) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref()
                        .map(|s| Json::String(esc(s)))
                        .unwrap_or(Json::Null),
                )
            })
            .collect(),
    )
}

fn merge_map(
    mine: &mut Option<BTreeMap<String, Option<String>>>,
    other: &Option<BTreeMap<String, Option<String>>>,
) {
    if let Some(o) = other {
        for (k, v) in o {
            if v.is_some() {
                mine.get_or_insert_with(BTreeMap::new)
                    .insert(k.clone(), v.clone());
            }
        }
    }
}

fn append<T: Clone>(mine: &mut Option<Vec<T>>, other: &Option<Vec<T>>) {
    if let Some(o) = other {
        mine.get_or_insert_with(Vec::new).extend(o.iter().cloned());
    }
}

/// buildx's `removeDupesStr`: drop empty strings and repeats, keep first occurrences.
pub fn dedup_strings(v: &mut Option<Vec<String>>) {
    if let Some(list) = v {
        let mut seen = std::collections::HashSet::new();
        list.retain(|s| !s.is_empty() && seen.insert(s.clone()));
    }
}
