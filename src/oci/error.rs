//! The typed error of the `oci` module. Messages never contain credentials: registry
//! errors name the registry and where credentials came from, never their values.

use crate::error::{Diagnostic, ToDiagnostic};

/// Where the credentials used for a registry came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredSource {
    /// No credentials: anonymous access.
    Anonymous,
    /// The `auths` entry of a Docker config file.
    ConfigFile(std::path::PathBuf),
    /// A `docker-credential-*` helper (from `credsStore` or `credHelpers`).
    Helper(String),
    /// Environment variables (CI).
    Environment(&'static str),
    /// Given by the caller (e.g. `kiln login`).
    Explicit,
}

impl std::fmt::Display for CredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredSource::Anonymous => f.write_str("no credentials (anonymous)"),
            CredSource::ConfigFile(p) => write!(f, "credentials from {}", p.display()),
            CredSource::Helper(h) => write!(f, "credentials from helper docker-credential-{h}"),
            CredSource::Environment(v) => write!(f, "credentials from ${v}"),
            CredSource::Explicit => f.write_str("credentials given on the command line"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid reference format: {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: String },
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },
    #[error("{reference}: not found")]
    NotFound { reference: String },
    #[error(
        "{registry}: authentication required or refused (401 Unauthorized), using {source_desc}"
    )]
    Unauthorized {
        registry: String,
        source_desc: CredSource,
    },
    #[error("{registry}: access denied (403 Forbidden) for {what}, using {source_desc}")]
    Denied {
        registry: String,
        what: String,
        source_desc: CredSource,
    },
    #[error("{registry}: {method} {path}: unexpected status {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        detail: Option<String>,
    },
    #[error("{registry}: request failed: {message}")]
    Transport { registry: String, message: String },
    /// The connection broke while reading a body (retried by the client).
    #[error("{registry}: transfer interrupted: {message}")]
    Interrupted { registry: String, message: String },
    #[error("{what}: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid size mismatch for {digest}, {given} != {actual}")]
    SizeMismatch {
        digest: String,
        given: i64,
        actual: i64,
    },
    #[error("{what} is too large ({size} bytes, the limit is {limit})")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("credential helper docker-credential-{helper}: {message}")]
    CredentialHelper { helper: String, message: String },
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    Template { message: String },
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
    #[error("{path}: {message}")]
    Layout { path: String, message: String },
}

impl OciError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OciError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        OciError::Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub fn manifest(what: impl Into<String>, reason: impl Into<String>) -> Self {
        OciError::InvalidManifest {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// True for errors that say "this does not exist" (used by `--append` and fallbacks).
    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::NotFound { .. })
    }
}

impl ToDiagnostic for OciError {
    fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::new(self.to_string());
        match self {
            OciError::InvalidReference { .. } => d.with_hint(
                "a reference looks like [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], lower-case repository",
            ),
            OciError::Unauthorized { registry, .. } => d.with_hint(format!(
                "check the user name and password or token for {registry} (`kiln login {registry}` or $DOCKER_CONFIG/config.json)"
            )),
            OciError::InvalidPlatform { .. } => {
                d.with_hint("a platform looks like os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")
            }
            OciError::Invalid { hint: Some(h), .. } => d.with_hint(h.clone()),
            _ => d,
        }
    }
}
