//! `kiln login`, `kiln logout`, `kiln pull` and `kiln inspect`: registry credentials in the
//! Docker config file, pulling one platform's image into an OCI layout, and showing an
//! image's config the way `docker inspect` does.

use super::imagetools::runtime;
use crate::error::Error;
use crate::oci::auth::{Credential, DockerConfig, Secret};
use crate::oci::layout::Layout;
use crate::oci::transfer;
use crate::oci::{Client, ClientConfig, OciError, Platform, Reference};
use clap::Args;
use std::io::Read as _;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port] (docker.io when omitted)
    pub server: Option<String>,
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password or token (prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password or token from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port] (docker.io when omitted)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference
    pub reference: String,
    /// Platform to pull (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// OCI layout directory to pull into (default: $KILN_HOME/images)
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference
    pub reference: String,
    /// Platform to show (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
}

/// `https://index.docker.io/v1/`, `http://host:5000/` -> the registry host.
fn server_name(s: Option<&str>) -> String {
    let s = s.unwrap_or("docker.io");
    let host = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

fn default_store() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("KILN_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kiln")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("kiln")))
        .unwrap_or_else(|| PathBuf::from(".kiln"));
    home.join("images")
}

fn platform(p: Option<&str>) -> Result<Platform, OciError> {
    match p {
        Some(p) => Platform::parse(p),
        None => Ok(Platform::host()),
    }
}

pub fn login(args: LoginArgs) -> Result<(), Error> {
    let server = server_name(args.server.as_deref());
    let username = args.username.ok_or_else(|| Error::Usage {
        message: "kiln login needs a user name".into(),
        hint: Some("pass --username USER and --password-stdin".into()),
    })?;
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err(Error::Usage {
                message: "--password and --password-stdin are mutually exclusive".into(),
                hint: None,
            })
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::Io {
                    context: "reading the password from stdin".into(),
                    source: e,
                })?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Error::Usage {
                message: "kiln login needs a password or token".into(),
                hint: Some("pipe it into --password-stdin".into()),
            })
        }
    };
    if password.is_empty() {
        return Err(Error::Usage {
            message: "the password is empty".into(),
            hint: None,
        });
    }
    let cred = Credential {
        username,
        secret: Secret::new(password),
        identity_token: false,
    };
    let mut config = DockerConfig::load()?;
    let client = Client::with_docker_config(ClientConfig::from_env(), config.clone())?;
    client.set_credentials(&server, cred.clone());
    runtime()?.block_on(client.ping(&server))?;
    config.store(&server, &cred)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(args: LogoutArgs) -> Result<(), Error> {
    let server = server_name(args.server.as_deref());
    let mut config = DockerConfig::load()?;
    if config.erase(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

pub fn pull(args: PullArgs) -> Result<(), Error> {
    let r = Reference::parse(&args.reference)?.with_default_tag();
    let p = platform(args.platform.as_deref())?;
    let dir = args.output.unwrap_or_else(default_store);
    let layout = Layout::create(&dir)?;
    let client = Client::new(ClientConfig::from_env())?;
    let tag = r.to_string();
    let img = runtime()?.block_on(transfer::pull_to_layout(
        &client,
        &r,
        &p,
        &layout,
        Some(&tag),
    ))?;
    let shown = img
        .descriptor
        .platform
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    println!("{}: pulled {shown} into {}", img.reference, dir.display());
    Ok(())
}

pub fn inspect(args: InspectArgs) -> Result<(), Error> {
    let r = Reference::parse(&args.reference)?.with_default_tag();
    let p = platform(args.platform.as_deref())?;
    let client = Client::new(ClientConfig::from_env())?;
    let img = runtime()?.block_on(transfer::resolve_image(&client, &r, &p))?;
    let c = &img.config;
    let mut obj = serde_json::Map::new();
    obj.insert("Id".into(), img.manifest.config.digest.to_string().into());
    obj.insert("RepoTags".into(), serde_json::json!([r.to_string()]));
    obj.insert(
        "RepoDigests".into(),
        serde_json::json!([img.reference.to_string()]),
    );
    obj.insert(
        "Created".into(),
        c.created.clone().unwrap_or_default().into(),
    );
    obj.insert("Author".into(), c.author.clone().into());
    obj.insert("Architecture".into(), c.architecture.clone().into());
    if !c.variant.is_empty() {
        obj.insert("Variant".into(), c.variant.clone().into());
    }
    obj.insert("Os".into(), c.os.clone().into());
    if !c.os_version.is_empty() {
        obj.insert("OsVersion".into(), c.os_version.clone().into());
    }
    let size: i64 = img.manifest.layers.iter().map(|l| l.size).sum();
    obj.insert("Size".into(), size.into());
    let config = serde_json::to_value(&c.config)
        .map_err(|e| OciError::invalid(format!("encoding the config: {e}")))?;
    obj.insert("Config".into(), config);
    obj.insert(
        "RootFS".into(),
        serde_json::json!({ "Type": c.rootfs.kind, "Layers": c.rootfs.diff_ids }),
    );
    let text = serde_json::to_string_pretty(&serde_json::Value::Array(vec![obj.into()]))
        .map_err(|e| OciError::invalid(format!("encoding the output: {e}")))?;
    println!("{text}");
    Ok(())
}
