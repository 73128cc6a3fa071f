//! Evaluated bake files -> a [`Config`]: every target and group, with matrix instances,
//! repeated definitions merged, and renamed (matrix) blocks turned into groups.

use super::eval::context::{Context, Inputs, VariableInfo};
use super::eval::expr::EvalError;
use super::model::{Group, Target, GROUP_FIELDS, TARGET_FIELDS};
use super::suggest;
use super::syntax::Document;
use std::path::Path;

/// All targets and groups of the files, in definition order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub groups: Vec<Group>,
    pub targets: Vec<Target>,
    pub variables: Vec<VariableInfo>,
}

impl Config {
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// Evaluates the document into a config.
/// `base` holds what compose files defined: bake blocks merge onto its targets and
/// replace its groups, as buildx decodes HCL onto the compose config.
pub fn evaluate(
    doc: &Document,
    inputs: Inputs,
    file_relative: bool,
    base: Config,
) -> Result<Config, EvalError> {
    let mut ctx = Context::new(doc, inputs)?;
    let variables = ctx.resolve_globals()?;

    // Names first (matrix blocks expand to several), then the blocks themselves.
    let mut order = Vec::new();
    for (idx, b) in doc.blocks.iter().enumerate() {
        if b.kind == "target" || b.kind == "group" {
            let insts = ctx.instances(idx)?;
            order.push((idx, insts));
        }
    }
    let mut cfg = Config {
        variables,
        groups: base.groups,
        targets: base.targets,
    };
    let mut renamed: Vec<(String, Vec<String>)> = Vec::new();
    for (idx, insts) in &order {
        let block = &doc.blocks[*idx];
        let src = &doc.sources[block.src];
        let base = local_file_dir(&src.name);
        if block.kind == "target" {
            let entry = match renamed.iter_mut().find(|(n, _)| n == block.name()) {
                Some(e) => e,
                None => {
                    renamed.push((block.name().to_string(), Vec::new()));
                    renamed
                        .last_mut()
                        .ok_or_else(|| EvalError::new("internal", "renamed"))?
                }
            };
            entry.1.extend(insts.iter().map(|i| i.name.clone()));
        }
        for (i, inst) in insts.iter().enumerate() {
            let fields = if block.kind == "target" {
                TARGET_FIELDS
            } else {
                GROUP_FIELDS
            };
            for attr in &block.attrs {
                if attr.name == "matrix" || attr.name == "name" {
                    continue;
                }
                if !fields.contains(&attr.name.as_str()) {
                    let mut detail =
                        format!("An argument named \"{}\" is not expected here.", attr.name);
                    if let Some(s) = suggest::closest(&attr.name, fields.iter().copied()) {
                        detail.push_str(&format!(" Did you mean \"{s}\"?"));
                    }
                    return Err(EvalError::new("Unsupported argument", detail)
                        .at(attr.src, attr.span.clone()));
                }
            }
            if let Some(nested) = block.blocks.first() {
                return Err(EvalError::new(
                    "Unsupported block type",
                    format!("Blocks of type \"{}\" are not expected here.", nested.kind),
                )
                .at(nested.src, nested.span.clone()));
            }
            if block.kind == "group" {
                let mut g = Group {
                    name: inst.name.clone(),
                    ..Group::default()
                };
                if block.attr("targets").is_none() {
                    return Err(EvalError::new(
                        "Missing required argument",
                        "The argument \"targets\" is required, but no definition was found.",
                    )
                    .at(block.src, block.span.clone()));
                }
                for f in GROUP_FIELDS {
                    if let Some(v) = ctx.instance_attr(inst, i, f)? {
                        g.set_field(f, &v)
                            .map_err(|e| field_error(block, f, e.message))?;
                    }
                }
                // A repeated group replaces the earlier one.
                match cfg.groups.iter_mut().find(|x| x.name == g.name) {
                    Some(existing) => *existing = g,
                    None => cfg.groups.push(g),
                }
            } else {
                let mut t = Target {
                    name: inst.name.clone(),
                    ..Target::default()
                };
                for f in TARGET_FIELDS {
                    if let Some(v) = ctx.instance_attr(inst, i, f)? {
                        t.set_field(f, &v)
                            .map_err(|e| field_error(block, f, e.message))?;
                    }
                }
                t.default_context_base = Some(base.clone().unwrap_or_default());
                if let Some(a) = block.attr("context") {
                    t.context_base = Some(base.clone().unwrap_or_default());
                    t.context_base_ref = context_ref(&a.expr);
                }
                if block.attr("contexts").is_some() {
                    if let Some(c) = &t.contexts {
                        for k in c.keys() {
                            t.contexts_base
                                .insert(k.clone(), base.clone().unwrap_or_default());
                        }
                    }
                }
                match cfg.targets.iter_mut().find(|x| x.name == t.name) {
                    Some(existing) => existing.merge(&t),
                    None => cfg.targets.push(t),
                }
            }
        }
    }
    for (old, mut new) in renamed {
        let mut seen = std::collections::HashSet::new();
        new.retain(|n| seen.insert(n.clone()));
        if new.is_empty() || (new.len() == 1 && new[0] == old) {
            continue;
        }
        cfg.groups.push(Group {
            name: old,
            description: String::new(),
            targets: new,
        });
    }
    dedupe(&mut cfg);
    if file_relative {
        rebase_context_paths(&mut cfg);
    }
    Ok(cfg)
}

fn field_error(block: &super::syntax::Block, field: &str, message: String) -> EvalError {
    let attr = block.attr(field);
    EvalError::new("Unsuitable value type", message).at(
        block.src,
        attr.and_then(|a| a.expr_span())
            .or_else(|| block.span.clone()),
    )
}

/// `context = target.x.context` names target x.
fn context_ref(expr: &hcl_edit::expr::Expression) -> Option<String> {
    use hcl_edit::expr::{Expression, TraversalOperator};
    let Expression::Traversal(t) = expr else {
        return None;
    };
    let Expression::Variable(root) = &t.expr else {
        return None;
    };
    if root.as_str() != "target" || t.operators.len() != 2 {
        return None;
    }
    let name = match t.operators[0].value() {
        TraversalOperator::GetAttr(a) => a.as_str().to_string(),
        TraversalOperator::Index(Expression::String(s)) => s.to_string(),
        _ => return None,
    };
    match t.operators[1].value() {
        TraversalOperator::GetAttr(a) if a.as_str() == "context" => Some(name),
        _ => None,
    }
}

/// Groups: remove repeated targets. Targets: merge repeated definitions.
fn dedupe(cfg: &mut Config) {
    for g in &mut cfg.groups {
        let mut seen = std::collections::HashSet::new();
        g.targets.retain(|t| seen.insert(t.clone()));
    }
}

/// The directory of a bake file, for file-relative paths (none for stdin).
pub fn local_file_dir(name: &str) -> Option<String> {
    if name.is_empty() || name == "-" || is_remote_url(name) {
        return None;
    }
    let parent = Path::new(name)
        .parent()
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default();
    Some(if parent.is_empty() {
        ".".into()
    } else {
        parent
    })
}

pub fn is_remote_url(s: &str) -> bool {
    s.starts_with("https://")
        || s.starts_with("http://")
        || s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("ssh://")
        || (s.starts_with("github.com/") && s.len() > "github.com/".len())
}

pub fn is_special_context(p: &str) -> bool {
    p.starts_with("cwd://")
        || p.starts_with("target:")
        || p.starts_with("docker-image:")
        || p.starts_with("oci-layout://")
        || is_remote_url(p)
}

pub fn rebase_context_path(base: &str, p: &str) -> String {
    if base.is_empty() || p.is_empty() || is_special_context(p) || p.starts_with('/') {
        return p.to_string();
    }
    clean_path(&format!("{base}/{p}"))
}

fn rebase_context_paths(cfg: &mut Config) {
    let snapshot: Vec<(String, Option<String>, Option<String>)> = cfg
        .targets
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.context_base.clone(),
                t.default_context_base.clone(),
            )
        })
        .collect();
    for t in &mut cfg.targets {
        if let Some(r) = &t.context_base_ref {
            if let Some((_, cb, db)) = snapshot.iter().find(|(n, _, _)| n == r) {
                if cb.is_some() {
                    t.context_base = cb.clone();
                } else if db.is_some() {
                    t.context_base = db.clone();
                }
            }
        }
        match (&t.context, &t.context_base) {
            (Some(c), Some(base)) => t.context = Some(rebase_context_path(base, c)),
            (None, _) => t.use_file_relative = t.default_context_base.is_some(),
            _ => {}
        }
        if let Some(c) = &mut t.contexts {
            for (k, v) in c.iter_mut() {
                if let Some(base) = t.contexts_base.get(k) {
                    *v = rebase_context_path(base, v);
                }
            }
        }
    }
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    crate::pathutil::clean(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean_path("./a/../b/"), "b");
        assert_eq!(clean_path("../../x"), "../../x");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("a/.."), ".");
    }
}
