//! `kiln bake`: resolve bake files into targets; `--print` shows them as buildx does.

use crate::bake::{self, print, BakeError, Request};
use crate::error::Error;
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// Targets or groups to build (default: the "default" group)
    pub targets: Vec<String>,
    /// Build definition file(s); "-" reads standard input
    #[arg(short = 'f', long = "file")]
    pub files: Vec<String>,
    /// Print the options without building
    #[arg(long)]
    pub print: bool,
    /// List targets or variables (targets, variables, type=targets,format=json)
    #[arg(long)]
    pub list: Option<String>,
    /// Override target value (e.g., targetpattern.key=value)
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Set a variable (NAME=VALUE)
    #[arg(long = "var")]
    pub vars: Vec<String>,
    /// Shorthand for --set=*.output=type=registry
    #[arg(long)]
    pub push: bool,
    /// Shorthand for --set=*.output=type=docker
    #[arg(long)]
    pub load: bool,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Shorthand for --set=*.attest=type=provenance
    #[arg(long)]
    pub provenance: Option<String>,
    /// Shorthand for --set=*.attest=type=sbom
    #[arg(long)]
    pub sbom: Option<String>,
    /// Set method for evaluating build (build, check, outline, targets)
    #[arg(long)]
    pub call: Option<String>,
    /// Shorthand for --call=check
    #[arg(long)]
    pub check: bool,
    /// Write build result metadata to a file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<String>,
    /// Allow build to access specified resources
    #[arg(long)]
    pub allow: Vec<String>,
    /// Override the configured builder instance
    #[arg(long)]
    pub builder: Option<String>,
    /// Set type of progress output (auto, tty, plain, quiet, rawjson)
    #[arg(long, env = crate::progress::ENV_PROGRESS, default_value = "auto")]
    pub progress: String,
    /// How RUN steps execute: sandbox (namespaces), unprivileged (in this container's own
    /// root filesystem, for CI containers without namespaces), or auto
    #[arg(
        long,
        env = crate::engine::run::select::ENV_EXECUTOR,
        default_value = "auto",
        value_parser = ["auto", "sandbox", "unprivileged"]
    )]
    pub executor: String,
}

impl BakeArgs {
    /// Whether this invocation builds (not `--print` / `--list`).
    pub fn builds(&self) -> bool {
        !self.print && self.list.is_none()
    }
}

pub fn run(args: BakeArgs) -> Result<(), Error> {
    if args.print && args.list.is_some() {
        return Err(usage("--print and --list are mutually exclusive"));
    }
    let mut sets = args.set.clone();
    if args.push {
        sets.push("*.push=true".into());
    }
    if args.load {
        sets.push("*.load=true".into());
    }
    let call = if args.check {
        Some("check")
    } else {
        args.call.as_deref()
    };
    if let Some(name) = call.map(parse_call).transpose()?.flatten() {
        sets.push(format!("*.call={name}"));
    }
    check_entitlements(&args.allow)?;
    if args.no_cache {
        sets.push("*.no-cache=true".into());
    }
    if args.pull {
        sets.push("*.pull=true".into());
    }
    if let Some(s) = args.sbom.as_deref().filter(|s| !s.is_empty()) {
        sets.push(format!(
            "*.attest={}",
            bake::entries::Attest::canonical("sbom", s)
        ));
    }
    if let Some(p) = args.provenance.as_deref().filter(|s| !s.is_empty()) {
        sets.push(format!(
            "*.attest={}",
            bake::entries::Attest::canonical("provenance", p)
        ));
    }
    let req = Request {
        files: args.files.clone(),
        targets: args.targets.clone(),
        sets,
        vars: args.vars.clone(),
        env: std::env::vars().collect(),
    };
    let loaded = bake::load(&req, &mut std::io::stdin())?;
    if let Some(list) = &args.list {
        let (kind, json) = parse_list(list)?;
        let out = if kind == "variables" {
            print::list_variables(&loaded.config.variables, json)
        } else {
            print::list_targets(&list_entries(&loaded.config), json)
        };
        return write_stdout(&out);
    }
    let resolved = bake::resolve(&req, &loaded)?;
    for w in &resolved.warnings {
        eprintln!("WARNING: {w}");
    }
    if args.print {
        return write_stdout(&print::print_json(&resolved));
    }
    let order = bake::graph::build_order(&resolved.targets).map_err(BakeError::Resolve)?;
    let mode: crate::progress::Mode = args.progress.parse().map_err(|m: String| usage(&m))?;
    let sink = crate::progress::sink_for(mode);
    let mut protected: Vec<std::path::PathBuf> = Vec::new();
    for t in resolved.targets.values() {
        protected.extend(super::build::output_paths(
            t.output.as_deref().unwrap_or_default(),
        ));
    }
    protected.extend(args.metadata_file.iter().map(std::path::PathBuf::from));
    let engine =
        embedded_engine()?.with_executor(super::build::select_executor(&args.executor, protected)?);
    let results = crate::driver::embedded::build_all(&engine, &resolved, &order, sink.as_ref())
        .map_err(|e| Error::Build(Box::new(e)))?;
    if let Some(path) = &args.metadata_file {
        write_metadata(path, &resolved, &results)?;
    }
    Ok(())
}

/// `--metadata-file`: one object per target, keyed by its name, with the fields
/// `kiln build --metadata-file` writes (as buildx bake does).
fn write_metadata(
    path: &str,
    resolved: &bake::resolve::Resolved,
    results: &[crate::driver::embedded::TargetResult],
) -> Result<(), Error> {
    let mut meta = serde_json::Map::new();
    for r in results {
        let Some(desc) = &r.descriptor else {
            continue;
        };
        let tags = resolved
            .targets
            .get(&r.name)
            .and_then(|t| t.tags.clone())
            .unwrap_or_default();
        meta.insert(
            r.name.clone(),
            serde_json::json!({
                "containerimage.digest": desc.digest.to_string(),
                "containerimage.descriptor": desc,
                "image.name": tags.join(","),
            }),
        );
    }
    let bytes =
        serde_json::to_vec_pretty(&serde_json::Value::Object(meta)).map_err(|e| Error::Io {
            context: format!("writing {path}"),
            source: std::io::Error::other(e),
        })?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        context: format!("writing {path}"),
        source,
    })
}

/// The embedded engine with the store in $KILN_HOME and the registry client.
pub(crate) fn embedded_engine() -> Result<crate::engine::exec::Engine, Error> {
    let build = |e: crate::engine::exec::BuildError| Error::Build(Box::new(e));
    let store = crate::engine::store::Store::from_env().map_err(|e| build(e.into()))?;
    let client = crate::oci::registry::Client::new(crate::oci::registry::ClientConfig::from_env())?;
    let puller = crate::engine::pull::Puller::new(client).map_err(|e| build(e.into()))?;
    Ok(crate::engine::exec::Engine::new(store, puller))
}

fn usage(msg: &str) -> Error {
    Error::Usage {
        message: msg.to_string(),
        hint: None,
    }
}

fn write_stdout(s: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|source| Error::Io {
            context: "writing to stdout".into(),
            source,
        })
}

/// `--list targets|variables` or `type=targets,format=json`.
fn parse_list(input: &str) -> Result<(String, bool), Error> {
    let fields = bake::csv::fields(input, ',').map_err(|e| usage(&e))?;
    let mut kind = String::new();
    let mut format = String::new();
    if fields.len() == 1 && fields[0] == input && !input.starts_with("type=") {
        kind = input.to_string();
    } else {
        for f in &fields {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| usage(&format!("invalid value {f}")))?;
            match k.trim().to_lowercase().as_str() {
                "type" => kind = v.to_string(),
                "format" => format = v.to_string(),
                other => return Err(usage(&format!("unexpected key '{other}' in '{f}'"))),
            }
        }
    }
    if kind != "targets" && kind != "variables" {
        return Err(usage(&format!("invalid list type {kind:?}")));
    }
    match format.as_str() {
        "" | "table" => Ok((kind, false)),
        "json" => Ok((kind, true)),
        other => Err(usage(&format!("invalid list format {other:?}"))),
    }
}

fn list_entries(cfg: &bake::config::Config) -> Vec<print::ListEntry> {
    let mut entries: Vec<print::ListEntry> = Vec::new();
    for t in &cfg.targets {
        entries.push(print::ListEntry {
            name: t.name.clone(),
            description: t.description.clone(),
            group: false,
        });
    }
    for g in &cfg.groups {
        let mut names = g.targets.clone();
        names.sort();
        let joined = names.join(", ");
        let description = match (g.description.is_empty(), joined.is_empty()) {
            (_, true) => g.description.clone(),
            (true, false) => joined,
            (false, false) => format!("{} ({joined})", g.description),
        };
        entries.push(print::ListEntry {
            name: g.name.clone(),
            description,
            group: true,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.retain(|e| !e.name.starts_with('_'));
    entries
}

/// `--call`: a method name (`check` means `lint`) and optional `format=`/`ignorestatus=`.
fn parse_call(s: &str) -> Result<Option<String>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    let mut name = String::new();
    for field in bake::csv::fields(s, ',').map_err(|e| usage(&e))? {
        match field.split_once('=') {
            Some(("format", _)) => {}
            Some(("ignorestatus", v)) => {
                bake::eval::varenv::parse_bool(v)
                    .ok_or_else(|| usage(&format!("invalid ignorestatus print value: {v}")))?;
            }
            Some(_) => return Err(usage(&format!("invalid print field: {field}"))),
            None if !name.is_empty() => return Err(usage(&format!("invalid print value: {s}"))),
            None => name = field,
        }
    }
    if name == "check" {
        name = "lint".into();
    }
    Ok((name != "build").then_some(name))
}

/// `--allow` values buildx knows.
fn check_entitlements(allow: &[String]) -> Result<(), Error> {
    for e in allow {
        match e.as_str() {
            "network.host" | "security.insecure" | "ssh" | "buildx.local.delete" => continue,
            _ => {}
        }
        let (k, _) = e.split_once('=').unwrap_or((e.as_str(), ""));
        match k {
            "device" | "fs.read" | "fs.write" | "fs" | "image.push" | "image.load" | "image" => {}
            "buildx.local.delete" => {
                return Err(usage("buildx.local.delete does not accept a value"));
            }
            other => return Err(usage(&format!("unknown entitlement key {other:?}"))),
        }
    }
    Ok(())
}
