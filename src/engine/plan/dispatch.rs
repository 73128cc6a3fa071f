//! Dispatching one stage: its starting state (base image, parent stage, scratch or named
//! context), then each instruction in order, exactly as BuildKit's `dispatch*` functions
//! update the build state and the image config. Layer-producing instructions are turned
//! into steps by [`super::steps`].

use std::collections::BTreeMap;

use crate::dockerfile::instructions::{Command, Instruction};
use crate::dockerfile::{ErrorKind, Stage};
use crate::oci::image::Image;
use crate::oci::Platform;

use super::graph::{BaseRef, Ctx, StageInfo};
use super::types::{BaseImage, NamedContext, StageBase, StagePlan, Step};
use super::PlanError;
use crate::engine::{config, key};

/// ARGs that never become environment variables.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// The build state of a stage after its last instruction (a child stage starts from it).
#[derive(Debug, Clone)]
pub(super) struct State {
    pub image: Image,
    /// The environment of the build state (ENV and ARG values), used for expansion and RUN.
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub user: String,
    pub platform: Platform,
    /// ARGs declared in scope, in order (RUN's history shows them).
    pub build_args: Vec<(String, Option<String>)>,
    /// The key of the last step (or of the base).
    pub key: String,
    /// Layers so far (the base's included).
    pub layers: usize,
}

impl State {
    fn new(image: Image, platform: Platform, key: String, layers: usize) -> State {
        State {
            image,
            env: Vec::new(),
            workdir: "/".into(),
            user: String::new(),
            platform,
            build_args: Vec::new(),
            key,
            layers,
        }
    }

    /// Sets a variable; like LLB's `EnvList.AddOrReplace`, a re-set variable moves to
    /// the end (the order RUN sees).
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    pub fn get_env(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// One stage being dispatched.
pub(super) struct Dispatcher<'c, 'a> {
    pub ctx: &'c mut Ctx<'a>,
    pub state: State,
    pub steps: Vec<Step>,
    pub done: &'c BTreeMap<usize, State>,
    pub stage_name: String,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

fn image_base(b: BaseImage) -> (Image, StageBase, usize) {
    let mut img = b.config.clone();
    img.created = None;
    let layers = b.layers.len();
    (img, StageBase::Image(Box::new(b)), layers)
}

/// The starting point of a stage whose base is a named context.
fn named_base(
    ctx: &mut Ctx,
    stage: &Stage,
    name: &str,
    platform: &Platform,
) -> Result<(Image, StageBase, usize, String), PlanError> {
    let Some((_, nc)) = ctx.named_context(name) else {
        return Err(ctx.stage_error(stage, format!("named context {name:?} not found")));
    };
    match &nc {
        NamedContext::Image(r) | NamedContext::OciLayout(r) => {
            let b = ctx
                .resolve_image(r, platform)
                .map_err(|e| ctx.stage_error(stage, e.to_string()))?;
            let digest = b.digest.clone();
            let (img, base, layers) = image_base(b);
            Ok((
                img,
                base,
                layers,
                key::base_key("image", &platform.to_string(), &digest),
            ))
        }
        NamedContext::Local(_) | NamedContext::Target(_) => Ok((
            config::empty_image(platform),
            StageBase::Context(name.to_string()),
            0,
            key::base_key(
                "context",
                &platform.to_string(),
                &format!("{name}={}", nc.describe()),
            ),
        )),
    }
}

/// The platform BuildKit uses for an image without `FROM --platform` when the target
/// was not asked for: a build platform matching the image, else the target.
fn auto_platform(ctx: &Ctx, img: &Image, platform: Platform) -> Platform {
    let req = ctx.req;
    if req.explicit_platform {
        return platform;
    }
    if img.os == platform.os && img.architecture == platform.architecture {
        return platform;
    }
    let bp = &req.build_platform;
    if img.os == bp.os && img.architecture == bp.architecture {
        return bp.clone();
    }
    platform
}

/// Plans stage `s`: its start, then its ONBUILD triggers and instructions.
pub(super) fn dispatch_stage<'a>(
    ctx: &mut Ctx<'a>,
    s: usize,
    info: &StageInfo,
    done: &BTreeMap<usize, State>,
) -> Result<(StagePlan, State), PlanError> {
    let df = ctx.df;
    let stage = &df.stages[s];
    let requested = info
        .platform
        .clone()
        .unwrap_or_else(|| ctx.req.platform.clone());
    let (base, mut state, replaced) = match &info.base {
        BaseRef::Stage(b) => {
            let Some(parent) = done.get(b) else {
                return Err(ctx.stage_error(stage, format!("stage {b} was not built before")));
            };
            (StageBase::Stage(*b), parent.clone(), false)
        }
        BaseRef::Scratch => {
            let p = ctx.req.platform.clone();
            let k = key::base_key("scratch", &p.to_string(), "");
            (
                StageBase::Scratch,
                State::new(config::empty_image(&p), p, k, 0),
                false,
            )
        }
        BaseRef::Image(name) => {
            let b = ctx
                .resolve_image(name, &requested)
                .map_err(|e| ctx.stage_error(stage, e.to_string()))?;
            let k = key::base_key("image", &requested.to_string(), &b.digest);
            let (img, base, layers) = image_base(b);
            let p = if info.platform.is_none() {
                auto_platform(ctx, &img, requested.clone())
            } else {
                requested.clone()
            };
            (base, State::new(img, p, k, layers), false)
        }
        BaseRef::Context(name) | BaseRef::Replaced(name) => {
            let (img, base, layers, k) = named_base(ctx, stage, name, &requested)?;
            let replaced = matches!(info.base, BaseRef::Replaced(_));
            (
                base,
                State::new(img, requested.clone(), k, layers),
                replaced,
            )
        }
    };
    // A base's ONBUILD triggers run in this stage (see graph::load_triggers) and are
    // not passed on.
    state.image.config.on_build = None;
    let base_key = state.key.clone();
    let base_layers = state.layers;
    let no_cache = stage.name.as_deref().is_some_and(|n| {
        ctx.req
            .no_cache_filter
            .iter()
            .any(|f| f.eq_ignore_ascii_case(n))
    });
    let mut steps = Vec::new();
    if !replaced {
        init_state(&mut state);
        let mut d = Dispatcher {
            ctx,
            state,
            steps: Vec::new(),
            done,
            stage_name: stage.name.clone().unwrap_or_else(|| format!("stage-{s}")),
            cmd_set: false,
        };
        for cmd in &info.triggers {
            d.dispatch(cmd, true)?;
        }
        for cmd in &stage.commands {
            d.dispatch(cmd, false)?;
        }
        state = d.state;
        steps = d.steps;
    }
    let plan = StagePlan {
        index: s,
        name: stage.name.clone(),
        base,
        platform: state.platform.clone(),
        steps,
        image: state.image.clone(),
        base_layers,
        base_key,
        key: state.key.clone(),
        no_cache,
        line: stage.start_line,
    };
    Ok((plan, state))
}

/// What BuildKit does before the first instruction: `PATH` always set, the config's Env
/// in the build state, its WorkingDir normalised, its User applied.
fn init_state(state: &mut State) {
    let has_path = state
        .image
        .config
        .env
        .iter()
        .any(|e| config::split_env(e).0 == "PATH");
    if !has_path && state.platform.os != "windows" {
        state
            .image
            .config
            .env
            .push(format!("PATH={}", config::DEFAULT_PATH));
    }
    let env: Vec<(String, String)> = state
        .image
        .config
        .env
        .iter()
        .map(|e| {
            let (k, v) = config::split_env(e);
            (k.to_string(), v.to_string())
        })
        .collect();
    for (k, v) in env {
        state.set_env(&k, &v);
    }
    if !state.image.config.working_dir.is_empty() {
        let wd = config::normalize_path(
            &state.image.config.working_dir,
            &state.image.config.working_dir,
            false,
        );
        state.image.config.working_dir = wd.clone();
        state.workdir = wd;
    }
    state.user = state.image.config.user.clone();
}

impl Dispatcher<'_, '_> {
    pub fn err(&self, kind: ErrorKind, cmd: &Command) -> PlanError {
        self.ctx.command_error(kind, cmd)
    }

    pub fn invalid(&self, msg: String, cmd: &Command) -> PlanError {
        self.err(ErrorKind::Invalid(msg), cmd)
    }

    pub fn history(&mut self, msg: &str) {
        let created = self.ctx.created.clone();
        config::commit_history(&mut self.state.image, msg, false, false, created);
    }

    /// Applies one instruction.
    fn dispatch(&mut self, cmd: &Command, on_build: bool) -> Result<(), PlanError> {
        let mut ins = cmd.instruction.clone();
        if let Instruction::Arg(defs) = &ins {
            return self.arg(defs, cmd);
        }
        ins.expand(&self.ctx.lex, &self.state.env)
            .map_err(|e| self.err(e.into(), cmd))?;
        match ins {
            Instruction::Env(list) => {
                let mut msg = String::from("ENV");
                for kv in list {
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                    self.state.set_env(&kv.key, &kv.value);
                    config::add_env(&mut self.state.image.config.env, &kv.key, &kv.value);
                }
                self.history(&msg);
            }
            Instruction::Label(list) => {
                let mut msg = String::from("LABEL");
                for kv in list {
                    msg.push_str(&format!(" {}={}", kv.key, kv.value));
                    self.state.image.config.labels.insert(kv.key, kv.value);
                }
                self.history(&msg);
            }
            Instruction::Maintainer(m) => {
                self.state.image.author = m.clone();
                self.history(&format!("MAINTAINER {m}"));
            }
            Instruction::Expose(ports) => {
                let ps = config::parse_ports(&ports).map_err(|m| self.invalid(m, cmd))?;
                for p in &ps {
                    self.state
                        .image
                        .config
                        .exposed_ports
                        .insert(p.clone(), Default::default());
                }
                self.history(&format!("EXPOSE {}", config::go_list(&ps)));
            }
            Instruction::User(u) => {
                self.state.image.config.user = u.clone();
                self.state.user = u.clone();
                self.history(&format!("USER {u}"));
            }
            Instruction::Volume(vols) => {
                for v in &vols {
                    if v.is_empty() {
                        return Err(
                            self.invalid("VOLUME specified can not be an empty string".into(), cmd)
                        );
                    }
                    self.state
                        .image
                        .config
                        .volumes
                        .insert(v.clone(), Default::default());
                }
                self.history(&format!("VOLUME {}", config::go_list(&vols)));
            }
            Instruction::StopSignal(sig) => {
                config::check_signal(&sig).map_err(|m| self.invalid(m, cmd))?;
                self.state.image.config.stop_signal = sig.clone();
                self.history(&format!("STOPSIGNAL {sig}"));
            }
            Instruction::Healthcheck(h) => {
                let (json, text) = config::healthcheck(&h);
                self.state.image.config.healthcheck = Some(json);
                self.history(&text);
            }
            Instruction::Shell(sh) => {
                self.state.image.config.shell = Some(sh.clone());
                self.history(&format!("SHELL {}", config::go_list(&sh)));
            }
            Instruction::Entrypoint(c) => {
                let args = if c.prepend_shell {
                    config::with_shell(&self.state.image, &c.args)
                } else {
                    c.args
                };
                let cfg = &mut self.state.image.config;
                cfg.entrypoint = args.clone();
                if !self.cmd_set {
                    cfg.cmd = Vec::new();
                }
                self.history(&format!("ENTRYPOINT {}", config::go_quote_list(&args)));
            }
            Instruction::Cmd(c) => {
                let args = if c.prepend_shell {
                    config::with_shell(&self.state.image, &c.args)
                } else {
                    c.args
                };
                let cfg = &mut self.state.image.config;
                cfg.cmd = args.clone();
                cfg.args_escaped = true;
                self.cmd_set = true;
                self.history(&format!("CMD {}", config::go_quote_list(&args)));
            }
            Instruction::Onbuild(o) => {
                self.state
                    .image
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression);
            }
            Instruction::Workdir(path) => self.workdir(&path, cmd, on_build),
            Instruction::Run(run) => self.run(&run, cmd, on_build)?,
            Instruction::Copy(c) => self.copy(c, cmd, on_build)?,
            Instruction::Add(a) => self.add(a, cmd, on_build)?,
            Instruction::Arg(_) => {}
        }
        Ok(())
    }

    /// ARG inside a stage (BuildKit's `dispatchArg`).
    fn arg(
        &mut self,
        defs: &[crate::dockerfile::instructions::ArgDef],
        cmd: &Command,
    ) -> Result<(), PlanError> {
        let mut parts = Vec::with_capacity(defs.len());
        for def in defs {
            let build_arg = self.ctx.req.build_args.get(&def.key).cloned();
            let mut value = def.value.clone();
            if value.is_none() && build_arg.is_none() {
                value = self
                    .ctx
                    .global
                    .iter()
                    .find(|(k, _)| *k == def.key)
                    .map(|(_, v)| v.clone());
            } else if let Some(v) = build_arg {
                value = Some(v);
            } else if let Some(d) = &def.value {
                value = Some(
                    self.ctx
                        .lex
                        .process_word(d, &self.state.env)
                        .map_err(|e| self.err(e.into(), cmd))?,
                );
            }
            if let Some(v) = &value {
                if !NON_ENV_ARGS.contains(&def.key.as_str()) {
                    self.state.set_env(&def.key, v);
                }
            }
            parts.push(match &value {
                Some(v) => format!("{}={v}", def.key),
                None => def.key.clone(),
            });
            self.state.build_args.push((def.key.clone(), value));
        }
        self.history(&format!("ARG {}", parts.join(" ")));
        Ok(())
    }
}
