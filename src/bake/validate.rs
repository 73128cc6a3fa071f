//! What a build would reject, checked before printing or building (buildx's `toBuildOpt`),
//! and the context clean-up it applies.

use super::model::Target;
use super::resolve::clean_context;

/// Checks a resolved target; cleans its context path as the build sees it.
pub fn check_target(t: &mut Target) -> Result<(), String> {
    if t.context.as_deref() == Some("-") {
        return Err("context from stdin not allowed in bake".into());
    }
    if t.dockerfile.as_deref() == Some("-") {
        return Err("dockerfile from stdin not allowed in bake".into());
    }
    let ctx = t.context.clone().unwrap_or_else(|| ".".into());
    t.context = Some(clean_context(&ctx));
    Ok(())
}
