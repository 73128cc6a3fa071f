//! `--set pattern.key[+]=value` overrides, parsed and applied as buildx does.

use super::config::Config;
use super::entries::{self, Attest, CacheEntry, ExportEntry, Policy, Resources, Secret, Ssh};
use super::eval::varenv::parse_bool;
use super::glob;
use super::model::Target;
use std::collections::HashMap;

/// One override of one key of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Override {
    pub value: String,
    pub values: Vec<String>,
    pub append: bool,
}

/// Overrides per target name, each an ordered list of (key, override).
pub type Overrides = HashMap<String, Vec<(String, Override)>>;

/// Keys whose values accumulate when given several times.
const ARRAY_KEYS: &[&str] = &[
    "output",
    "cache-to",
    "cache-from",
    "tags",
    "platform",
    "secrets",
    "ssh",
    "attest",
    "entitlements",
    "network",
    "annotations",
    "policy",
];

/// Parses `--set` values against the config's targets.
pub fn parse(
    cfg: &Config,
    sets: &[String],
    env: &HashMap<String, String>,
) -> Result<Overrides, String> {
    let mut out: Overrides = HashMap::new();
    for v in sets {
        let (lhs, value) = match v.split_once('=') {
            Some((l, r)) => (l, Some(r)),
            None => (v.as_str(), None),
        };
        let append = lhs.ends_with('+');
        let skey = lhs.trim_end_matches('+');
        let keys: Vec<&str> = skey.splitn(3, '.').collect();
        if keys.len() < 2 {
            return Err(format!("invalid override key {skey}, expected target.name"));
        }
        let pattern = keys[0];
        if value.is_none() && keys[1] != "args" {
            return Err(format!("invalid override {v}, expected target.name=value"));
        }
        let names = expand_targets(cfg, pattern)?;
        let okey = keys[1..].join(".");
        for name in names {
            let list = out.entry(name).or_default();
            let pos = list.iter().position(|(k, _)| *k == okey);
            let mut o = pos.map(|i| list[i].1.clone()).unwrap_or_default();
            match keys[1] {
                k if ARRAY_KEYS.contains(&k) => {
                    if let Some(val) = value {
                        o.append = append;
                        o.values.push(val.to_string());
                    }
                }
                "resources" | "secret" => {
                    if keys.len() != 3 {
                        return Err(format!("invalid key {lhs}, {} requires name", keys[1]));
                    }
                    if append {
                        return Err(format!(
                            "invalid key {lhs}, {} does not support append",
                            keys[1]
                        ));
                    }
                    o.value = value.unwrap_or_default().to_string();
                }
                "args" | "contexts" => {
                    if keys.len() != 3 {
                        return Err(format!("invalid key {lhs}, {} requires name", keys[1]));
                    }
                    match value {
                        Some(val) => o.value = val.to_string(),
                        None => match env.get(keys[2]) {
                            Some(e) => o.value = e.clone(),
                            None => continue,
                        },
                    }
                }
                _ => {
                    if let Some(val) = value {
                        o.value = val.to_string();
                    }
                }
            }
            match pos {
                Some(i) => list[i].1 = o,
                None => list.push((okey.clone(), o)),
            }
        }
    }
    Ok(out)
}

fn expand_targets(cfg: &Config, pattern: &str) -> Result<Vec<String>, String> {
    if cfg.targets.iter().any(|t| t.name == pattern) {
        return Ok(vec![pattern.to_string()]);
    }
    let mut names = Vec::new();
    for t in &cfg.targets {
        if glob::matches(pattern, &t.name)
            .map_err(|e| format!("could not match targets with '{pattern}': {e}"))?
        {
            names.push(t.name.clone());
        }
    }
    if names.is_empty() {
        return Err(format!("could not find any target matching '{pattern}'"));
    }
    Ok(names)
}

fn parse_all<T>(vals: &[String], f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    vals.iter()
        .filter(|v| !v.is_empty())
        .map(|v| f(v))
        .collect()
}

fn parse_bool_key(key: &str, value: &str) -> Result<bool, String> {
    parse_bool(value).ok_or_else(|| format!("invalid value {value} for boolean key {key}"))
}

/// Applies a target's overrides (buildx's `AddOverrides`).
pub fn apply(t: &mut Target, overrides: &[(String, Override)]) -> Result<(), String> {
    let mut secret_overrides = Vec::new();
    for (key, o) in overrides {
        let value = o.value.clone();
        let (k0, k1) = match key.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (key.as_str(), None),
        };
        let need = |what: &str| -> Result<&str, String> {
            k1.ok_or_else(|| format!("invalid format for {k0}, expecting {k0}.<{what}>=<value>"))
        };
        match k0 {
            "context" => t.context = Some(value),
            "dockerfile" => t.dockerfile = Some(value),
            "args" => {
                let n = need("name")?;
                t.args
                    .get_or_insert_with(Default::default)
                    .insert(n.into(), Some(value));
            }
            "contexts" => {
                let n = need("name")?;
                t.contexts
                    .get_or_insert_with(Default::default)
                    .insert(n.into(), value);
            }
            "labels" => {
                let n = need("name")?;
                t.labels
                    .get_or_insert_with(Default::default)
                    .insert(n.into(), Some(value));
            }
            "tags" => set_list(&mut t.tags, o),
            "policy" => {
                let mut list = if o.append {
                    t.policy.take().unwrap_or_default()
                } else {
                    Vec::new()
                };
                list.extend(parse_all(&o.values, Policy::parse)?);
                t.policy = Some(list);
            }
            "cache-from" => {
                let mut parsed = Vec::new();
                for v in &o.values {
                    parsed.extend(CacheEntry::parse(v)?);
                }
                t.cache_from = merge_or_set(t.cache_from.take(), parsed, o.append);
            }
            "cache-to" => {
                let mut parsed = Vec::new();
                for v in &o.values {
                    parsed.extend(CacheEntry::parse(v)?);
                }
                t.cache_to = merge_or_set(t.cache_to.take(), parsed, o.append);
            }
            "target" => t.target = Some(value),
            "call" => t.call = Some(value),
            "secret" => secret_overrides.push((need("id")?.to_string(), value)),
            "secrets" => {
                let parsed = parse_all(&o.values, Secret::parse)
                    .map_err(|e| format!("invalid value for outputs: {e}"))?;
                t.secret = Some(if o.append {
                    let mut all = t.secret.take().unwrap_or_default();
                    all.extend(parsed);
                    entries::dedup_by_id(all, |s: &Secret| &s.id)
                } else {
                    parsed
                });
            }
            "ssh" => {
                let parsed = parse_all(&o.values, |s| Ok(Ssh::parse(s)))?;
                t.ssh = Some(if o.append {
                    let mut all = t.ssh.take().unwrap_or_default();
                    all.extend(parsed);
                    entries::dedup_by_id(all, |s: &Ssh| &s.id)
                } else {
                    parsed
                });
            }
            "platform" => set_list(&mut t.platforms, o),
            "output" => {
                let parsed = parse_all(&o.values, ExportEntry::parse)
                    .map_err(|e| format!("invalid value for outputs: {e}"))?;
                t.output = merge_or_set(t.output.take(), parsed, o.append);
            }
            "entitlements" => t
                .entitlements
                .get_or_insert_with(Vec::new)
                .extend(o.values.iter().cloned()),
            "annotations" => t
                .annotations
                .get_or_insert_with(Vec::new)
                .extend(o.values.iter().cloned()),
            "attest" => {
                let parsed = parse_all(&o.values, Attest::parse)
                    .map_err(|e| format!("invalid value for attest: {e}"))?;
                let mut all = t.attest.take().unwrap_or_default();
                all.extend(parsed);
                t.attest = Some(entries::dedup_attests(all));
            }
            "no-cache" => t.no_cache = Some(parse_bool_key("no-cache", &value)?),
            "no-cache-filter" => set_list(&mut t.no_cache_filter, o),
            "shm-size" => t.shm_size = Some(value),
            "ulimits" => set_list(&mut t.ulimits, o),
            "resources" => {
                let n = need("name")?;
                t.resources
                    .get_or_insert_with(Resources::default)
                    .set_field(n, &value)?;
            }
            "network" => t.network = Some(value),
            "pull" => t.pull = Some(parse_bool_key("pull", &value)?),
            "push" => {
                let push = parse_bool_key("push", &value)?;
                t.output = Some(set_push(t.output.take().unwrap_or_default(), push));
            }
            "load" => {
                let load = parse_bool_key("load", &value)?;
                t.output = Some(set_load(t.output.take().unwrap_or_default(), load));
            }
            "extra-hosts" => {
                let n = k1.ok_or_else(|| {
                    "invalid format for extra-hosts, expecting extra-hosts.<hostname>=<ip>"
                        .to_string()
                })?;
                t.extra_hosts
                    .get_or_insert_with(Default::default)
                    .insert(n.into(), Some(value));
            }
            other => return Err(format!("unknown key: {other}")),
        }
    }
    for (id, value) in secret_overrides {
        update_secret(t, &id, &value)?;
    }
    Ok(())
}

fn set_list(field: &mut Option<Vec<String>>, o: &Override) {
    if o.append {
        field
            .get_or_insert_with(Vec::new)
            .extend(o.values.iter().cloned());
    } else {
        *field = Some(o.values.clone());
    }
}

fn merge_or_set<T: PartialEq>(old: Option<Vec<T>>, new: Vec<T>, append: bool) -> Option<Vec<T>> {
    if append {
        let mut all = old.unwrap_or_default();
        all.extend(new);
        let all = entries::remove_dupes(all);
        (!all.is_empty()).then_some(all)
    } else {
        (!new.is_empty()).then_some(new)
    }
}

fn update_secret(t: &mut Target, id: &str, value: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("invalid format for secret, expecting secret.<id>=<value>".into());
    }
    let Some(s) = t.secret.iter_mut().flatten().find(|s| s.id == id) else {
        return Err(format!(
            "secret {id:?} must be declared before it can be overridden"
        ));
    };
    let next = Secret::parse(value)?;
    if !next.id.is_empty() && next.id != id {
        return Err(format!(
            "secret override id {:?} does not match declared secret {id:?}",
            next.id
        ));
    }
    s.env = next.env;
    s.src = next.src;
    Ok(())
}

/// `--push` / `*.push=`: make outputs push (or stop them pushing).
fn set_push(mut outputs: Vec<ExportEntry>, push: bool) -> Vec<ExportEntry> {
    if !push {
        let mut i = 0;
        while i < outputs.len() {
            match outputs[i].typ.as_str() {
                "registry" => {
                    let last = outputs.len() - 1;
                    outputs.swap(i, last);
                    outputs.pop();
                    continue;
                }
                "image" => {
                    outputs[i].attrs.insert("push".into(), "false".into());
                }
                _ => {}
            }
            i += 1;
        }
        return outputs;
    }
    let mut add = true;
    for o in &mut outputs {
        if o.typ != "docker" {
            add = false;
        }
        if o.typ == "image" {
            o.attrs.insert("push".into(), "true".into());
        }
    }
    if add {
        outputs.push(ExportEntry {
            typ: "image".into(),
            attrs: [("push".to_string(), "true".to_string())]
                .into_iter()
                .collect(),
            dest: String::new(),
        });
    }
    outputs
}

/// `--load` / `*.load=`: add a docker output unless one is there.
fn set_load(mut outputs: Vec<ExportEntry>, load: bool) -> Vec<ExportEntry> {
    if !load {
        return outputs;
    }
    for o in &outputs {
        match o.typ.as_str() {
            "docker" if o.dest.is_empty() => return outputs,
            "docker" | "image" | "registry" | "oci" => {}
            _ => return outputs,
        }
    }
    outputs.push(ExportEntry {
        typ: "docker".into(),
        attrs: Default::default(),
        dest: String::new(),
    });
    outputs
}
