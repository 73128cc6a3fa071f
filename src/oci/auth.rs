//! Registry credentials and auth challenges.
//!
//! Credentials come from, in order: GitLab CI variables for `$CI_REGISTRY`, then the Docker
//! config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `credHelpers`
//! for the registry, `credsStore`, `auths` (base64 `user:password` in `auth`, or
//! `identitytoken`). Secrets are held in [`Secret`], whose `Debug` never shows them.

use super::error::CredSource;
use super::OciError;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A secret string: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name with a password or token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: Secret,
    /// True when `secret` is an OAuth refresh token (`identitytoken`).
    pub identity_token: bool,
}

/// The key Docker uses for Docker Hub in config files and helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The config-file key for a registry host.
pub fn config_key(registry: &str) -> String {
    if registry == "docker.io"
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io"
    {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Where the Docker config file is.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The parts of a Docker config file kiln reads and writes; other keys are kept as they are.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    pub path: Option<PathBuf>,
    raw: serde_json::Map<String, serde_json::Value>,
}

impl DockerConfig {
    /// Reads the config file at the usual place; a missing file is an empty config.
    pub fn load() -> Result<DockerConfig, OciError> {
        match docker_config_path() {
            Some(p) => DockerConfig::load_from(&p),
            None => Ok(DockerConfig::default()),
        }
    }

    pub fn load_from(path: &Path) -> Result<DockerConfig, OciError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: Some(path.to_path_buf()),
                    raw: Default::default(),
                })
            }
            Err(e) => return Err(OciError::io(format!("reading {}", path.display()), e)),
        };
        let raw = if text.trim().is_empty() {
            Default::default()
        } else {
            serde_json::from_str(&text).map_err(|e| OciError::Config {
                path: path.display().to_string(),
                message: format!("not a valid Docker config file: {e}"),
            })?
        };
        Ok(DockerConfig {
            path: Some(path.to_path_buf()),
            raw,
        })
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.raw
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }

    /// The credential helper for a registry, if any (`credHelpers`, then `credsStore`).
    pub fn helper_for(&self, registry: &str) -> Option<String> {
        let key = config_key(registry);
        self.raw
            .get("credHelpers")
            .and_then(|h| h.get(&key).or_else(|| h.get(registry)))
            .and_then(|v| v.as_str())
            .or_else(|| self.str_field("credsStore"))
            .map(str::to_string)
    }

    fn auth_entry(&self, registry: &str) -> Option<&serde_json::Value> {
        let auths = self.raw.get("auths")?.as_object()?;
        let key = config_key(registry);
        auths.get(&key).or_else(|| {
            auths.iter().find_map(|(k, v)| {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                (host == registry || config_key(host) == key).then_some(v)
            })
        })
    }

    /// Credentials for `registry` and where they came from.
    pub fn credentials(
        &self,
        registry: &str,
    ) -> Result<(Option<Credential>, CredSource), OciError> {
        if let Some(helper) = self.helper_for(registry) {
            match helper_get(&helper, &config_key(registry)) {
                Ok(Some(c)) => return Ok((Some(c), CredSource::Helper(helper))),
                Ok(None) => {}
                // a helper named in the config but not installed: go on without it
                Err(OciError::CredentialHelper { message, .. })
                    if message.starts_with("cannot run") =>
                {
                    tracing::warn!(
                        "docker-credential-{helper} is not installed; ignoring it for {registry}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let source = CredSource::ConfigFile(self.path.clone().unwrap_or_default());
        let Some(entry) = self.auth_entry(registry) else {
            return Ok((None, CredSource::Anonymous));
        };
        if let Some(tok) = entry
            .get("identitytoken")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            let username = entry
                .get("username")
                .and_then(|v| v.as_str())
                .unwrap_or("<token>")
                .to_string();
            return Ok((
                Some(Credential {
                    username,
                    secret: Secret::new(tok),
                    identity_token: true,
                }),
                source,
            ));
        }
        let bad = |m: &str| OciError::Config {
            path: self.path.clone().unwrap_or_default().display().to_string(),
            message: format!("auths entry for {registry}: {m}"),
        };
        if let Some(auth) = entry
            .get("auth")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("\"auth\" is not valid base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not user:password"))?;
            return Ok((
                Some(Credential {
                    username: u.to_string(),
                    secret: Secret::new(p),
                    identity_token: false,
                }),
                source,
            ));
        }
        match (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            (Some(u), Some(p)) => Ok((
                Some(Credential {
                    username: u.to_string(),
                    secret: Secret::new(p),
                    identity_token: false,
                }),
                source,
            )),
            _ => Ok((None, CredSource::Anonymous)),
        }
    }

    /// Stores credentials the way `docker login` does (helper if configured, else `auths`).
    pub fn store(&mut self, registry: &str, cred: &Credential) -> Result<(), OciError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            let payload = serde_json::json!({
                "ServerURL": key, "Username": cred.username, "Secret": cred.secret.expose()
            });
            run_helper(&helper, "store", &payload.to_string())?;
            return self.save();
        }
        let auth = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            cred.username,
            cred.secret.expose()
        ));
        let auths = self
            .raw
            .entry("auths")
            .or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        if let Some(obj) = auths.as_object_mut() {
            obj.insert(key, serde_json::json!({ "auth": auth }));
        }
        self.save()
    }

    /// Removes stored credentials; returns false when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool, OciError> {
        let key = config_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper_for(registry) {
            found = run_helper(&helper, "erase", &key).is_ok();
        }
        if let Some(obj) = self.raw.get_mut("auths").and_then(|a| a.as_object_mut()) {
            found |= obj.remove(&key).is_some();
        }
        self.save()?;
        Ok(found)
    }

    fn save(&self) -> Result<(), OciError> {
        let Some(path) = &self.path else {
            return Err(OciError::invalid(
                "no place for the Docker config file: set $DOCKER_CONFIG or $HOME",
            ));
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| OciError::io(format!("creating {}", dir.display()), e))?;
        }
        let text = serde_json::to_string_pretty(&self.raw)
            .map_err(|e| OciError::invalid(format!("encoding the Docker config: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        write_private(&tmp, text.as_bytes())
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| OciError::io(format!("writing {}", path.display()), e))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<String, OciError> {
    let program = format!("docker-credential-{helper}");
    let err = |m: String| OciError::CredentialHelper {
        helper: helper.to_string(),
        message: m,
    };
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| err(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for {program}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        // helpers print "credentials not found in native keychain" on stdout
        let msg = if stdout.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout.trim().to_string()
        };
        return Err(err(format!("{verb} failed: {msg}")));
    }
    Ok(stdout)
}

/// `docker-credential-HELPER get` for a server; `None` when the helper has nothing.
pub fn helper_get(helper: &str, server: &str) -> Result<Option<Credential>, OciError> {
    let out = match run_helper(helper, "get", server) {
        Ok(o) => o,
        Err(OciError::CredentialHelper { message, .. })
            if message
                .to_ascii_lowercase()
                .contains("credentials not found") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let r: Reply = serde_json::from_str(&out).map_err(|_| OciError::CredentialHelper {
        helper: helper.to_string(),
        message: "answer is not the expected JSON".into(),
    })?;
    if r.secret.is_empty() {
        return Ok(None);
    }
    let identity_token = r.username == "<token>";
    Ok(Some(Credential {
        username: r.username,
        secret: Secret::new(r.secret),
        identity_token,
    }))
}

/// GitLab CI: `CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD` (or `CI_JOB_TOKEN`) for `$CI_REGISTRY`.
pub fn ci_credentials(registry: &str) -> Option<(Credential, CredSource)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if var("CI_REGISTRY")? != registry {
        return None;
    }
    if let (Some(u), Some(p)) = (var("CI_REGISTRY_USER"), var("CI_REGISTRY_PASSWORD")) {
        let c = Credential {
            username: u,
            secret: Secret::new(p),
            identity_token: false,
        };
        return Some((c, CredSource::Environment("CI_REGISTRY_PASSWORD")));
    }
    var("CI_JOB_TOKEN").map(|t| {
        let c = Credential {
            username: "gitlab-ci-token".into(),
            secret: Secret::new(t),
            identity_token: false,
        };
        (c, CredSource::Environment("CI_JOB_TOKEN"))
    })
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lower case).
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="...",service="...",scope="..."` (quoted or bare values).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The `Authorization: Basic ...` value for a credential.
pub fn basic_header(c: &Credential) -> String {
    let raw = format!("{}:{}", c.username, c.secret.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }

    #[test]
    fn reads_auths_and_never_shows_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5001":{"auth":"dXNlcjpodW50ZXIy"},"https://index.docker.io/v1/":{"auth":"ZDpw"}}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load_from(&path).unwrap();
        let (c, src) = cfg.credentials("127.0.0.1:5001").unwrap();
        let c = c.unwrap();
        assert_eq!(c.username, "user");
        assert_eq!(c.secret.expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(matches!(src, CredSource::ConfigFile(_)));
        assert_eq!(
            cfg.credentials("docker.io").unwrap().0.unwrap().username,
            "d"
        );
        assert_eq!(cfg.credentials("other:1").unwrap().1, CredSource::Anonymous);
        let mut cfg = cfg;
        cfg.store(
            "new.example",
            &Credential {
                username: "u".into(),
                secret: Secret::new("p"),
                identity_token: false,
            },
        )
        .unwrap();
        let again = DockerConfig::load_from(&path).unwrap();
        assert_eq!(
            again
                .credentials("new.example")
                .unwrap()
                .0
                .unwrap()
                .username,
            "u"
        );
        let mut again = again;
        assert!(again.erase("new.example").unwrap());
    }

    #[test]
    fn a_missing_helper_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"credsStore":"kiln-no-such-helper","auths":{"r.example":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load_from(&path).unwrap();
        let (c, src) = cfg.credentials("r.example").unwrap();
        assert_eq!(c.unwrap().username, "u");
        assert!(matches!(src, CredSource::ConfigFile(_)));
    }
}
