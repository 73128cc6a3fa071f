//! Compose files as bake files, as `docker buildx bake` reads them: every service with a
//! `build` section is a target of the same name (dots become `_`), all of them in the
//! `default` group. The `build` keys map to target attributes (`context`, `dockerfile`,
//! `dockerfile_inline`, `args`, `labels`, `tags`, `target`, `cache_from`, `cache_to`,
//! `network`, `platforms`, `ssh`, `secrets`, `shm_size`, `ulimits`, `extra_hosts`,
//! `additional_contexts`, `no_cache`, `pull`, `sbom`, `provenance`) and the `x-bake`
//! extension adds what Compose has no key for. The service's `image` is the tag when
//! `build.tags` gives none. Values are interpolated (`${VAR:-default}`) from the
//! environment and `.env`; several compose files merge, later ones winning.

mod interpolate;

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value as Yaml};

use super::entries::{self, CacheEntry, Secret, Ssh};
use super::eval::value::Value;
use super::model::{Group, Target};

pub use interpolate::parse_dotenv;

/// A compose file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    #[error("invalid interpolation in {value:?}: {message}")]
    Interpolation { value: String, message: String },
    #[error("{message}")]
    Required { name: String, message: String },
    #[error(".env line {line}: {message}")]
    DotEnv { line: usize, message: String },
    #[error("empty compose file")]
    Empty,
    #[error("{0}")]
    Invalid(String),
}

/// The keys of a service's `build` section (besides `x-…` extensions).
const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "provenance",
    "sbom",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];

/// A bake file that is a compose file: its name and its checked, interpolated model.
#[derive(Debug)]
pub struct ComposeFile {
    pub name: String,
    model: Mapping,
}

/// What [`detect`] made of a bake file.
#[derive(Debug)]
pub enum Detected {
    Compose(ComposeFile),
    /// A compose file by its name (`.yml`/`.yaml`) that is not a usable one.
    Invalid(ComposeError),
    NotCompose,
}

/// Whether a bake file is a compose file, as buildx decides: `.yml`/`.yaml` always are
/// (and must then be valid), `.json`/`.hcl` never are, anything else is when it parses
/// as one. A compose file is read once, here.
pub fn detect(name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Detected {
    let lower = name.to_ascii_lowercase();
    let by_name = lower.ends_with(".yml") || lower.ends_with(".yaml");
    if !by_name && (lower.ends_with(".json") || lower.ends_with(".hcl")) {
        return Detected::NotCompose;
    }
    match load_model(name, text, env) {
        Ok(model) => Detected::Compose(ComposeFile {
            name: name.to_string(),
            model,
        }),
        Err(e) if by_name => Detected::Invalid(e),
        Err(_) => Detected::NotCompose,
    }
}

/// One compose file's `services` and `secrets`, interpolated and checked.
fn load_model(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Mapping, ComposeError> {
    let yaml_err = |e: serde_yaml_ng::Error| ComposeError::Yaml {
        file: name.to_string(),
        message: e.to_string(),
    };
    let mut doc: Yaml = serde_yaml_ng::from_str(text).map_err(yaml_err)?;
    doc.apply_merge().map_err(yaml_err)?;
    let Yaml::Mapping(top) = doc else {
        return match doc {
            Yaml::Null => Err(ComposeError::Empty),
            _ => Err(ComposeError::Invalid(format!(
                "{name}: top-level object must be a mapping"
            ))),
        };
    };
    let mut model = Mapping::new();
    for key in ["services", "secrets"] {
        if let Some(v) = top.get(key) {
            model.insert(Yaml::String(key.into()), interpolate_all(v, env)?);
        }
    }
    if model.is_empty() {
        return Err(ComposeError::Empty);
    }
    validate(&model)?;
    Ok(model)
}

fn interpolate_all(v: &Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<Yaml, ComposeError> {
    Ok(match v {
        Yaml::String(s) => Yaml::String(interpolate::interpolate(s, env)?),
        Yaml::Sequence(items) => Yaml::Sequence(
            items
                .iter()
                .map(|i| interpolate_all(i, env))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, v) in m {
                out.insert(k.clone(), interpolate_all(v, env)?);
            }
            Yaml::Mapping(out)
        }
        Yaml::Tagged(t) => interpolate_all(&t.value, env)?,
        other => other.clone(),
    })
}

/// The parts of the Compose schema bake depends on.
fn validate(model: &Mapping) -> Result<(), ComposeError> {
    let invalid = |m: String| Err(ComposeError::Invalid(m));
    match model.get("services") {
        None | Some(Yaml::Mapping(_)) => {}
        Some(_) => return invalid("services must be a mapping".into()),
    }
    if let Some(Yaml::Mapping(services)) = model.get("services") {
        for (name, svc) in services {
            let name = scalar(name).unwrap_or_default();
            let svc = match svc {
                Yaml::Null => continue,
                Yaml::Mapping(m) => m,
                _ => return invalid(format!("services.{name} must be a mapping")),
            };
            match svc.get("build") {
                None | Some(Yaml::String(_)) => {}
                Some(Yaml::Mapping(b)) => {
                    let extra: Vec<String> = b
                        .keys()
                        .filter_map(scalar)
                        .filter(|k| !k.starts_with("x-") && !BUILD_KEYS.contains(&k.as_str()))
                        .map(|k| format!("'{k}'"))
                        .collect();
                    if !extra.is_empty() {
                        return invalid(format!(
                            "services.{name}.build additional properties {} not allowed",
                            extra.join(", ")
                        ));
                    }
                }
                Some(_) => {
                    return invalid(format!(
                        "services.{name}.build must be a string or a mapping"
                    ))
                }
            }
        }
    }
    match model.get("secrets") {
        None => {}
        Some(Yaml::Mapping(secrets)) => {
            for (name, s) in secrets {
                let name = scalar(name).unwrap_or_default();
                let ok = matches!(s, Yaml::Mapping(m)
                    if ["file", "environment", "external", "content"].iter().any(|k| m.contains_key(*k)));
                if !ok {
                    return invalid(format!(
                        "secrets.{name} must set one of file, environment or external"
                    ));
                }
            }
        }
        Some(_) => return invalid("secrets must be a mapping".into()),
    }
    Ok(())
}

/// A scalar as a string (numbers and booleans as YAML writes them), `None` for null and
/// for collections.
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// Merges `over` into `base`: mappings key by key, everything else replaced.
fn merge(base: &mut Yaml, over: &Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The targets and the `default` group of the compose `files` (in order; later ones
/// override earlier ones).
pub fn parse(
    files: &[ComposeFile],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Group>, Vec<Target>), ComposeError> {
    let mut merged = Yaml::Mapping(Mapping::new());
    for f in files {
        merge(&mut merged, &Yaml::Mapping(f.model.clone()));
    }
    let empty = Mapping::new();
    let services = merged
        .get("services")
        .and_then(Yaml::as_mapping)
        .unwrap_or(&empty);
    let secrets = merged
        .get("secrets")
        .and_then(Yaml::as_mapping)
        .unwrap_or(&empty);
    let mut named: Vec<(String, &Mapping)> = services
        .iter()
        .filter_map(|(k, v)| Some((scalar(k)?, v.as_mapping()?)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut targets = Vec::new();
    let mut group = Group {
        name: "default".into(),
        ..Group::default()
    };
    for (service, svc) in named {
        let Some(build) = svc.get("build") else {
            continue;
        };
        let name = sanitize_name(&service);
        super::eval::context::validate_label(&name)
            .map_err(|m| ComposeError::Invalid(format!("invalid service name {name:?}: {m}")))?;
        let t = target(&name, svc, build, secrets, env)?;
        group.targets.push(name);
        targets.push(t);
    }
    let groups = if services.is_empty() {
        Vec::new()
    } else {
        vec![group]
    };
    Ok((groups, targets))
}

/// Compose allows dots in service names; bake targets do not.
fn sanitize_name(s: &str) -> String {
    s.replace('.', "_")
}

fn field_err(service: &str, field: &str, m: impl std::fmt::Display) -> ComposeError {
    ComposeError::Invalid(format!("services.{service}.build.{field}: {m}"))
}

/// A list of strings: a sequence, or one string split at whitespace (`x-bake` style).
fn strings(v: &Yaml, split_single: bool) -> Vec<String> {
    match v {
        Yaml::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => match scalar(other) {
            Some(s) if split_single => s.split_whitespace().map(str::to_string).collect(),
            Some(s) => vec![s],
            None => Vec::new(),
        },
    }
}

/// A mapping or a list of `KEY=VALUE` (or `KEY` alone: no value) entries.
fn key_values(v: &Yaml, sep: &[char]) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match v {
        Yaml::Mapping(m) => {
            for (k, v) in m {
                if let Some(k) = scalar(k) {
                    out.insert(k, scalar(v));
                }
            }
        }
        Yaml::Sequence(items) => {
            for s in items.iter().filter_map(scalar) {
                match s.split_once(sep) {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        _ => {}
    }
    out
}

fn tuple(items: impl IntoIterator<Item = String>) -> Value {
    Value::Tuple(items.into_iter().map(Value::string).collect())
}

fn target(
    name: &str,
    svc: &Mapping,
    build: &Yaml,
    secrets: &Mapping,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, ComposeError> {
    let mut t = Target {
        name: name.to_string(),
        ..Target::default()
    };
    let empty = Mapping::new();
    let b = match build {
        Yaml::String(ctx) => {
            t.context = Some(ctx.clone());
            &empty
        }
        Yaml::Mapping(m) => m,
        _ => &empty,
    };
    let get = |k: &str| b.get(k).filter(|v| !v.is_null());
    let text = |k: &str| get(k).and_then(scalar).filter(|s| !s.is_empty());
    if let Some(c) = text("context") {
        t.context = Some(c);
    }
    t.dockerfile = text("dockerfile");
    t.dockerfile_inline = text("dockerfile_inline");
    t.target = text("target");
    t.network = text("network");
    if let Some(v) = get("additional_contexts") {
        t.contexts = Some(named_contexts(key_values(v, &['='])));
    }
    if let Some(v) = get("args") {
        // An argument without a value takes the service's environment, then the
        // variables bake sees; without either it is dropped.
        let environment = svc
            .get("environment")
            .map(|e| key_values(e, &['=']))
            .unwrap_or_default();
        let args: BTreeMap<String, Option<String>> = key_values(v, &['='])
            .into_iter()
            .filter_map(|(k, v)| {
                let v = v
                    .or_else(|| environment.get(&k).cloned().flatten())
                    .or_else(|| env(&k))?;
                Some((k, Some(v)))
            })
            .collect();
        if !args.is_empty() {
            t.args = Some(args);
        }
    }
    if let Some(v) = get("labels") {
        let labels: BTreeMap<String, Option<String>> = key_values(v, &['='])
            .into_iter()
            .map(|(k, v)| (k, Some(v.unwrap_or_default())))
            .collect();
        t.labels = Some(labels);
    }
    let mut tags = get("tags").map(|v| strings(v, false)).unwrap_or_default();
    if tags.is_empty() {
        if let Some(image) = svc.get("image").and_then(scalar).filter(|s| !s.is_empty()) {
            tags.push(image);
        }
    }
    if !tags.is_empty() {
        t.tags = Some(tags);
    }
    for (key, field) in [("cache_from", "cache-from"), ("cache_to", "cache-to")] {
        if let Some(v) = get(key) {
            let list = strings(v, false);
            if !list.is_empty() {
                t.set_field(field, &tuple(list))
                    .map_err(|e| field_err(name, key, e.message))?;
            }
        }
    }
    if let Some(v) = get("platforms") {
        t.platforms = Some(strings(v, false));
    }
    if let Some(v) = get("ssh") {
        let list: Vec<String> = key_values(v, &['='])
            .into_iter()
            .map(|(id, path)| match path {
                Some(p) => format!("{id}={p}"),
                None => id,
            })
            .collect();
        t.set_field("ssh", &tuple(list))
            .map_err(|e| field_err(name, "ssh", e.message))?;
        sort_ssh(&mut t.ssh);
    }
    if let Some(Yaml::Sequence(list)) = get("secrets") {
        let mut out = Vec::new();
        for s in list {
            let source = match s {
                Yaml::Mapping(m) => m.get("source").and_then(scalar),
                other => scalar(other),
            }
            .unwrap_or_default();
            out.push(secret(name, &source, secrets)?);
        }
        t.secret = Some(out);
    }
    if let Some(v) = get("shm_size") {
        let bytes = scalar(v)
            .and_then(|s| ram_in_bytes(&s))
            .ok_or_else(|| field_err(name, "shm_size", format!("invalid size {v:?}")))?;
        if bytes > 0 {
            t.shm_size = Some(bytes_size(bytes as f64));
        }
    }
    if let Some(Yaml::Mapping(m)) = get("ulimits") {
        let mut list = Vec::new();
        for (k, v) in m {
            let k = scalar(k).unwrap_or_default();
            let (soft, hard) = match v {
                Yaml::Mapping(sh) => (
                    sh.get("soft").and_then(scalar).unwrap_or_default(),
                    sh.get("hard").and_then(scalar).unwrap_or_default(),
                ),
                other => {
                    let n = scalar(other).unwrap_or_default();
                    (n.clone(), n)
                }
            };
            list.push(format!("{k}={soft}:{hard}"));
        }
        list.sort();
        t.ulimits = Some(list);
    }
    if let Some(v) = get("extra_hosts") {
        let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match v {
            Yaml::Mapping(m) => {
                for (k, v) in m {
                    hosts
                        .entry(scalar(k).unwrap_or_default())
                        .or_default()
                        .extend(strings(v, false));
                }
            }
            other => {
                for s in strings(other, false) {
                    let sep = if s.contains('=') { '=' } else { ':' };
                    if let Some((h, ip)) = s.split_once(sep) {
                        hosts.entry(h.to_string()).or_default().push(ip.to_string());
                    }
                }
            }
        }
        t.extra_hosts = Some(
            hosts
                .into_iter()
                .map(|(h, ips)| (h, Some(ips.join(","))))
                .collect(),
        );
    }
    let mut attests = Vec::new();
    for key in ["sbom", "provenance"] {
        if let Some(v) = get(key).and_then(scalar).filter(|s| !s.is_empty()) {
            attests.push(match v.as_str() {
                "true" => format!("type={key}"),
                "false" => format!("type={key},disabled=true"),
                other => format!("type={key},{other}"),
            });
        }
    }
    if !attests.is_empty() {
        t.set_field("attest", &tuple(attests))
            .map_err(|e| field_err(name, "attest", e.message))?;
    }
    if get("no_cache").and_then(scalar).as_deref() == Some("true") {
        t.no_cache = Some(true);
    }
    if get("pull").and_then(scalar).as_deref() == Some("true") {
        t.pull = Some(true);
    }
    if let Some(Yaml::Mapping(x)) = get("x-bake") {
        x_bake(&mut t, x)?;
    }
    Ok(t)
}

/// `service:x` and `target:x` contexts name the target of service x.
fn named_contexts(m: BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    m.into_iter()
        .map(|(k, v)| {
            let v = v.unwrap_or_default();
            let v = match v.split_once(':') {
                Some(("service" | "target", s)) => format!("target:{}", sanitize_name(s)),
                _ => v,
            };
            (k, v)
        })
        .collect()
}

fn secret(service: &str, source: &str, secrets: &Mapping) -> Result<Secret, ComposeError> {
    let Some(Yaml::Mapping(def)) = secrets.get(source) else {
        return Err(ComposeError::Invalid(format!(
            "service {service:?} refers to undefined secret {source}"
        )));
    };
    if def.get("external").and_then(scalar).as_deref() == Some("true") {
        return Err(ComposeError::Invalid(format!(
            "unsupported external secret {source}"
        )));
    }
    Ok(Secret {
        id: source.to_string(),
        src: def.get("file").and_then(scalar).unwrap_or_default(),
        env: def.get("environment").and_then(scalar).unwrap_or_default(),
    })
}

fn sort_ssh(ssh: &mut Option<Vec<Ssh>>) {
    if let Some(list) = ssh {
        list.sort_by(|a, b| (a.id.as_str(), &a.paths).cmp(&(b.id.as_str(), &b.paths)));
    }
}

/// Appends `more` to a list, keeping the first of equal entries.
fn extend_dedup<T: PartialEq + Clone>(list: &mut Option<Vec<T>>, more: Vec<T>) {
    let all = list.get_or_insert_with(Vec::new);
    for m in more {
        if !all.contains(&m) {
            all.push(m);
        }
    }
}

/// The `x-bake` extension: buildx's keys with bake's names, lists as sequences or one
/// whitespace-separated string, merged into what `build` said.
fn x_bake(t: &mut Target, x: &Mapping) -> Result<(), ComposeError> {
    let list = |k: &str| x.get(k).map(|v| strings(v, true)).unwrap_or_default();
    let err = |field: &str, m: String| ComposeError::Invalid(format!("x-bake.{field}: {m}"));
    let parsed = |field: &str, items: Vec<String>| -> Result<Target, ComposeError> {
        let mut tmp = Target::default();
        tmp.set_field(field, &tuple(items))
            .map_err(|e| err(field, e.message))?;
        Ok(tmp)
    };
    let tags = list("tags");
    if !tags.is_empty() {
        extend_dedup(&mut t.tags, tags);
    }
    for field in ["cache-from", "cache-to"] {
        let items = list(field);
        if items.is_empty() {
            continue;
        }
        let more: Vec<CacheEntry> = if field == "cache-from" {
            parsed(field, items)?.cache_from.unwrap_or_default()
        } else {
            parsed(field, items)?.cache_to.unwrap_or_default()
        };
        let slot = if field == "cache-from" {
            &mut t.cache_from
        } else {
            &mut t.cache_to
        };
        let mut all = slot.take().unwrap_or_default();
        all.extend(more);
        *slot = Some(entries::remove_dupes(all));
    }
    let secrets = list("secret");
    if !secrets.is_empty() {
        let mut all = t.secret.take().unwrap_or_default();
        all.extend(parsed("secret", secrets)?.secret.unwrap_or_default());
        t.secret = Some(entries::dedup_by_id(all, |s: &Secret| &s.id));
    }
    let ssh = list("ssh");
    if !ssh.is_empty() {
        let mut all = t.ssh.take().unwrap_or_default();
        all.extend(parsed("ssh", ssh)?.ssh.unwrap_or_default());
        t.ssh = Some(entries::dedup_by_id(all, |s: &Ssh| &s.id));
        sort_ssh(&mut t.ssh);
    }
    let platforms = list("platforms");
    if !platforms.is_empty() {
        extend_dedup(&mut t.platforms, platforms);
    }
    let outputs = list("output");
    if !outputs.is_empty() {
        let more = parsed("output", outputs)?.output.unwrap_or_default();
        let mut all = t.output.take().unwrap_or_default();
        all.extend(more);
        t.output = Some(entries::remove_dupes(all));
    }
    for (key, slot) in [("pull", &mut t.pull), ("no-cache", &mut t.no_cache)] {
        if let Some(v) = x.get(key).and_then(scalar) {
            *slot = Some(v == "true");
        }
    }
    let filters = list("no-cache-filter");
    if !filters.is_empty() {
        extend_dedup(&mut t.no_cache_filter, filters);
    }
    if let Some(v) = x.get("contexts") {
        let more = named_contexts(key_values(v, &['=']));
        t.contexts.get_or_insert_with(BTreeMap::new).extend(more);
    }
    Ok(())
}

/// A memory size as Docker reads one (`128m`, `1.5g`, `512`): binary multiples.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// Docker's human size with binary units (`128MiB`, `1.5GiB`): four significant digits.
fn bytes_size(mut size: f64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut i = 0;
    while size >= 1024.0 && i + 1 < UNITS.len() {
        size /= 1024.0;
        i += 1;
    }
    let digits = if size >= 1000.0 {
        0
    } else if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let mut s = format!("{size:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests;
