//! `kiln build`: one Dockerfile, with `docker buildx build` flags.

use crate::engine::exec::{BuildOptions, Engine};
use crate::engine::plan::{BuildRequest, NamedContext};
use crate::engine::pull::Puller;
use crate::engine::remote_context::{self, RemoteContexts};
use crate::engine::store::Store;
use crate::error::Error;
use crate::oci::registry::{Client, ClientConfig};
use crate::oci::Platform;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build context (a directory)
    pub context: String,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Name and optionally a tag (name:tag); repeatable
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Build-time variables (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Additional build contexts (NAME=VALUE)
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Target platforms (os/arch[/variant]), comma-separated or repeated
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Target build stage
    #[arg(long)]
    pub target: Option<String>,
    /// Output destination (type=local,dest=path etc.)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Shorthand for --output=type=registry
    #[arg(long)]
    pub push: bool,
    /// Shorthand for --output=type=docker
    #[arg(long)]
    pub load: bool,
    /// Secrets to expose to the build (id=mysecret[,src=/local/secret])
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent sockets or keys to expose (default|<id>[=<socket>|<key>[,<key>]])
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Metadata for the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Annotations for the image
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// External cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Cache export destinations
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Do not cache specified stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Networking mode for RUN instructions
    #[arg(long)]
    pub network: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Extra privileged entitlements (network.host, security.insecure)
    #[arg(long)]
    pub allow: Vec<String>,
    /// Attestation parameters (type=sbom,generator=image)
    #[arg(long)]
    pub attest: Vec<String>,
    /// Shorthand for --attest=type=provenance
    #[arg(long)]
    pub provenance: Option<String>,
    /// Shorthand for --attest=type=sbom
    #[arg(long)]
    pub sbom: Option<String>,
    /// Write build result metadata to a file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<String>,
    /// Write the image ID to a file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
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
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: BuildArgs) -> Result<(), Error> {
    let usage = |m: String| Error::Usage {
        message: m,
        hint: None,
    };
    if args.context == "-" {
        return Err(usage(
            "a context from stdin is not available yet in this version".into(),
        ));
    }
    let mut platforms = Vec::new();
    for p in args.platforms.iter().flat_map(|p| p.split(',')) {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        platforms.push(Platform::parse(p)?.normalize());
    }
    let mut req = BuildRequest::new(Platform::host());
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                req.build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    req.build_args.insert(a.clone(), v);
                }
            }
        }
    }
    // Git URLs (the context, named contexts) are checked out for the build's duration.
    let keep_git_dir = remote_context::keep_git_dir(
        req.build_args
            .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .map(String::as_str),
    );
    let store = Store::from_env().map_err(engine_err)?;
    let mut remotes = RemoteContexts::new(store.tmp_dir(), keep_git_dir);
    let remote = remote_context::is_remote(&args.context);
    let context = remotes.local(&args.context).map_err(remote_err)?;
    if !context.is_dir() {
        return Err(usage(format!(
            "unable to prepare context: path {:?} not found",
            args.context
        )));
    }
    let dockerfile = remote_context::dockerfile_path(&context, remote, args.file.as_deref());
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        req.labels.insert(k.to_string(), v.to_string());
    }
    for c in &args.build_contexts {
        let (k, v) = c.split_once('=').ok_or_else(|| {
            usage(format!(
                "invalid --build-context {c:?}: expected NAME=VALUE"
            ))
        })?;
        let nc = if remote_context::is_remote(v) {
            NamedContext::Local(remotes.local(v).map_err(remote_err)?)
        } else {
            NamedContext::parse(v)
        };
        req.named_contexts.insert(k.to_string(), nc);
    }
    req.target = args.target.clone();
    req.no_cache_filter = args.no_cache_filter.clone();
    let epoch = req
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty());
    let source_date_epoch = match epoch {
        Some(e) => Some(e.parse::<i64>().map_err(|_| {
            usage(format!(
                "invalid SOURCE_DATE_EPOCH {e:?}: expected seconds since 1970"
            ))
        })?),
        None => None,
    };
    if let Some(e) = source_date_epoch {
        req.build_args
            .entry("SOURCE_DATE_EPOCH".into())
            .or_insert_with(|| e.to_string());
    }
    let outputs = crate::engine::output::resolve_outputs(&args.outputs, args.push, args.load)
        .map_err(|e| usage(e.to_string()))?;
    let (layer, force_compression) =
        crate::engine::output::layer_options(&outputs, source_date_epoch)
            .map_err(|e| usage(e.to_string()))?;
    let mode: crate::progress::Mode = args.progress.parse().map_err(usage)?;
    let sink = crate::progress::sink_for(if args.quiet {
        crate::progress::Mode::Quiet
    } else {
        mode
    });
    let puller = Puller::new(Client::new(ClientConfig::from_env())?).map_err(engine_err)?;
    let mut protected = output_paths(&outputs);
    protected.extend(args.iidfile.iter().map(PathBuf::from));
    protected.extend(args.metadata_file.iter().map(PathBuf::from));
    let engine =
        Engine::new(store, puller).with_executor(select_executor(&args.executor, protected)?);
    let mut secrets = Vec::new();
    for s in &args.secrets {
        secrets.push(
            crate::bake::entries::Secret::parse(s)
                .map_err(|e| usage(format!("invalid --secret {s:?}: {e}")))?,
        );
    }
    let mut extra_hosts = Vec::new();
    for h in &args.add_hosts {
        extra_hosts.push(parse_add_host(h).map_err(usage)?);
    }
    let oci_mediatypes =
        crate::engine::output::oci_mediatypes(&outputs).map_err(|e| usage(e.to_string()))?;
    let opts = BuildOptions {
        oci_mediatypes,
        extra_hosts,
        ssh: args
            .ssh
            .iter()
            .map(|s| crate::bake::entries::Ssh::parse(s))
            .collect(),
        secrets,
        allow: args.allow.clone(),
        context,
        dockerfile,
        platforms,
        request: req,
        no_cache: args.no_cache,
        layer,
        force_compression,
    };
    if let Some(message) =
        crate::engine::output::external_cache_notice(&args.cache_from, &args.cache_to)
    {
        sink.event(&crate::progress::Event::Warning { message });
    }
    let result = engine.build(&opts, sink.as_ref()).map_err(engine_err)?;
    if outputs.is_empty() {
        sink.event(&crate::progress::Event::Warning {
            message: "No output specified: the build result stays in the build cache only (use --push, --load or -o)".into(),
        });
    }
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let report =
        crate::engine::output::deliver(&result, &outputs, &args.tags, docker_host.as_deref())
            .map_err(|e| match e {
                crate::engine::output::OutputError::Oci(o) => Error::Oci(o),
                other => Error::Build(Box::new(crate::engine::exec::BuildError::Other(
                    other.to_string(),
                ))),
            })?;
    for line in report {
        sink.event(&crate::progress::Event::Warning { message: line }.into_info());
    }
    if let (Some(path), Some(root)) = (&args.iidfile, result.root_descriptor()) {
        std::fs::write(path, root.digest.to_string()).map_err(|source| Error::Io {
            context: format!("writing {path}"),
            source,
        })?;
    }
    if let (Some(path), Some(root)) = (&args.metadata_file, result.root_descriptor()) {
        let meta = serde_json::json!({
            "containerimage.digest": root.digest.to_string(),
            "containerimage.descriptor": root,
            "image.name": args.tags.join(","),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&meta).unwrap_or_default()).map_err(
            |source| Error::Io {
                context: format!("writing {path}"),
                source,
            },
        )?;
    }
    if args.quiet {
        if let Some(root) = result.root_descriptor() {
            println!("{}", root.digest);
        }
    }
    Ok(())
}

/// Chooses the RUN executor (`--executor` / `KILN_EXECUTOR`) and tells it which paths
/// the build writes besides the store.
pub(crate) fn select_executor(
    choice: &str,
    protected: Vec<PathBuf>,
) -> Result<crate::engine::run::Selected, Error> {
    let choice: crate::engine::run::select::ExecutorChoice =
        choice.parse().map_err(|message| Error::Usage {
            message,
            hint: None,
        })?;
    let selected = crate::engine::run::select::select(choice);
    selected.protect(protected);
    Ok(selected)
}

/// The files and directories outputs write (`dest=`).
pub(crate) fn output_paths(outputs: &[crate::bake::entries::ExportEntry]) -> Vec<PathBuf> {
    outputs
        .iter()
        .filter(|o| !o.dest.is_empty() && o.dest != "-")
        .map(|o| PathBuf::from(&o.dest))
        .collect()
}

fn remote_err(e: remote_context::RemoteContextError) -> Error {
    Error::Usage {
        message: format!("unable to prepare context: {e}"),
        hint: None,
    }
}

fn engine_err(e: impl Into<crate::engine::exec::BuildError>) -> Error {
    Error::Build(Box::new(e.into()))
}

/// `--add-host HOST:IP` (or `HOST=IP`, for IPv6 addresses) as (host, ip).
fn parse_add_host(value: &str) -> Result<(String, String), String> {
    let (host, ip) = match value.split_once('=') {
        Some(pair) => pair,
        None => value.split_once(':').ok_or_else(|| {
            format!("invalid --add-host {value:?}: expected HOST:IP (or HOST=IP)")
        })?,
    };
    if host.is_empty() {
        return Err(format!(
            "invalid --add-host {value:?}: the host name is empty"
        ));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "invalid --add-host {value:?}: {ip:?} is not an IP address"
        ));
    }
    Ok((host.to_string(), ip.to_string()))
}

#[cfg(test)]
mod add_host_tests {
    use super::parse_add_host;

    #[test]
    fn forms() {
        let ok = |v: &str| parse_add_host(v).unwrap();
        assert_eq!(ok("db:10.0.0.5"), ("db".into(), "10.0.0.5".into()));
        assert_eq!(ok("v6=::1"), ("v6".into(), "::1".into()));
        assert_eq!(ok("v6=[fe80::1]"), ("v6".into(), "fe80::1".into()));
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host("db:not-an-ip").is_err());
        assert!(parse_add_host(":10.0.0.1").is_err());
    }
}
