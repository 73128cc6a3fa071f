//! The target graph: `target:` contexts are edges; targets are ordered so dependencies
//! build first, and cycles are reported with their path.

use super::model::Target;
use std::collections::BTreeMap;

/// Targets in an order where every `target:` context dependency comes before its user.
pub fn build_order(targets: &BTreeMap<String, Target>) -> Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        name: &'a str,
        targets: &'a BTreeMap<String, Target>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        match state.get(name) {
            Some(2) => return Ok(()),
            Some(1) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].to_vec();
                cycle.push(name);
                return Err(format!("cycle in target contexts: {}", cycle.join(" -> ")));
            }
            _ => {}
        }
        state.insert(name, 1);
        stack.push(name);
        if let Some(t) = targets.get(name) {
            for dep in deps(t) {
                if let Some((k, _)) = targets.get_key_value(dep) {
                    visit(k, targets, state, stack, order)?;
                }
            }
        }
        stack.pop();
        state.insert(name, 2);
        order.push(name.to_string());
        Ok(())
    }
    for name in targets.keys() {
        visit(name, targets, &mut state, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// Names of the targets a target uses as `target:` contexts.
pub fn deps(t: &Target) -> Vec<&str> {
    t.contexts
        .iter()
        .flatten()
        .filter_map(|(_, v)| v.strip_prefix("target:"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, deps: &[&str]) -> (String, Target) {
        let mut t = Target {
            name: name.into(),
            ..Target::default()
        };
        if !deps.is_empty() {
            t.contexts = Some(
                deps.iter()
                    .map(|d| (d.to_string(), format!("target:{d}")))
                    .collect(),
            );
        }
        (name.into(), t)
    }

    #[test]
    fn dependencies_first() {
        let m: BTreeMap<_, _> = [t("app", &["base"]), t("base", &[])].into_iter().collect();
        assert_eq!(build_order(&m).unwrap(), vec!["base", "app"]);
    }

    #[test]
    fn cycle_is_reported_with_path() {
        let m: BTreeMap<_, _> = [t("a", &["b"]), t("b", &["a"])].into_iter().collect();
        let e = build_order(&m).unwrap_err();
        assert!(e.contains("a -> b -> a"), "{e}");
    }
}
