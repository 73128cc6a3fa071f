//! A registry client for the Distribution API (`/v2/`): manifests by tag or digest, blobs
//! (streamed to and from disk), cross-repository mounts, with anonymous, basic and bearer
//! token auth and retries.
//!
//! Plain HTTP is used for `localhost`, `127.0.0.0/8`, `::1` and the registries listed in
//! [`ClientConfig::insecure`]; HTTPS (rustls) otherwise. Requests that fail with 429, 5xx or
//! a broken connection are retried with exponential backoff, honouring `Retry-After`.

use super::auth::{self, Challenge, Credential, DockerConfig};
use super::error::CredSource;
use super::image::{detect_media_type, media_type, Descriptor, MediaType};
use super::{Digest, OciError, Reference};
use futures_util::StreamExt as _;

mod blobs;
mod token;
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Manifests larger than this are refused (the Distribution spec suggests 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Blobs read into memory (configs, attestations) larger than this are refused.
pub const MAX_INLINE_BLOB_SIZE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (host[:port]) reached over plain HTTP besides loopback addresses.
    pub insecure: Vec<String>,
    /// Attempts per request for retryable failures (at least 1).
    pub max_attempts: u32,
    /// First backoff delay; doubled on each retry.
    pub base_delay: Duration,
    /// Longest wait honoured from `Retry-After`.
    pub max_delay: Duration,
    pub user_agent: String,
}

/// Comma-separated registries (`host[:port]`) reached over plain HTTP.
pub const ENV_INSECURE_REGISTRIES: &str = "KILN_INSECURE_REGISTRIES";

impl ClientConfig {
    /// The defaults plus `$KILN_INSECURE_REGISTRIES`.
    pub fn from_env() -> ClientConfig {
        let insecure = std::env::var(ENV_INSECURE_REGISTRIES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        ClientConfig {
            insecure,
            ..ClientConfig::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure: Vec::new(),
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A manifest or index as the registry returned it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes (their digest is the manifest digest).
    pub bytes: Vec<u8>,
    pub media_type: MediaType,
    pub digest: Digest,
}

impl FetchedManifest {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.as_str(),
            self.digest.clone(),
            self.bytes.len() as i64,
        )
    }
}

#[derive(Default)]
struct RegistryState {
    creds_loaded: bool,
    cred: Option<Credential>,
    source: Option<CredSource>,
    challenge: Option<Challenge>,
    tokens: HashMap<String, String>,
}

/// The HTTP clients, made on first use: one for plain-HTTP registries that never loads the
/// system's TLS roots (reading them takes longer than a whole cached build), and one with
/// them for `https://`.
struct HttpClients {
    user_agent: String,
    plain: std::sync::OnceLock<reqwest::Client>,
    tls: std::sync::OnceLock<reqwest::Client>,
}

impl HttpClients {
    /// The client for `url`: plain HTTP without TLS roots; a redirect from there to
    /// `https://` is not followed by it (see [`HttpClients::redirected_to_tls`]).
    fn for_url(&self, url: &str) -> Result<&reqwest::Client, OciError> {
        if url.starts_with("http://") {
            self.get(&self.plain, false)
        } else {
            self.get(&self.tls, true)
        }
    }

    fn tls(&self) -> Result<&reqwest::Client, OciError> {
        self.get(&self.tls, true)
    }

    fn get<'a>(
        &self,
        cell: &'a std::sync::OnceLock<reqwest::Client>,
        tls: bool,
    ) -> Result<&'a reqwest::Client, OciError> {
        if let Some(c) = cell.get() {
            return Ok(c);
        }
        let redirect = if tls {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::custom(|attempt| {
                if attempt.url().scheme() == "https" || attempt.previous().len() >= 10 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            })
        };
        let client = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .redirect(redirect)
            .tls_built_in_root_certs(tls)
            .build()
            .map_err(|e| OciError::Transport {
                registry: String::new(),
                message: format!("cannot set up HTTP client: {}", root_cause(&e)),
            })?;
        Ok(cell.get_or_init(|| client))
    }

    /// A response of the plain client that redirects to `https://` (e.g. a local registry
    /// handing blobs to cloud storage): the request must be made again with TLS.
    fn redirected_to_tls(resp: &Response) -> bool {
        resp.status().is_redirection()
            && resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|l| l.starts_with("https://"))
    }
}

/// The registry client. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Client {
    http: HttpClients,
    cfg: ClientConfig,
    docker_config: DockerConfig,
    state: Mutex<HashMap<String, RegistryState>>,
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// True for hosts reached over plain HTTP by default.
pub fn is_loopback(registry: &str) -> bool {
    if let Ok(ip) = registry.parse::<std::net::Ipv6Addr>() {
        return ip.is_loopback();
    }
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(registry)
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The innermost cause of an error (e.g. "Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Client {
    /// A client reading credentials from the usual Docker config file.
    pub fn new(cfg: ClientConfig) -> Result<Client, OciError> {
        Client::with_docker_config(cfg, DockerConfig::load()?)
    }

    pub fn with_docker_config(
        cfg: ClientConfig,
        docker_config: DockerConfig,
    ) -> Result<Client, OciError> {
        let http = HttpClients {
            user_agent: cfg.user_agent.clone(),
            plain: std::sync::OnceLock::new(),
            tls: std::sync::OnceLock::new(),
        };
        Ok(Client {
            http,
            cfg,
            docker_config,
            state: Mutex::new(HashMap::new()),
        })
    }

    /// `http` or `https` for a registry.
    pub fn scheme(&self, registry: &str) -> &'static str {
        if is_loopback(registry) || self.cfg.insecure.iter().any(|r| r == registry) {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://host/v2/` for a registry (Docker Hub's API host for `docker.io`).
    pub fn base_url(&self, registry: &str) -> String {
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        format!("{}://{host}/v2/", self.scheme(registry))
    }

    fn with_state<T>(&self, registry: &str, f: impl FnOnce(&mut RegistryState) -> T) -> T {
        let mut map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(registry.to_string()).or_default())
    }

    fn load_creds(&self, registry: &str) -> Result<(), OciError> {
        if self.with_state(registry, |s| s.creds_loaded) {
            return Ok(());
        }
        let (cred, source) = match auth::ci_credentials(registry) {
            Some((c, s)) => (Some(c), s),
            None => self.docker_config.credentials(registry)?,
        };
        self.with_state(registry, |s| {
            s.creds_loaded = true;
            s.cred = cred;
            s.source = Some(source);
        });
        Ok(())
    }

    /// Uses `cred` for `registry` instead of what the config file says.
    pub fn set_credentials(&self, registry: &str, cred: Credential) {
        self.with_state(registry, |s| {
            s.creds_loaded = true;
            s.cred = Some(cred);
            s.source = Some(CredSource::Explicit);
            s.tokens.clear();
        });
    }

    fn cred_source(&self, registry: &str) -> CredSource {
        self.with_state(registry, |s| {
            s.source.clone().unwrap_or(CredSource::Anonymous)
        })
    }

    /// Sends a request built by `make` (called again for each attempt) with auth and retries.
    async fn send(
        &self,
        registry: &str,
        scopes: &[String],
        method: Method,
        url: &str,
        make: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response, OciError> {
        self.load_creds(registry)?;
        let scope_key = scopes.join(" ");
        let mut authed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let auth = self.auth_header(registry, &scope_key);
            let request = |client: &reqwest::Client| {
                let req = make(client.request(method.clone(), url));
                match &auth {
                    Some(h) => req.header(AUTHORIZATION, h.clone()),
                    None => req,
                }
            };
            let delay = self.cfg.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1));
            let mut sent = request(self.http.for_url(url)?).send().await;
            if matches!(&sent, Ok(r) if HttpClients::redirected_to_tls(r)) {
                sent = request(self.http.tls()?).send().await;
            }
            match sent {
                Err(e) => {
                    let retryable =
                        e.is_connect() || e.is_timeout() || e.is_request() || e.is_body();
                    if retryable && attempt < self.cfg.max_attempts {
                        tracing::debug!(%url, attempt, "request failed, retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(OciError::Transport {
                        registry: registry.to_string(),
                        message: format!("{method} {url}: {}", root_cause(&e)),
                    });
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED {
                        if authed {
                            return Err(OciError::Unauthorized {
                                registry: registry.to_string(),
                                source_desc: self.cred_source(registry),
                            });
                        }
                        authed = true;
                        attempt -= 1;
                        let header = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        self.authenticate(registry, header.as_deref(), scopes)
                            .await?;
                        continue;
                    }
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || matches!(status.as_u16(), 500 | 502 | 503 | 504);
                    if retryable && attempt < self.cfg.max_attempts {
                        let wait = retry_after(resp.headers())
                            .unwrap_or(delay)
                            .min(self.cfg.max_delay);
                        tracing::debug!(%url, %status, attempt, "retrying after {wait:?}");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    fn status_error(
        &self,
        registry: &str,
        method: &str,
        url: &str,
        status: StatusCode,
        what: &str,
    ) -> OciError {
        let path = url
            .split_once("/v2/")
            .map(|(_, p)| format!("/v2/{p}"))
            .unwrap_or_else(|| url.to_string());
        match status {
            StatusCode::NOT_FOUND => OciError::NotFound {
                reference: what.to_string(),
            },
            StatusCode::FORBIDDEN => OciError::Denied {
                registry: registry.to_string(),
                what: what.to_string(),
                source_desc: self.cred_source(registry),
            },
            _ => OciError::Status {
                registry: registry.to_string(),
                method: method.to_string(),
                path,
                status: status.as_u16(),
                detail: None,
            },
        }
    }

    /// Checks that the registry answers (`GET /v2/`), authenticating if it asks.
    pub async fn ping(&self, registry: &str) -> Result<(), OciError> {
        let url = self.base_url(registry);
        let resp = self.send(registry, &[], Method::GET, &url, &|r| r).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(registry, "GET", &url, resp.status(), registry))
        }
    }

    fn manifest_url(&self, r: &Reference, target: &str) -> String {
        format!(
            "{}{}/manifests/{target}",
            self.base_url(r.registry()),
            r.repository()
        )
    }

    fn accept(r: RequestBuilder) -> RequestBuilder {
        r.header(ACCEPT, media_type::ALL_MANIFESTS.join(", "))
    }

    /// Fetches a manifest or index by the reference's digest (else tag), verifying the
    /// digest when one was asked for.
    pub async fn get_manifest(&self, r: &Reference) -> Result<FetchedManifest, OciError> {
        self.retry_interrupted(|| self.get_manifest_once(r)).await
    }

    /// Runs `op` again (with backoff) when a body transfer was interrupted.
    pub(crate) async fn retry_interrupted<T, F, Fut>(&self, op: F) -> Result<T, OciError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(OciError::Interrupted { .. }) if attempt < self.cfg.max_attempts => {
                    tokio::time::sleep(self.cfg.base_delay * 2u32.saturating_pow(attempt - 1))
                        .await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn get_manifest_once(&self, r: &Reference) -> Result<FetchedManifest, OciError> {
        let url = self.manifest_url(r, &r.target());
        let scopes = [pull_scope(r.repository())];
        let resp = self
            .send(r.registry(), &scopes, Method::GET, &url, &Self::accept)
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.status_error(r.registry(), "GET", &url, status, &r.to_string()));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(
            resp,
            MAX_MANIFEST_SIZE,
            &format!("manifest {r}"),
            r.registry(),
        )
        .await?;
        let digest = match r.digest() {
            Some(d) => {
                d.verify(&format!("manifest {r}"), &bytes)?;
                d.clone()
            }
            None => Digest::sha256(&bytes),
        };
        let media_type =
            detect_media_type(&bytes, content_type.as_deref()).map_err(|e| match e {
                OciError::InvalidManifest { reason, .. } => {
                    OciError::manifest(format!("manifest {r}"), reason)
                }
                OciError::UnsupportedMediaType { media_type, .. } => {
                    OciError::UnsupportedMediaType {
                        what: format!("manifest {r}"),
                        media_type,
                    }
                }
                other => other,
            })?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` a manifest: its descriptor, or `None` when the registry does not have it.
    pub async fn head_manifest(&self, r: &Reference) -> Result<Option<Descriptor>, OciError> {
        let url = self.manifest_url(r, &r.target());
        let scopes = [pull_scope(r.repository())];
        let resp = self
            .send(r.registry(), &scopes, Method::HEAD, &url, &Self::accept)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => {
                return Err(self.status_error(r.registry(), "HEAD", &url, s, &r.to_string()))
            }
            _ => {}
        }
        let h = resp.headers();
        let digest = match r.digest() {
            Some(d) => d.clone(),
            None => match h.get("Docker-Content-Digest").and_then(|v| v.to_str().ok()) {
                Some(d) => Digest::parse(d)?,
                // without the header the only way to know the digest is to read the bytes
                None => return Ok(Some(self.get_manifest(r).await?.descriptor())),
            },
        };
        let mt = h
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let size = h
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(Some(Descriptor::new(
            mt.split(';').next().unwrap_or("").trim(),
            digest,
            size,
        )))
    }

    /// Stores a manifest under `r`'s tag (or digest) and returns its digest.
    pub async fn put_manifest(
        &self,
        r: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, OciError> {
        let digest = Digest::sha256(bytes);
        let url = self.manifest_url(r, &r.target());
        let scopes = [push_scope(r.repository())];
        let body = bytes.to_vec();
        let mt = media_type.to_string();
        let resp = self
            .send(r.registry(), &scopes, Method::PUT, &url, &|req| {
                req.header(CONTENT_TYPE, mt.as_str()).body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let detail = resp
                .text()
                .await
                .ok()
                .map(|t| t.chars().take(300).collect::<String>());
            if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
                return Err(self.status_error(r.registry(), "PUT", &url, status, &r.to_string()));
            }
            return Err(OciError::Status {
                registry: r.registry().to_string(),
                method: "PUT".into(),
                path: format!("/v2/{}/manifests/{}", r.repository(), r.target()),
                status: status.as_u16(),
                detail,
            });
        }
        Ok(digest)
    }
}

async fn read_limited(
    resp: Response,
    limit: u64,
    what: &str,
    registry: &str,
) -> Result<Vec<u8>, OciError> {
    if let Some(len) = resp.content_length() {
        if len > limit {
            return Err(OciError::TooLarge {
                what: what.to_string(),
                size: len,
                limit,
            });
        }
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| OciError::Interrupted {
            registry: registry.to_string(),
            message: format!("reading {what}: {}", root_cause(&e)),
        })?;
        out.extend_from_slice(&chunk);
        if out.len() as u64 > limit {
            return Err(OciError::TooLarge {
                what: what.to_string(),
                size: out.len() as u64,
                limit,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5077",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "example.com:443",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
        let c =
            Client::with_docker_config(ClientConfig::default(), DockerConfig::default()).unwrap();
        assert_eq!(c.base_url("docker.io"), "https://registry-1.docker.io/v2/");
        assert_eq!(c.base_url("127.0.0.1:5077"), "http://127.0.0.1:5077/v2/");
    }
}

#[cfg(test)]
mod tests;
