//! Requested names -> resolved targets and groups (buildx's `ReadTargets`): groups
//! expanded, `inherits` applied, `--set` overrides, defaults, `target:` context links.

use super::config::{clean_path, rebase_context_path, Config};
use super::glob;
use super::model::{Group, Target};
use super::overrides::{self, Overrides};
use std::collections::{BTreeMap, HashMap};

/// The resolved targets and groups, keyed by name (printed sorted).
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub targets: BTreeMap<String, Target>,
    pub groups: BTreeMap<String, Group>,
    /// Things that are accepted (as buildx accepts them) but probably wrong.
    pub warnings: Vec<String>,
}

/// Resolves the requested names. `sets` are `--set` values.
pub fn resolve(
    cfg: &Config,
    requested: &[String],
    sets: &[String],
    env: &HashMap<String, String>,
) -> Result<Resolved, String> {
    let mut names = Vec::new();
    for r in requested {
        let r = r.replace('.', "_");
        for n in match_names(cfg, &r)? {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let ov = overrides::parse(cfg, sets, env)?;
    let mut out = Resolved::default();
    for name in &names {
        let (targets, groups) = resolve_group(cfg, name);
        for t in targets {
            let rt = resolve_target_warn(cfg, &t, &ov, &mut out.warnings)?;
            out.targets.insert(t, rt);
        }
        for g in groups {
            if let Some(group) = cfg.group(&g) {
                out.groups.insert(g, group.clone());
            }
        }
    }
    for name in &names {
        if name == "default" && out.groups.contains_key("default") {
            continue;
        }
        out.groups
            .entry("default".into())
            .or_insert_with(|| Group {
                name: "default".into(),
                ..Group::default()
            })
            .targets
            .push(name.clone());
    }
    if let Some(g) = out.groups.get_mut("default") {
        let mut seen = std::collections::HashSet::new();
        g.targets.retain(|t| seen.insert(t.clone()));
        g.targets.sort();
    }
    let names: Vec<String> = out.targets.keys().cloned().collect();
    for name in names {
        load_links(cfg, &name, &mut out.targets, &ov, &mut Vec::new())?;
    }
    Ok(out)
}

fn match_names(cfg: &Config, pattern: &str) -> Result<Vec<String>, String> {
    if !pattern.contains(['*', '?', '[', ']']) {
        return Ok(vec![pattern.to_string()]);
    }
    let mut names = Vec::new();
    for g in &cfg.groups {
        if glob::matches(pattern, &g.name).unwrap_or(false) {
            names.push(g.name.clone());
        }
    }
    for t in &cfg.targets {
        if glob::matches(pattern, &t.name).unwrap_or(false) {
            names.push(t.name.clone());
        }
    }
    if names.is_empty() {
        return Err(format!("could not find any target matching {pattern:?}"));
    }
    Ok(names)
}

/// Targets and groups a name stands for (a target stands for itself).
pub fn resolve_group(cfg: &Config, name: &str) -> (Vec<String>, Vec<String>) {
    let mut visited = HashMap::new();
    let (t, g) = group_rec(cfg, name, &mut visited);
    (dedup(t), dedup(g))
}

type Visit = (Vec<String>, Vec<String>);

fn group_rec(cfg: &Config, name: &str, visited: &mut HashMap<String, Visit>) -> Visit {
    if let Some(v) = visited.get(name) {
        return v.clone();
    }
    let Some(g) = cfg.group(name) else {
        return (vec![name.to_string()], Vec::new());
    };
    visited.insert(name.to_string(), (Vec::new(), Vec::new()));
    let mut targets = Vec::new();
    let mut groups = vec![name.to_string()];
    for t in &g.targets {
        let (tt, tg) = group_rec(cfg, t, visited);
        if tt.is_empty() {
            targets.push(t.clone());
        } else {
            targets.extend(tt);
        }
        groups.extend(tg);
    }
    visited.insert(name.to_string(), (targets.clone(), groups.clone()));
    (targets, groups)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// One target with inherits, overrides and defaults applied.
pub fn resolve_target(cfg: &Config, name: &str, ov: &Overrides) -> Result<Target, String> {
    resolve_target_warn(cfg, name, ov, &mut Vec::new())
}

fn resolve_target_warn(
    cfg: &Config,
    name: &str,
    ov: &Overrides,
    warnings: &mut Vec<String>,
) -> Result<Target, String> {
    let mut visited = HashMap::new();
    let mut t = target_rec(cfg, name, &mut visited, ov, warnings)?
        .ok_or_else(|| format!("failed to find target {name}"))?;
    t.inherits.clear();
    if t.context.is_none() {
        t.context = Some(if t.use_file_relative {
            rebase_context_path(t.default_context_base.as_deref().unwrap_or_default(), ".")
        } else {
            ".".to_string()
        });
    }
    if t.dockerfile.as_deref().is_none_or(str::is_empty) {
        t.dockerfile = Some("Dockerfile".into());
    }
    Ok(t)
}

fn target_rec(
    cfg: &Config,
    name: &str,
    visited: &mut HashMap<String, Option<Target>>,
    ov: &Overrides,
    warnings: &mut Vec<String>,
) -> Result<Option<Target>, String> {
    if let Some(t) = visited.get(name) {
        return Ok(t.clone());
    }
    visited.insert(name.to_string(), None);
    let t = cfg
        .target(name)
        .ok_or_else(|| format!("failed to find target {name}"))?;
    let mut tt = Target::default();
    for parent in &t.inherits {
        if visited.get(parent.as_str()).is_some_and(Option::is_none) {
            let w = format!(
                "target {name:?} inherits {parent:?}, which is still being resolved (an inherits cycle); the cycle is ignored"
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        if let Some(p) = target_rec(cfg, parent, visited, ov, warnings)? {
            tt.merge(&p);
        }
    }
    let mut m = Target {
        name: name.to_string(),
        ..Target::default()
    };
    m.merge(&tt);
    m.merge(t);
    m.name = name.to_string();
    if let Some(o) = ov.get(name) {
        overrides::apply(&mut m, o)?;
    }
    m.normalize();
    visited.insert(name.to_string(), Some(m.clone()));
    Ok(Some(m))
}

/// Adds targets used only as `target:` contexts, and checks for loops and platforms.
fn load_links(
    cfg: &Config,
    name: &str,
    m: &mut BTreeMap<String, Target>,
    ov: &Overrides,
    visited: &mut Vec<String>,
) -> Result<(), String> {
    visited.push(name.to_string());
    let contexts: Vec<String> = m
        .get(name)
        .and_then(|t| t.contexts.as_ref())
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    for v in contexts {
        let Some(target) = v.strip_prefix("target:") else {
            continue;
        };
        if target == name {
            return Err(format!("target {target} cannot link to itself"));
        }
        if let Some(pos) = visited.iter().position(|x| x == target) {
            let mut path: Vec<&str> = visited[pos..].iter().map(String::as_str).collect();
            path.push(target);
            return Err(format!(
                "infinite loop from {name} to {target} (target contexts: {})",
                path.join(" -> ")
            ));
        }
        if !m.contains_key(target) {
            let mut t2 = resolve_target(cfg, target, ov)?;
            t2.output = Some(vec![super::entries::ExportEntry {
                typ: "cacheonly".into(),
                attrs: Default::default(),
                dest: String::new(),
            }]);
            t2.linked = true;
            m.insert(target.to_string(), t2);
        }
        let mut sub = visited.clone();
        load_links(cfg, target, m, ov, &mut sub)?;
        let (ents, plats2) = {
            let t2 = &m[target];
            (
                t2.entitlements.clone().unwrap_or_default(),
                t2.platforms.clone().unwrap_or_default(),
            )
        };
        if let Some(t) = m.get_mut(name) {
            for e in ents {
                let list = t.entitlements.get_or_insert_with(Vec::new);
                if !list.contains(&e) {
                    list.push(e);
                }
            }
            let plats = t.platforms.clone().unwrap_or_default();
            if plats.len() > 1 && plats2.len() > 1 && !plats.iter().all(|p| plats2.contains(p)) {
                return Err(format!(
                    "target {target} can't be used by {name} because its platforms [{}] are not a subset of [{}]",
                    plats.join(" "),
                    plats2.join(" ")
                ));
            }
        }
    }
    Ok(())
}

/// Cleans the context as the build would see it (buildx's `toBuildOpt` side effect).
pub fn clean_context(c: &str) -> String {
    if let Some(rest) = c.strip_prefix("cwd://") {
        return clean_path(rest);
    }
    if super::config::is_remote_url(c) {
        return c.to_string();
    }
    clean_path(c)
}
