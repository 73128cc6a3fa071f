//! The bake front end: bake files (HCL, JSON, TOML) -> resolved targets -> target graph.
//!
//! `load` finds and reads files, `syntax` parses them into one tree, `eval` resolves
//! variables/functions/blocks lazily, `config` builds targets and groups, `resolve` applies
//! groups, inherits and `--set`, `validate` checks what a build would reject, `print`
//! writes buildx's `--print`/`--list` output, and `graph` orders targets for building.

pub mod compose;
pub mod config;
pub mod csv;
pub mod entries;
pub mod eval;
pub mod glob;
pub mod graph;
pub mod limits;
pub mod load;
pub mod model;
pub mod overrides;
pub mod print;
pub mod resolve;
pub mod schema;
pub mod suggest;
pub mod syntax;
pub mod validate;

use crate::error::{Diagnostic, Location, ToDiagnostic};
use eval::context::Inputs;
use eval::expr::EvalError;
use std::collections::HashMap;
use syntax::{Document, SyntaxError};

/// Errors of the bake front end.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// An evaluation error, with the file it happened in (name and text) when known.
    #[error("{error}")]
    Eval {
        error: Box<EvalError>,
        file: Option<Box<(String, String, bool)>>,
    },
    /// A resolution error (unknown target, bad `--set`, inherits...).
    #[error("{0}")]
    Resolve(String),
    /// A value a build would reject (bad platform, bad output, context from stdin...).
    #[error("{0}")]
    Invalid(String),
    /// A compose file that cannot be read as bake targets.
    #[error("failed to parse compose file: {0}")]
    Compose(#[from] compose::ComposeError),
}

impl ToDiagnostic for BakeError {
    fn to_diagnostic(&self) -> Diagnostic {
        match self {
            BakeError::Syntax(e) => {
                let d = Diagnostic::new(e.message.clone());
                match (e.line, e.col) {
                    (Some(line), Some(col)) => d.at(
                        Location {
                            file: e.file.clone().into(),
                            line,
                            col,
                            len: 1,
                        },
                        e.source_line.clone(),
                    ),
                    _ => Diagnostic::new(format!("{}: {}", e.file, e.message)),
                }
            }
            BakeError::Eval { error, file } => {
                let msg = format!("{}: {}", error.summary, error.detail);
                let mut d = Diagnostic::new(msg);
                if let (Some(f), Some(span)) = (file, &error.span) {
                    let (name, text, _) = f.as_ref();
                    {
                        let (line, col) = syntax::line_col(text, span.start);
                        let (eline, ecol) = syntax::line_col(text, span.end);
                        let len = if eline == line {
                            ecol.saturating_sub(col).max(1)
                        } else {
                            1
                        };
                        d = d.at(
                            Location {
                                file: name.clone().into(),
                                line,
                                col,
                                len,
                            },
                            text.lines().nth(line - 1).map(str::to_string),
                        );
                    }
                } else if let Some(f) = file {
                    d.message = format!("{}: {}", f.0, d.message);
                }
                if let Some(h) = hint_for(error) {
                    d = d.with_hint(h);
                }
                d
            }
            other => Diagnostic::new(other.to_string()),
        }
    }
}

fn hint_for(e: &EvalError) -> Option<String> {
    if e.detail.contains("cycle not allowed") {
        return Some("break the cycle: a value may not depend on itself".into());
    }
    if e.summary == "Unknown variable" {
        return Some("declare it with a `variable` block or pass it with --var NAME=VALUE".into());
    }
    None
}

/// Everything `kiln bake` needs to resolve targets.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub files: Vec<String>,
    pub targets: Vec<String>,
    pub sets: Vec<String>,
    pub vars: Vec<String>,
    /// The environment (bake reads variables from it unless disabled).
    pub env: HashMap<String, String>,
}

/// The parsed and evaluated bake files.
pub struct Loaded {
    pub doc: Document,
    pub config: config::Config,
}

/// Reads, parses and evaluates the files of a request.
pub fn load(req: &Request, stdin: &mut dyn std::io::Read) -> Result<Loaded, BakeError> {
    let env = |k: &str| req.env.get(k).cloned();
    let (names, _from_env) = load::file_names(&req.files, env)?;
    let sources = load::read_files(&names, stdin)?;
    let inputs = inputs_for(req)?;
    // Compose files give the base targets; bake files (HCL, JSON, TOML) merge onto them.
    let compose_env = compose_env(&inputs)?;
    let lookup = |k: &str| compose_env.get(k).cloned();
    let mut doc = Document::default();
    let mut compose_files = Vec::new();
    for s in sources {
        match compose::detect(&s.name, &s.text, &lookup) {
            compose::Detected::Invalid(e) => return Err(e.into()),
            compose::Detected::Compose(f) => compose_files.push(f),
            compose::Detected::NotCompose => doc.add(s)?,
        }
    }
    let file_relative = match req.env.get(load::ENV_FILE_RELATIVE_PATHS).map(|s| s.trim()) {
        None | Some("") => false,
        Some(v) => eval::varenv::parse_bool(v).ok_or_else(|| {
            BakeError::Invalid(format!(
                "failed to parse {} value {v:?}: strconv.ParseBool: parsing {v:?}: invalid syntax",
                load::ENV_FILE_RELATIVE_PATHS
            ))
        })?,
    };
    let (groups, mut targets) = compose::parse(&compose_files, &lookup)?;
    if file_relative {
        if let Some(base) = compose_files
            .first()
            .and_then(|f| config::local_file_dir(&f.name))
        {
            for t in &mut targets {
                t.default_context_base = Some(base.clone());
                if t.context.is_some() {
                    t.context_base = Some(base.clone());
                }
                if let Some(c) = &t.contexts {
                    for k in c.keys() {
                        t.contexts_base.insert(k.clone(), base.clone());
                    }
                }
            }
        }
    }
    let base = config::Config {
        groups,
        targets,
        variables: Vec::new(),
    };
    let config = config::evaluate(&doc, inputs, file_relative, base).map_err(|error| {
        let file = error
            .src
            .and_then(|i| doc.sources.get(i))
            .map(|s| Box::new((s.name.clone(), s.text.clone(), s.has_spans())));
        BakeError::Eval {
            error: Box::new(error),
            file,
        }
    })?;
    Ok(Loaded { doc, config })
}

/// The variables compose files are interpolated with: the environment (unless lookups
/// are disabled), then `.env` in the working directory for what it does not set, then
/// `--var` values.
fn compose_env(inputs: &Inputs) -> Result<HashMap<String, String>, BakeError> {
    let mut env = inputs.env.clone();
    if let Ok(text) = std::fs::read_to_string(".env") {
        let known = env.clone();
        let lookup = |k: &str| known.get(k).cloned();
        for (k, v) in compose::parse_dotenv(&text, &lookup)? {
            env.entry(k).or_insert(v);
        }
    }
    for (k, v) in &inputs.vars {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

fn inputs_for(req: &Request) -> Result<Inputs, BakeError> {
    let mut inputs = Inputs::default();
    inputs
        .builtins
        .insert("BAKE_CMD_CONTEXT".into(), "cwd://".into());
    let platform = req
        .env
        .get("BAKE_LOCAL_PLATFORM")
        .cloned()
        .unwrap_or_else(local_platform);
    inputs
        .builtins
        .insert("BAKE_LOCAL_PLATFORM".into(), platform);
    for v in &req.vars {
        if v.is_empty() {
            continue;
        }
        let (k, val) = v.split_once('=').ok_or_else(|| {
            BakeError::Invalid(format!("invalid variable {v:?}, expected key=value"))
        })?;
        if k.is_empty() {
            return Err(BakeError::Invalid(format!(
                "invalid variable {v:?}, key is empty"
            )));
        }
        inputs.vars.insert(k.to_string(), val.to_string());
    }
    let lookup_disabled = req
        .env
        .get(load::ENV_DISABLE_VARS_ENV_LOOKUP)
        .and_then(|v| eval::varenv::parse_bool(v))
        .unwrap_or(false);
    if !lookup_disabled {
        inputs.env = req.env.clone();
    }
    Ok(inputs)
}

/// This machine's platform as buildx formats it (`linux/amd64`, `linux/arm64`...).
pub fn local_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm/v7",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Resolves the requested targets (default group if none) with `--set` overrides and
/// validates them as a build would.
pub fn resolve(req: &Request, loaded: &Loaded) -> Result<resolve::Resolved, BakeError> {
    let targets = if req.targets.is_empty() {
        vec!["default".to_string()]
    } else {
        req.targets.clone()
    };
    let env = if req
        .env
        .get(load::ENV_DISABLE_VARS_ENV_LOOKUP)
        .and_then(|v| eval::varenv::parse_bool(v))
        .unwrap_or(false)
    {
        HashMap::new()
    } else {
        req.env.clone()
    };
    let mut r =
        resolve::resolve(&loaded.config, &targets, &req.sets, &env).map_err(BakeError::Resolve)?;
    if let Some(epoch) = req.env.get("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) {
        for t in r.targets.values_mut() {
            let args = t.args.get_or_insert_with(Default::default);
            args.entry("SOURCE_DATE_EPOCH".into())
                .or_insert_with(|| Some(epoch.clone()));
        }
    }
    for t in r.targets.values_mut() {
        validate::check_target(t, &req.env).map_err(BakeError::Invalid)?;
    }
    Ok(r)
}
