//! Stages and their links: global ARGs, FROM expansion, target selection, dependencies
//! (`FROM <stage>`, `COPY --from`, `RUN --mount=from=`), cycles, reachability, base
//! resolution and ONBUILD triggers; then the needed stages are dispatched in file order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::dockerfile::error::suggest;
use crate::dockerfile::instructions::{parse_onbuild_trigger, Command, Instruction, Mount};
use crate::dockerfile::shell::Lex;
use crate::dockerfile::{Dockerfile, ErrorKind, Stage};
use crate::oci::{Platform, Reference};

use super::dispatch::{self, State};
use super::types::{BaseImage, BaseResolver, BuildRequest, NamedContext, Plan};
use super::PlanError;
use crate::engine::config;

/// What a FROM refers to, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BaseRef {
    Stage(usize),
    Scratch,
    Image(String),
    /// A named context matching the base name.
    Context(String),
    /// The stage itself is replaced by the named context of its name.
    Replaced(String),
}

/// A stage with its FROM evaluated and its links found.
#[derive(Debug, Clone)]
pub(super) struct StageInfo {
    pub base: BaseRef,
    /// The expanded `FROM --platform`.
    pub platform: Option<Platform>,
    /// Stage dependencies through COPY --from / RUN --mount=from, with the command.
    pub deps: Vec<(usize, usize)>,
    /// ONBUILD triggers of the base, run before the stage's own instructions.
    pub triggers: Vec<Command>,
    pub triggers_done: bool,
}

/// Everything the planner shares while planning.
pub(super) struct Ctx<'a> {
    pub df: &'a Dockerfile,
    pub req: &'a BuildRequest,
    pub resolver: &'a mut dyn BaseResolver,
    pub lex: Lex,
    /// Global ARGs (automatic platform args, then the meta ARGs), in order.
    pub global: Vec<(String, String)>,
    /// `SOURCE_DATE_EPOCH` as an RFC 3339 time, for history entries.
    pub created: Option<String>,
    images: HashMap<(String, String), BaseImage>,
}

impl Ctx<'_> {
    /// The RUN environment BuildKit derives from proxy build args (any case; of two
    /// spellings the last in name order wins): for each of http, https, ftp, no and all
    /// given, `X_PROXY=V` and `x_proxy=V`, in that order (BuildKit's `proxyEnvList`).
    pub fn proxy_env(&self) -> Vec<String> {
        const PROXIES: &[&str] = &[
            "http_proxy",
            "https_proxy",
            "ftp_proxy",
            "no_proxy",
            "all_proxy",
        ];
        let mut values: [Option<&str>; 5] = [None; 5];
        // build_args is a BTreeMap: iterated in name order, as BuildKit sorts the keys.
        for (k, v) in &self.req.build_args {
            if let Some(i) = PROXIES.iter().position(|p| k.eq_ignore_ascii_case(p)) {
                values[i] = Some(v.as_str());
            }
        }
        let mut out = Vec::new();
        for (p, v) in PROXIES.iter().zip(values) {
            // BuildKit skips an empty value.
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.push(format!("{}={v}", p.to_ascii_uppercase()));
                out.push(format!("{p}={v}"));
            }
        }
        out
    }

    /// A located error for a stage's FROM line.
    pub fn stage_error(&self, stage: &Stage, msg: String) -> PlanError {
        let mut e = self
            .df
            .error_at(ErrorKind::Invalid(msg), stage.start_line, stage.end_line);
        e.instruction = Some(stage.original.clone());
        PlanError::Dockerfile(e)
    }

    /// A located error for a command.
    pub fn command_error(&self, kind: ErrorKind, command: &Command) -> PlanError {
        PlanError::Dockerfile(self.df.command_error(kind, command))
    }

    /// Resolves an image (cached per reference and platform).
    pub fn resolve_image(
        &mut self,
        reference: &str,
        platform: &Platform,
    ) -> Result<BaseImage, PlanError> {
        let k = (reference.to_string(), platform.to_string());
        if let Some(img) = self.images.get(&k) {
            return Ok(img.clone());
        }
        let img = self.resolver.resolve(reference, platform)?;
        self.images.insert(k, img.clone());
        Ok(img)
    }

    /// The named context for `name` (exactly, or as the same normalised image name).
    pub fn named_context(&self, name: &str) -> Option<(String, NamedContext)> {
        if name.eq_ignore_ascii_case("scratch") || name.eq_ignore_ascii_case("context") {
            return None;
        }
        if let Some((k, v)) = self.req.named_contexts.get_key_value(name) {
            return Some((k.clone(), v.clone()));
        }
        let norm = |s: &str| {
            Reference::parse(s)
                .ok()
                .map(|r| r.with_default_tag().to_string())
        };
        let want = norm(name)?;
        self.req
            .named_contexts
            .iter()
            .find(|(k, _)| norm(k).as_deref() == Some(want.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
    }
}

fn set(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}

/// The automatic platform args (build args may override them) and the meta ARGs.
fn global_args(
    df: &Dockerfile,
    req: &BuildRequest,
    lex: &Lex,
) -> Result<Vec<(String, String)>, PlanError> {
    let bp = &req.build_platform;
    let tp = &req.platform;
    let target = req
        .target
        .clone()
        .or_else(|| df.stages.last().and_then(|s| s.name.clone()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "default".into());
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in [
        ("BUILDPLATFORM", bp.to_string()),
        ("BUILDOS", bp.os.clone()),
        ("BUILDOSVERSION", bp.os_version.clone()),
        ("BUILDARCH", bp.architecture.clone()),
        ("BUILDVARIANT", bp.variant.clone()),
        ("TARGETPLATFORM", tp.to_string()),
        ("TARGETOS", tp.os.clone()),
        ("TARGETOSVERSION", tp.os_version.clone()),
        ("TARGETARCH", tp.architecture.clone()),
        ("TARGETVARIANT", tp.variant.clone()),
        ("TARGETSTAGE", target),
    ] {
        let v = req.build_args.get(k).cloned().unwrap_or(v);
        set(&mut env, k, &v);
    }
    for cmd in &df.meta_args {
        let Instruction::Arg(defs) = &cmd.instruction else {
            continue;
        };
        for def in defs {
            let value = match (req.build_args.get(&def.key), &def.value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(
                    lex.process_word(d, &env)
                        .map_err(|e| PlanError::Dockerfile(df.command_error(e.into(), cmd)))?,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                set(&mut env, &def.key, &v);
            }
        }
    }
    Ok(env)
}

/// The stage a `--from`/`from=` value names: a stage name or (COPY only) an index.
pub(super) fn stage_ref(
    df: &Dockerfile,
    from: &str,
    allow_index: bool,
) -> Result<Option<usize>, String> {
    if allow_index {
        if let Ok(i) = from.parse::<i64>() {
            return if i >= 0 && (i as usize) < df.stages.len() {
                Ok(Some(i as usize))
            } else {
                Err(format!("invalid stage index {i}"))
            };
        }
    }
    Ok(stage_by_name(df, from))
}

/// The stage named `name` (case-insensitive); with duplicate names the last one wins,
/// as in BuildKit.
pub(super) fn stage_by_name(df: &Dockerfile, name: &str) -> Option<usize> {
    df.stages.iter().rposition(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The `from=` of each `--mount` of a RUN (unexpanded; BuildKit links stages before
/// expansion too).
pub(super) fn mount_froms(specs: &[String]) -> Vec<String> {
    specs
        .iter()
        .filter_map(|s| Mount::parse(s, &mut |w: &str| Ok(w.to_string())).ok())
        .filter_map(|m| m.from)
        .collect()
}

fn command_deps(ctx: &Ctx, cmd: &Command) -> Result<Vec<usize>, PlanError> {
    match &cmd.instruction {
        Instruction::Copy(c) => match &c.from {
            Some(f) => stage_ref(ctx.df, f, true)
                .map(|s| s.into_iter().collect())
                .map_err(|m| ctx.command_error(ErrorKind::Invalid(m), cmd)),
            None => Ok(Vec::new()),
        },
        Instruction::Run(r) => Ok(mount_froms(&r.mounts)
            .iter()
            .filter_map(|f| stage_by_name(ctx.df, f))
            .collect()),
        _ => Ok(Vec::new()),
    }
}

fn stage_infos(ctx: &Ctx) -> Result<Vec<StageInfo>, PlanError> {
    let df = ctx.df;
    let mut infos = Vec::with_capacity(df.stages.len());
    for (i, st) in df.stages.iter().enumerate() {
        let name = ctx
            .lex
            .process_word(&st.base, &ctx.global)
            .map_err(|e| ctx.stage_error(st, e.to_string()))?;
        if name.is_empty() {
            return Err(ctx.stage_error(st, format!("base name ({}) should not be blank", st.base)));
        }
        let platform = match &st.platform {
            None => None,
            Some(p) => {
                let v = ctx.lex.process_word(p, &ctx.global).map_err(|e| {
                    ctx.stage_error(
                        st,
                        format!("failed to process arguments for platform {p}: {e}"),
                    )
                })?;
                if v.is_empty() {
                    return Err(
                        ctx.stage_error(st, format!("empty platform value from expression {p}"))
                    );
                }
                Some(Platform::parse(&v).map_err(|e| {
                    ctx.stage_error(st, format!("failed to parse platform {p}: {e}"))
                })?)
            }
        };
        let replaced = st.name.as_deref().and_then(|n| ctx.named_context(n));
        let base = if let Some((k, _)) = replaced {
            BaseRef::Replaced(k)
        } else if let Some(j) = df.stages[..i]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(name.as_str()))
        {
            BaseRef::Stage(j)
        } else if name == "scratch" {
            BaseRef::Scratch
        } else if let Some((k, _)) = ctx.named_context(&name) {
            BaseRef::Context(k)
        } else {
            if let Err(e) = Reference::parse(&name) {
                return Err(
                    ctx.stage_error(st, format!("failed to parse stage name {name:?}: {e}"))
                );
            }
            BaseRef::Image(name)
        };
        let mut deps = Vec::new();
        if !matches!(base, BaseRef::Replaced(_)) {
            for (ci, cmd) in st.commands.iter().enumerate() {
                for d in command_deps(ctx, cmd)? {
                    deps.push((d, ci));
                }
            }
        }
        infos.push(StageInfo {
            base,
            platform,
            deps,
            triggers: Vec::new(),
            triggers_done: false,
        });
    }
    Ok(infos)
}

/// BuildKit's cycle check over COPY --from / mount links, reported at the command that
/// closes the cycle.
fn check_cycles(ctx: &Ctx, infos: &[StageInfo]) -> Result<(), PlanError> {
    fn visit(
        s: usize,
        infos: &[StageInfo],
        visited: &mut BTreeSet<usize>,
        path: &mut BTreeSet<usize>,
    ) -> Option<(usize, usize)> {
        if !visited.insert(s) {
            return None;
        }
        path.insert(s);
        for &(dep, ci) in &infos[s].deps {
            if path.contains(&dep) {
                return Some((s, ci));
            }
            if let Some(found) = visit(dep, infos, visited, path) {
                return Some(found);
            }
        }
        path.remove(&s);
        None
    }
    let mut visited = BTreeSet::new();
    for s in 0..infos.len() {
        let mut path = BTreeSet::new();
        if let Some((at, ci)) = visit(s, infos, &mut visited, &mut path) {
            let st = &ctx.df.stages[s];
            let name = st.name.clone().unwrap_or_else(|| format!("stage-{s}"));
            let cmd = ctx.df.stages[at].commands.get(ci);
            let msg = format!("circular dependency detected on stage: {name}");
            return Err(match cmd {
                Some(c) => ctx.command_error(ErrorKind::Invalid(msg), c),
                None => ctx.stage_error(st, msg),
            });
        }
    }
    Ok(())
}

fn reachable(target: usize, infos: &[StageInfo]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if !out.insert(s) {
            continue;
        }
        if let BaseRef::Stage(b) = infos[s].base {
            todo.push(b);
        }
        todo.extend(infos[s].deps.iter().map(|(d, _)| *d));
    }
    out
}

fn select_target(ctx: &Ctx) -> Result<usize, PlanError> {
    let df = ctx.df;
    let Some(t) = ctx.req.target.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(df.stages.len().saturating_sub(1));
    };
    stage_by_name(df, t).ok_or_else(|| {
        let available: Vec<(String, usize)> = df
            .stages
            .iter()
            .filter_map(|s| s.name.clone().map(|n| (n, s.start_line)))
            .collect();
        let names: Vec<&str> = available.iter().map(|(n, _)| n.as_str()).collect();
        PlanError::MissingTarget {
            file: df.file.clone(),
            target: t.to_string(),
            suggestion: suggest(t, &names, true),
            available,
        }
    })
}

/// The ONBUILD triggers a stage inherits: the ONBUILD instructions of its base stage,
/// or the `OnBuild` of its base image.
fn load_triggers(ctx: &mut Ctx, s: usize, infos: &mut [StageInfo]) -> Result<bool, PlanError> {
    let st = &ctx.df.stages[s];
    let exprs: Vec<String> = match &infos[s].base {
        BaseRef::Stage(b) => ctx.df.stages[*b]
            .commands
            .iter()
            .filter_map(|c| match &c.instruction {
                Instruction::Onbuild(o) => Some(o.expression.clone()),
                _ => None,
            })
            .collect(),
        BaseRef::Image(name) => {
            let platform = infos[s]
                .platform
                .clone()
                .unwrap_or_else(|| ctx.req.platform.clone());
            let img = ctx
                .resolve_image(name, &platform)
                .map_err(|e| ctx.stage_error(st, e.to_string()))?;
            img.config.config.on_build.clone().unwrap_or_default()
        }
        BaseRef::Context(name) => match ctx.named_context(name) {
            Some((_, NamedContext::Image(r) | NamedContext::OciLayout(r))) => {
                let platform = infos[s]
                    .platform
                    .clone()
                    .unwrap_or_else(|| ctx.req.platform.clone());
                let img = ctx
                    .resolve_image(&r, &platform)
                    .map_err(|e| ctx.stage_error(st, e.to_string()))?;
                img.config.config.on_build.clone().unwrap_or_default()
            }
            _ => Vec::new(),
        },
        BaseRef::Scratch | BaseRef::Replaced(_) => Vec::new(),
    };
    infos[s].triggers_done = true;
    let mut new_deps = false;
    for expr in exprs {
        let mut cmd = parse_onbuild_trigger(&expr).map_err(|e| {
            let mut le = ctx.df.error_at(e.kind.clone(), st.start_line, st.end_line);
            le.instruction = Some(format!("ONBUILD {expr}"));
            PlanError::Dockerfile(le)
        })?;
        cmd.start_line = st.start_line;
        cmd.end_line = st.end_line;
        for d in command_deps(ctx, &cmd)? {
            infos[s].deps.push((d, usize::MAX));
            new_deps = true;
        }
        infos[s].triggers.push(cmd);
    }
    Ok(new_deps)
}

/// `SOURCE_DATE_EPOCH` from the build args or a global ARG, when it is a number of
/// seconds (BuildKit's other forms, `context` and named contexts, are not supported).
fn source_date_epoch(req: &BuildRequest, global: &[(String, String)]) -> Option<i64> {
    let v = req
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .map(String::as_str)
        .or_else(|| {
            global
                .iter()
                .find(|(k, v)| k == "SOURCE_DATE_EPOCH" && !v.is_empty())
                .map(|(_, v)| v.as_str())
        })?;
    v.parse().ok()
}

/// Plans the build of `req.target` (default: the last stage) for `req.platform`.
pub fn plan(
    df: &Dockerfile,
    req: &BuildRequest,
    resolver: &mut dyn BaseResolver,
) -> Result<Plan, PlanError> {
    if df.stages.is_empty() {
        let e = df.error_at(
            ErrorKind::Invalid("dockerfile contains no stages to build".into()),
            1,
            1,
        );
        return Err(PlanError::Dockerfile(e));
    }
    let lex = df.lex();
    let global = global_args(df, req, &lex)?;
    let epoch = source_date_epoch(req, &global);
    let mut ctx = Ctx {
        df,
        req,
        resolver,
        lex,
        global,
        created: epoch.map(config::rfc3339),
        images: HashMap::new(),
    };
    let mut infos = stage_infos(&ctx)?;
    let target = select_target(&ctx)?;
    check_cycles(&ctx, &infos)?;
    let needed = loop {
        let needed = reachable(target, &infos);
        let mut new_deps = false;
        for &s in &needed {
            if !infos[s].triggers_done {
                new_deps |= load_triggers(&mut ctx, s, &mut infos)?;
            }
        }
        if !new_deps {
            break needed;
        }
        check_cycles(&ctx, &infos)?;
    };
    let mut done: BTreeMap<usize, State> = BTreeMap::new();
    let mut stages = Vec::new();
    for s in needed.iter().copied() {
        let (stage_plan, state) = dispatch::dispatch_stage(&mut ctx, s, &infos[s], &done)?;
        done.insert(s, state);
        stages.push(stage_plan);
    }
    let pos = stages.iter().position(|p| p.index == target).unwrap_or(0);
    let mut image = stages.get(pos).map(|p| p.image.clone()).unwrap_or_default();
    config::finalize(
        &mut image,
        &req.platform,
        req.explicit_platform,
        &req.labels,
    );
    if let Some(t) = stages.get_mut(pos) {
        t.image = image.clone();
    }
    Ok(Plan {
        platform: req.platform.clone(),
        stages,
        target: pos,
        image,
        epoch,
    })
}

/// [`plan`] for each of `platforms` (a multi-platform build): the same request with the
/// platform set explicitly, in the given order.
pub fn plan_each(
    df: &Dockerfile,
    req: &BuildRequest,
    platforms: &[Platform],
    resolver: &mut dyn BaseResolver,
) -> Result<Vec<Plan>, PlanError> {
    platforms
        .iter()
        .map(|p| plan(df, &req.clone().for_platform(p.clone()), resolver))
        .collect()
}
